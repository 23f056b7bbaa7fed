"""Generate the student handout from the solution source; the command line of the exercises.

The solution source (``solutions/solutions.py`` in the repository, in the
py:percent cell format; not part of the installed package) is the one source
of truth. :func:`make_student_source` replaces every region

    ### BEGIN SOLUTION
    ...teacher's code...
    ### END SOLUTION

with ``raise NotImplementedError(...)`` at the same indentation, keeping the
signature, docstring and hints around it (the nbgrader convention).
:func:`make_notebook` turns the cells into a Jupyter notebook; each
``# %% [check] NAME`` marker becomes a cell running ``check_NAME(globals())``
and ``# %% [script]`` cells stay out of the notebook.

    python -m tinyalex exercises generate --out DIR        # DIR/exercises.py, DIR/exercises.ipynb
    python -m tinyalex exercises grade submissions/ ...    # grade.py: every file in its own process
    python -m tinyalex exercises selftest                  # the solutions score full marks, the stubs 0

The output is deterministic (same input, same bytes), so the committed copy in
notebooks/exercises/ is tested to be up to date.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from ..fileio import atomic_write_text
from .checks import EXERCISES
from .grade import find_submissions, grade, read_points

REPO_SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "solutions.py"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CELL = "# Check your code (run this cell after the one above)"
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")
_HINT = re.compile(r"^\s+Hints?:")


def find_solutions(path=None) -> Path:
    """The solution source: ``path``, or the repository's solutions/solutions.py.

    Raises FileNotFoundError saying where to get it (it is not installed
    with the package, so that students who install tinyalex do not get it).
    """
    p = Path(path) if path else REPO_SOLUTIONS
    if not p.is_file():
        where = f"{p} does not exist" if path else "the solutions are not part of the installed package"
        raise FileNotFoundError(f"{where}: pass --solutions PATH, the file solutions/solutions.py of the "
                                "tinyalex repository (git clone it; teachers only)")
    return p


def make_student_source(solution: str) -> str:
    """Replace every BEGIN/END SOLUTION region with a NotImplementedError stub.

    Raises ValueError for unbalanced or nested markers (naming the line).
    """
    out, func, inside = [], None, None
    for lineno, line in enumerate(solution.splitlines(keepends=True), 1):
        m = _DEF.match(line)
        if m and inside is None:
            func = m.group(1)
        stripped = line.strip()
        if stripped == BEGIN:
            if inside is not None:
                raise ValueError(f"solution source line {lineno}: {BEGIN} inside another region (opened at line {inside})")
            inside = lineno
            indent = line[: len(line) - len(line.lstrip())]
            where = f"in {func}() " if func else ""
            out.append(f"{indent}# YOUR CODE HERE\n")
            out.append(f'{indent}raise NotImplementedError("write your code {where}in place of this line")\n')
        elif stripped == END:
            if inside is None:
                raise ValueError(f"solution source line {lineno}: {END} without a {BEGIN}")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"solution source line {inside}: {BEGIN} never closed by {END}")
    return "".join(out)


def split_cells(source: str):
    """Split py:percent source into (kind, argument, text) cells.

    kind is "code", "markdown", "check" (argument: the exercise name or
    "all") or "script" (module only).
    """
    cells, kind, arg, lines = [], "code", "", []

    def flush():
        text = "".join(lines).strip("\n")
        if text or kind == "check":
            cells.append((kind, arg, text))

    for line in source.splitlines(keepends=True):
        if line.startswith("# %%"):
            flush()
            rest = line[4:].strip()
            m = re.match(r"\[(\w+)\]\s*(.*)", rest)
            kind, arg = (m.group(1), (m.group(2).split() or [""])[0]) if m else ("code", "")
            if kind not in ("markdown", "check", "script", "code"):
                raise ValueError(f"unknown cell kind [{kind}] in {line.strip()!r}")
            lines = []
        else:
            lines.append(line)
    flush()
    return cells


def _markdown(text: str) -> str:
    return "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())


def strip_hints(source: str) -> str:
    """The source without the ``Hint:`` paragraphs of its docstrings, and checks that print no hint (exams)."""
    out, in_hint = [], False
    for line in source.splitlines(keepends=True):
        if _HINT.match(line):
            in_hint = True
            if out and not out[-1].strip():
                out.pop()                              # the blank line before the hint
            continue
        if in_hint:
            if line.strip() and line.strip() != '"""':
                continue
            in_hint = False
            if not line.strip():
                out.append(line)
                continue
        out.append(line)
    return "".join(out).replace("run_all(globals())", "run_all(globals(), hints=False)")


