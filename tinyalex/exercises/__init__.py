"""Classroom exercises: the backward passes of AlexNet, with automatic checks.

* ``solutions.py`` -- the one source of truth: every exercise function with
  its implementation between ``### BEGIN SOLUTION`` / ``### END SOLUTION``.
* ``checks.py`` -- ``check_<name>(impl)`` for each exercise: known answers and
  gradient checks against tinyalex's own layers, printed as PASS/FAIL with the
  relative error and a hint; ``run_all(impl)`` gives the score.
* ``generate.py`` -- ``python -m tinyalex exercises generate --out DIR`` writes
  the student module and notebook (solutions replaced by
  ``raise NotImplementedError``); ``python -m tinyalex exercises grade FILE``
  runs every check on a student's module and prints the score.

See docs/teaching.md.
"""
from .checks import CHECKS, CheckResult, Report, run_all

__all__ = ["CHECKS", "CheckResult", "Report", "run_all"]
