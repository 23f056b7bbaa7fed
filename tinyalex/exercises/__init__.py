"""Classroom exercises: the backward passes of AlexNet, with automatic checks and a grader.

* ``checks.py`` -- each exercise's cases (public ones, and hidden ones drawn
  from a seed), how the student's functions are called, and the verdict
  against tinyalex's own layers; ``check_<name>(impl)`` for the notebook.
* ``generate.py`` -- ``python -m tinyalex exercises generate --out DIR``
  writes the student module and notebook from the solution source
  (solutions/solutions.py in the repository, not installed with the package).
* ``grade.py`` -- ``python -m tinyalex exercises grade FILES`` grades each
  file in its own process (``worker.py``) with a timeout, after a syntax-tree
  scan for shortcuts (``scan.py``); CSV, feedback files, a summary.

See docs/teaching.md.
"""
from .checks import CHECKS, EXERCISES, CheckResult, Report, run_all

__all__ = ["CHECKS", "EXERCISES", "CheckResult", "Report", "run_all"]