def _points_on_check_lines(source: str) -> str:
    """``# %% [check] NAME`` -> ``# %% [check] NAME  (N points)``: the handout states the default points."""
    def label(m):
        name = m.group(1)
        pts = EXERCISES[name].points if name in EXERCISES else None
        return m.group(0) if pts is None else f"{m.group(0)}  ({pts} point{'s' if pts != 1 else ''})"
    return re.sub(r"^# %% \[check\] (\w+)$", label, source, flags=re.M)


def make_notebook(source: str, hints: bool = True) -> str:
    """The notebook JSON (nbformat 4, no outputs, stable cell ids) for py:percent ``source``."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    extra = "" if hints else ", hints=False"
    for kind, arg, text in split_cells(source):
        if kind == "script":
            continue
        if kind == "markdown":
            cell = v4.new_markdown_cell(_markdown(text))
        elif kind == "check":
            if arg == "all":
                cell = v4.new_code_cell(f"{CHECK_CELL}\nresult = run_all(globals(){extra})")
            else:
                pts = EXERCISES[arg].points
                cell = v4.new_code_cell(f"{CHECK_CELL}\n# {arg}: {pts} point{'s' if pts != 1 else ''}\n"
                                        f"result = check_{arg}(globals(){extra})")
        else:
            cell = v4.new_code_cell(text)
        cell["id"] = f"cell-{len(nb.cells):02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def generate(out_dir, with_solutions: bool = False, solution_path=None, hints: bool = True) -> list[Path]:
    """Write exercises.py and exercises.ipynb (student versions) into ``out_dir``.

    With ``with_solutions`` also solutions.ipynb (the teacher's copy); with
    ``hints=False`` the docstrings' hints are left out and the checks print
    none (exams). Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    solution = _points_on_check_lines(find_solutions(solution_path).read_text(encoding="utf-8"))
    student = make_student_source(solution)
    if not hints:
        student, solution = strip_hints(student), strip_hints(solution)
    files = {"exercises.py": student, "exercises.ipynb": make_notebook(student, hints)}
    if with_solutions:
        files["solutions.ipynb"] = make_notebook(solution, hints)
    written = []
    for name, text in files.items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written


def self_test(solution_path=None, seed=0, timeout=60.0, verbose=True) -> bool:
    """Grade the solutions (every exercise must pass) and the generated stubs (every one must fail).

    The check of the checks: run it after editing solutions.py or checks.py.
    """
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, solution_path=solution_path)
        rows = grade([find_solutions(solution_path), Path(tmp) / "exercises.py"], seed=seed, timeout=timeout,
                     verbose=False)
    solved, stub = rows
    ok = all(r.passed for r in solved.results.values()) and not any(r.passed for r in stub.results.values())
    if verbose:
        for r in solved.results.values():
            if not r.passed:
                print(r.report(details=True))
        print(f"solutions: {solved.score}/{solved.total} points ({solved.status}); "
              f"stubs: {stub.score}/{stub.total} points; self-test {'passed' if ok else 'FAILED'}")
    return ok


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------
def register_cli(subparsers):
    p = subparsers.add_parser(
        "exercises", help="classroom exercises: generate student versions, grade them",
        description="Generate the student exercise module and notebook from the solution source, "
                    "or grade students' files, each in its own process, and write scores and feedback.")
    sub = p.add_subparsers(dest="exercises_command", metavar="{generate,grade,selftest}")
    sub.required = True
    g = sub.add_parser("generate", help="write exercises.py and exercises.ipynb for students",
                       description="Write the student versions (solutions replaced by NotImplementedError).",
                       formatter_class=p.formatter_class)
    g.add_argument("--out", required=True, default=argparse.SUPPRESS, help="output directory (created if missing)")
    g.add_argument("--solutions", default=None,
                   help="the solution source (default: solutions/solutions.py of the repository)")
    g.add_argument("--with-solutions", action="store_true", help="also write solutions.ipynb (teachers only)")
    g.add_argument("--no-hints", action="store_true", help="leave the hints out (exams)")
    g.set_defaults(func=_cli_generate)
    r = sub.add_parser("grade", help="grade students' files, each in its own process",
                       description="Grade each student's exercises.py or exercises.ipynb in its own process: "
                                   "the public cases and hidden ones drawn from --seed, judged against "
                                   "tinyalex's layers. A folder gives its files and one file per subfolder "
                                   "(one folder per student). Exit code 0 when every file was graded, "
                                   "whatever the scores.",
                       formatter_class=p.formatter_class)
    r.add_argument("files", nargs="+", help="students' files, or folders of them")
    r.add_argument("--seed", type=int, default=None,
                   help="seed of the hidden cases (default: a random one, printed; give it to reproduce)")
    r.add_argument("--timeout", type=float, default=60.0, help="seconds per file before it is stopped")
    r.add_argument("--jobs", type=int, default=None, help="files graded at once (default: the number of CPUs)")
    r.add_argument("--csv", default=None, help="write the score table here (default: none)")
    r.add_argument("--feedback", default=None, metavar="DIR",
                   help="write one Markdown feedback file per student into DIR (default: none)")
    r.add_argument("--points", default=None, metavar="FILE",
                   help="TOML file of 'exercise = points' lines overriding the default points")
    r.add_argument("--no-hints", action="store_true", help="no hints in the output and feedback (exams)")
    r.add_argument("--quiet", action="store_true", help="print one line per file and the summary")
    r.set_defaults(func=_cli_grade)
    t = sub.add_parser("selftest", help="check the checks: the solutions pass, the stubs fail",
                       description="Grade the solution source (every exercise must pass) and the generated "
                                   "stubs (every exercise must fail).", formatter_class=p.formatter_class)
    t.add_argument("--solutions", default=None,
                   help="the solution source (default: solutions/solutions.py of the repository)")
    t.add_argument("--seed", type=int, default=0, help="seed of the hidden cases")
    t.set_defaults(func=_cli_selftest)


def _error(text):
    print(f"exercises: {text}", file=sys.stderr)
    return 2


def _cli_generate(args):
    try:
        paths = generate(args.out, args.with_solutions, args.solutions, hints=not args.no_hints)
    except FileNotFoundError as e:
        return _error(str(e))
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cli_grade(args):
    if args.timeout <= 0:
        return _error(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.jobs is not None and args.jobs < 1:
        return _error(f"--jobs must be >= 1, got {args.jobs}")
    try:
        files = find_submissions(args.files)
        points = read_points(args.points)
    except (FileNotFoundError, ValueError) as e:
        return _error(str(e))
    if not files:
        return _error(f"no .py or .ipynb file found in {', '.join(args.files)}")
    rows = grade(files, seed=args.seed, timeout=args.timeout, jobs=args.jobs, csv_path=args.csv,
                 feedback_dir=args.feedback, points=points, hints=not args.no_hints, quiet=args.quiet)
    return 1 if any(r.status == "grader error" for r in rows) else 0


def _cli_selftest(args):
    try:
        return 0 if self_test(args.solutions, args.seed) else 1
    except FileNotFoundError as e:
        return _error(str(e))
