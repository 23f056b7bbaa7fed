"""Generate student versions of the exercises, and grade them.

The solution source (``solutions.py``, in the py:percent cell format) is the
one source of truth. :func:`make_student_source` replaces every region

    ### BEGIN SOLUTION
    ...teacher's code...
    ### END SOLUTION

with ``raise NotImplementedError(...)`` at the same indentation, keeping the
signature, docstring and hints around it (the nbgrader convention).
:func:`make_notebook` turns the cells into a Jupyter notebook; each
``# %% [check] NAME`` marker becomes a cell running ``check_NAME(globals())``
and ``# %% [script]`` cells stay out of the notebook.

    python -m tinyalex exercises generate --out DIR     # DIR/exercises.py, DIR/exercises.ipynb
    python -m tinyalex exercises grade student1.py ...  # run every check, print the score

The output is deterministic (same input, same bytes), so the committed copy in
notebooks/exercises/ is tested to be up to date.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

SOLUTIONS = Path(__file__).with_name("solutions.py")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CELL = "# Check your code (run this cell after the one above)"
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")


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
                raise ValueError(f"solutions.py line {lineno}: {BEGIN} inside another region (opened at line {inside})")
            inside = lineno
            indent = line[: len(line) - len(line.lstrip())]
            where = f"in {func}() " if func else ""
            out.append(f"{indent}# YOUR CODE HERE\n")
            out.append(f'{indent}raise NotImplementedError("write your code {where}in place of this line")\n')
        elif stripped == END:
            if inside is None:
                raise ValueError(f"solutions.py line {lineno}: {END} without a {BEGIN}")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"solutions.py line {inside}: {BEGIN} never closed by {END}")
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
            kind, arg = (m.group(1), m.group(2).strip()) if m else ("code", "")
            if kind not in ("markdown", "check", "script", "code"):
                raise ValueError(f"unknown cell kind [{kind}] in {line.strip()!r}")
            lines = []
        else:
            lines.append(line)
    flush()
    return cells


def _markdown(text: str) -> str:
    return "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())


def make_notebook(source: str) -> str:
    """The notebook JSON (nbformat 4, no outputs, stable cell ids) for py:percent ``source``."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for kind, arg, text in split_cells(source):
        if kind == "script":
            continue
        if kind == "markdown":
            cell = v4.new_markdown_cell(_markdown(text))
        elif kind == "check":
            call = "run_all(globals())" if arg == "all" else f"check_{arg}(globals())"
            cell = v4.new_code_cell(f"{CHECK_CELL}\nresult = {call}")
        else:
            cell = v4.new_code_cell(text)
        cell["id"] = f"cell-{len(nb.cells):02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def atomic_write(path: Path, text: str) -> None:
    """Write text to path via a temporary file and os.replace (never a half-written file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def generate(out_dir, with_solutions: bool = False, solution_path=SOLUTIONS) -> list[Path]:
    """Write exercises.py and exercises.ipynb (student versions) into ``out_dir``.

    With ``with_solutions`` also solutions.ipynb (the teacher's copy).
    Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    solution = Path(solution_path).read_text(encoding="utf-8")
    student = make_student_source(solution)
    files = {"exercises.py": student, "exercises.ipynb": make_notebook(student)}
    if with_solutions:
        files["solutions.ipynb"] = make_notebook(solution)
    written = []
    for name, text in files.items():
        atomic_write(out / name, text)
        written.append(out / name)
    return written


# ---------------------------------------------------------------------------
# grading
# ---------------------------------------------------------------------------
def load_module(path):
    """Import a student's .py file (or the .py code cells of a .ipynb) as a fresh module."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; pass the student's exercises.py (or exercises.ipynb)")
    name = f"_tinyalex_student_{abs(hash(str(path.resolve())))}"
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = "\n\n".join("".join(c["source"]) for c in nb.get("cells", [])
                           if c.get("cell_type") == "code" and not "".join(c["source"]).startswith(CHECK_CELL))
        module = type(sys)(name)
        module.__file__ = str(path)
        exec(compile(code, str(path), "exec"), module.__dict__)
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grade(paths, verbose=True, csv_path=None):
    """Run every check on each file; return [(path, score, total, error message)]."""
    from .checks import CHECKS, run_all

    rows = []
    for p in paths:
        if verbose:
            print(f"== {p}")
        try:
            module = load_module(p)
        except FileNotFoundError:
            raise
        except Exception as e:   # the student's file does not even import: score 0, say why
            msg = f"could not load {p}: {type(e).__name__}: {e}"
            if verbose:
                print(msg)
            rows.append((str(p), 0, len(CHECKS), msg, {}))
            continue
        report = run_all(module, verbose=verbose)
        rows.append((str(p), report.score, report.total, "", {r.name: r.passed for r in report.results}))
    if csv_path:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file", "score", "total", *CHECKS, "error"])
        for path, score, total, msg, passed in rows:
            w.writerow([path, score, total, *(int(passed.get(n, False)) for n in CHECKS), msg])
        atomic_write(Path(csv_path), buf.getvalue())
    return rows


def register_cli(subparsers):
    p = subparsers.add_parser(
        "exercises", help="classroom exercises: generate student versions, grade them",
        description="Generate the student exercise module and notebook from the solution source, "
                    "or run every automatic check on students' files and print their scores.")
    sub = p.add_subparsers(dest="exercises_command", metavar="{generate,grade}")
    sub.required = True
    g = sub.add_parser("generate", help="write exercises.py and exercises.ipynb for students",
                       description="Write the student versions (solutions replaced by NotImplementedError).",
                       formatter_class=p.formatter_class)
    g.add_argument("--out", required=True, default=argparse.SUPPRESS, help="output directory (created if missing)")
    g.add_argument("--with-solutions", action="store_true", help="also write solutions.ipynb (teachers only)")
    g.set_defaults(func=_cli_generate)
    r = sub.add_parser("grade", help="run every check on students' files and print the scores",
                       description="Run every exercise check on each student's exercises.py (or .ipynb).",
                       formatter_class=p.formatter_class)
    r.add_argument("files", nargs="+", help="students' exercises.py or exercises.ipynb files")
    r.add_argument("--csv", default=None,
                   help="also write a score table (one row per file) to this CSV file (default: none)")
    r.add_argument("--quiet", action="store_true", help="print only the score line of each file")
    r.set_defaults(func=_cli_grade)


def _cli_generate(args):
    for path in generate(args.out, args.with_solutions):
        print(f"wrote {path}")
    return 0


def _cli_grade(args):
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        print(f"exercises grade: files: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = grade(args.files, verbose=not args.quiet, csv_path=args.csv)
    print()
    for path, score, total, msg, _ in rows:
        print(f"{path}: {score}/{total}" + (f"  ({msg})" if msg else ""))
    return 0 if all(score == total for _, score, total, _, _ in rows) else 1
