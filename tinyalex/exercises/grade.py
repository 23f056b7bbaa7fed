"""Grade a class: every submission in its own process, with a timeout, judged here.

    python -m tinyalex exercises grade submissions/ --seed 2026 --csv scores.csv --feedback feedback/

For each file (a student's exercises.py or exercises.ipynb):

1. its code is read (notebook magics and shell lines stripped) and scanned
   (scan.py): exercises that reach tinyalex's reference implementations or
   the solutions score 0, with the reason;
2. a fresh ``python -m tinyalex.exercises.worker`` runs it on the inputs of
   the public cases and of hidden cases drawn from ``--seed``, and sends the
   outputs back; a hang is killed after ``--timeout`` seconds, and an
   exception, ``sys.exit()`` or a crash fails the exercises it reached, never
   the batch;
3. the outputs are compared here with the references (checks.py).

``--jobs`` files run at once. Each row goes to ``CSV.partial`` as soon as its
file is done (a killed batch keeps what it graded); at the end the table is
written, in the order of the files, to CSV. The exit code says whether the
grading itself worked (0), not whether students passed.

Isolation here means one student's file cannot stop, hang or change the
grading of another or fake its own verdict through the checker. It is not a
security sandbox: the code runs with the teacher's rights (docs/teaching.md).
"""
from __future__ import annotations

import csv
import io
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..fileio import atomic_write_text
from .checks import EXERCISES, OWN_CACHE, CheckResult, grading_cases
from .scan import scan, submission_code
from .worker import read_records

DEFAULT_TIMEOUT = 60.0
SUBMISSION_SUFFIXES = (".py", ".ipynb")
_running = set()                  # worker processes alive now (killed on Ctrl-C)
_running_lock = threading.Lock()


@dataclass
class Row:
    """One student's grade: a verdict per exercise and the points."""

    path: str
    student: str
    status: str                                  # graded | timed out | crashed | not loadable | grader error
    results: dict = field(default_factory=dict)  # exercise -> CheckResult
    message: str = ""
    points: dict = field(default_factory=dict)   # exercise -> points it is worth
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(self.points[n] for n, r in self.results.items() if r.passed)

    @property
    def total(self) -> int:
        return sum(self.points.values())


# ---------------------------------------------------------------------------
# inputs: files, students, points
# ---------------------------------------------------------------------------
def find_submissions(args) -> list[Path]:
    """Files as given; a folder gives its .py/.ipynb files and, per subfolder, the one it holds.

    A student's folder with both exercises.py and exercises.ipynb gives the
    more recently modified one. Raises FileNotFoundError naming what is missing,
    and ValueError for a file given by name that is neither .py nor .ipynb.
    """
    out, missing = [], []
    for a in map(Path, args):
        if a.is_file() and a.suffix not in SUBMISSION_SUFFIXES:
            raise ValueError(f"{a} is not a submission: give students' exercises.py or exercises.ipynb files "
                             "(or folders holding them)")
        if a.is_file():
            out.append(a)
        elif a.is_dir():
            out += sorted(p for p in a.iterdir() if p.is_file() and p.suffix in SUBMISSION_SUFFIXES)
            for sub in sorted(p for p in a.iterdir() if p.is_dir() and not p.name.startswith(".")):
                files = [p for p in sub.iterdir() if p.is_file() and p.suffix in SUBMISSION_SUFFIXES
                         and not p.name.startswith(".")]
                preferred = [p for p in files if p.stem == "exercises"] or files
                if preferred:
                    out.append(max(preferred, key=lambda p: (p.stat().st_mtime, p.suffix == ".ipynb")))
        else:
            missing.append(str(a))
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    return out


def student_names(paths) -> list[str]:
    """A name per file: the file's stem, or its folder's name when every stem is the same (exercises.py)."""
    stems = [p.stem for p in paths]
    generic = {s for s in stems if stems.count(s) > 1}
    names = [p.parent.name if p.stem in generic and p.parent.name else p.stem for p in paths]
    seen = Counter()
    for i, n in enumerate(names):      # still equal: number them
        seen[n] += 1
        if names.count(n) > 1:
            names[i] = f"{n}-{seen[n]}"
    return [re.sub(r"[^\w.-]+", "_", n) for n in names]


def read_points(path=None) -> dict:
    """Points per exercise: the defaults, overridden by a TOML file of ``name = points`` lines."""
    points = {name: ex.points for name, ex in EXERCISES.items()}
    if path is None:
        return points
    try:
        given = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"--points {path}: cannot read it ({e}); write one 'exercise = points' line per exercise")
    unknown = sorted(set(given) - set(points))
    if unknown:
        raise ValueError(f"--points {path}: unknown exercise {', '.join(unknown)}; the exercises are {', '.join(points)}")
    bad = [k for k, v in given.items() if not (isinstance(v, (int, float)) and v >= 0)]
    if bad:
        raise ValueError(f"--points {path}: points must be numbers >= 0 (see {', '.join(bad)})")
    points.update(given)
    return points


# ---------------------------------------------------------------------------
# one file
# ---------------------------------------------------------------------------
def _fail_all(row, message, status):
    row.status = status
    row.message = message
    row.results = {n: CheckResult(n, False, message=message) for n in EXERCISES}
    return row


def _ended(proc_rc, log: str) -> str:
    last = next((l for l in reversed(log.strip().splitlines()) if l.strip()), "")
    if proc_rc is not None and proc_rc < 0:
        try:
            name = signal.Signals(-proc_rc).name
        except ValueError:
            name = f"signal {-proc_rc}"
        return f"the process crashed ({name})" + (f": {last}" if last else "")
    return (f"the process ended early (exit code {proc_rc}; os._exit() or a crash?)"
            + (f": {last}" if last else ""))


def grade_file(path, student, cases, points, timeout=DEFAULT_TIMEOUT) -> Row:
    """Grade one file in a fresh process; never raises for anything in the student's file."""
    t0 = time.perf_counter()
    path = Path(path)
    row = Row(str(path), student, "graded", points=points)
    try:
        code = submission_code(path)
        flagged = scan(code, {n: ex.written for n, ex in EXERCISES.items()})
        # a forward pass that reaches a reference cannot make the cache a backward is judged with
        untrusted = set(scan(code, {f: (f,) for ex in EXERCISES.values() for f in ex.functions}))
    except (OSError, ValueError) as e:
        return _fail_all(row, f"could not read the file: {e}", "not loadable")
    except SyntaxError as e:
        return _fail_all(row, f"could not load: SyntaxError: {e.msg} (line {e.lineno})", "not loadable")
    except RecursionError:
        return _fail_all(row, "could not load: the code is nested too deeply to read", "not loadable")

    job = pickle.dumps({"path": str(path), "code": code, "parent": os.getpid(), "timeout": timeout,
                        "inputs": {n: [c.inputs for c in cs] for n, cs in cases.items()}})
    env = dict(os.environ, MPLBACKEND="Agg")
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "tinyalex.exercises.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, cwd=path.resolve().parent, env=env,
                                start_new_session=True)
        with _running_lock:
            _running.add(proc)
        timed_out = False
        try:
            out, _ = proc.communicate(job, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:        # something else holds the pipe: give up on it
                out = b""
        finally:
            with _running_lock:
                _running.discard(proc)
        log.seek(0)
        log_text = log.read()[-4000:].decode("utf-8", "replace")
    _kill(proc)                                      # anything the submission left running
    records = read_records(out)

    load = records[0].get("!load") if records else None
    if load is not None and load != "ok":
        return _fail_all(row, f"could not load: {load}", "not loadable")
    done = {}
    for rec in records[1:]:
        name = str(rec.pop("!exercise", ""))
        if name not in EXERCISES:                    # not a record the worker writes: ignore it
            continue
        try:
            done[name] = _judge(name, cases[name], rec, untrusted)
        except Exception as e:                       # a bug of the grader, not of the student
            done[name] = CheckResult(name, False, message=f"grader error: {type(e).__name__}: {e}")
            row.status = "grader error"
    if timed_out:
        why = f"timed out after {timeout:g} s"
        row.status = "timed out"
    elif len(done) < len(EXERCISES):
        why = _ended(proc.returncode, log_text)
        row.status = "crashed"
    else:
        why = ""
    for name in EXERCISES:
        result = done.get(name) or CheckResult(name, False, message=f"{why} before this exercise finished")
        if name in flagged:
            result = CheckResult(name, False, result.error, result.measurements, flagged[name], result.hint)
        row.results[name] = result
    row.message = why
    row.seconds = time.perf_counter() - t0
    return row


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)    # the whole session: processes the submission started too
    except (ProcessLookupError, PermissionError):
        pass


def _judge(name, cases, record, untrusted=()) -> CheckResult:
    ex = EXERCISES[name]
    runs = {}
    skip_own = bool(set(ex.functions) - set(ex.written) & set(untrusted))
    for a, attempt in enumerate(ex.attempts):
        outs = {}
        for key, value in record.items():
            ai, _, rest = key.partition("/")
            ci, _, out_name = rest.partition("/")
            if ai.isdigit() and ci.isdigit() and out_name and int(ai) == a:
                outs.setdefault(int(ci), {})[out_name] = value
        if not (skip_own and attempt == OWN_CACHE):
            runs[attempt] = [outs[i] for i in sorted(outs)]
    return ex.verdict(cases, runs)


# ---------------------------------------------------------------------------
# the batch
# ---------------------------------------------------------------------------
def csv_header():
    cols = ["student", "file", "status", "score", "total"]
    for n in EXERCISES:
        cols += [n, f"{n} error", f"{n} message"]
    return cols + ["message"]


def csv_row(row: Row):
    cells = [row.student, row.path, row.status, _num(row.score), _num(row.total)]
    for n, r in row.results.items():
        cells += [_num(row.points[n] if r.passed else 0), "" if r.error is None else f"{r.error:.2e}", r.reason]
    return cells + [row.message]


def _num(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def feedback_markdown(row: Row, seed, hints=True) -> str:
    """The feedback file of one student."""
    lines = [f"# Feedback: {row.student}", "",
             f"File `{Path(row.path).name}`: **{_num(row.score)} / {_num(row.total)} points**"
             + (f" ({row.status}: {row.message})" if row.message else ""), "",
             "| exercise | points | verdict | worst relative error | what happened |", "|---|---|---|---|---|"]
    for n, r in row.results.items():
        err = "" if r.error is None else f"{r.error:.1e}"
        got = row.points[n] if r.passed else 0
        lines.append(f"| {n} | {_num(got)} / {_num(row.points[n])} | {'PASS' if r.passed else 'FAIL'} | {err} | "
                     f"{r.reason.replace('|', '/') or 'every comparison within tolerance'} |")
    failed = [r for r in row.results.values() if not r.passed]
    if failed:
        lines += ["", "## What to look at", ""]
        for r in failed:
            lines += [f"### {r.name}", "", "```text", r.report(hints=False), "```", ""]
            if hints and r.hint:
                lines += [f"Hint: {r.hint}", ""]
    lines += ["", f"Checked on the public cases of the handout and on hidden cases (seed {seed}), "
                  "against tinyalex's own layers, in float64 (tolerance 1e-7 relative)."]
    return "\n".join(lines) + "\n"


def summary(rows) -> str:
    """A table per exercise: how many passed and the most common failures."""
    lines = [f"{'exercise':<24}{'points':>7}{'passed':>10}  common failures"]
    for n in EXERCISES:
        results = [r.results[n] for r in rows if n in r.results]
        passed = sum(r.passed for r in results)
        reasons = Counter(_short(r.reason) for r in results if not r.passed)
        common = "; ".join(f"{k} ({c})" for k, c in reasons.most_common(2))
        pts = rows[0].points[n] if rows else EXERCISES[n].points
        lines.append(f"{n:<24}{_num(pts):>7}{f'{passed}/{len(results)}':>10}  {common}")
    return "\n".join(lines)


def _short(reason: str) -> str:
    """A failure reason without its details, so that alike failures group: its first two ': ' parts."""
    short = ": ".join(reason.split(": ")[:2])
    return re.sub(r"\s*\(.*", "", short).strip()[:70]


def grade(paths, seed=None, timeout=DEFAULT_TIMEOUT, jobs=None, csv_path=None, feedback_dir=None,
          points=None, hints=True, verbose=True, quiet=False) -> list[Row]:
    """Grade every file; return the rows in the order of ``paths``."""
    paths = [Path(p) for p in paths]
    names = student_names(paths)
    points = points or read_points()
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    cases = grading_cases(seed)
    jobs = max(1, jobs or os.cpu_count() or 1)
    if verbose:
        print(f"grading {len(paths)} file(s), {jobs} at a time, timeout {timeout:g} s, hidden cases from --seed {seed}")
    partial = Path(f"{csv_path}.partial") if csv_path else None
    rows = [None] * len(paths)
    t0 = time.perf_counter()
    try:
        _grade_all(paths, names, cases, points, timeout, jobs, partial, feedback_dir, seed, hints, verbose, quiet, rows)
    except KeyboardInterrupt:
        if verbose and partial:
            print(f"interrupted: the rows graded so far are in {partial}", file=sys.stderr)
        raise
    return _finish(rows, csv_path, partial, seed, verbose, t0)


def _grade_all(paths, names, cases, points, timeout, jobs, partial, feedback_dir, seed, hints, verbose, quiet, rows):
    with ThreadPoolExecutor(jobs) as pool, (open(partial, "w", newline="", encoding="utf-8") if partial
                                            else io.StringIO()) as stream:
        writer = csv.writer(stream)
        writer.writerow(csv_header())
        futures = {pool.submit(grade_file, p, n, cases, points, timeout): i for i, (p, n) in enumerate(zip(paths, names))}
        try:
            _collect(futures, paths, names, points, rows, writer, stream, feedback_dir, seed, hints, verbose, quiet)
        except KeyboardInterrupt:             # stop the running workers, start no more
            pool.shutdown(wait=False, cancel_futures=True)
            with _running_lock:
                for proc in list(_running):
                    _kill(proc)
            raise


def _collect(futures, paths, names, points, rows, writer, stream, feedback_dir, seed, hints, verbose, quiet):
    """Take each row as its file finishes: CSV row, feedback file, progress line."""
    for k, future in enumerate(as_completed(futures), 1):
        i = futures[future]
        try:
            row = future.result()
        except Exception as e:            # the grader failed on this file: say so, go on
            row = _fail_all(Row(str(paths[i]), names[i], "", points=points),
                            f"grader error: {type(e).__name__}: {e}", "grader error")
        rows[i] = row
        writer.writerow(csv_row(row))
        stream.flush()
        if feedback_dir:
            atomic_write_text(Path(feedback_dir) / f"{row.student}.md", feedback_markdown(row, seed, hints))
        if verbose:
            print(f"[{k}/{len(paths)}] {row.student}: {_num(row.score)}/{_num(row.total)} points"
                  + ("" if row.status == "graded" else f"  ({row.status}: {row.message})"))
            if not quiet:
                for r in row.results.values():
                    print("    " + r.report(hints=hints).replace("\n", "\n    "))


def _finish(rows, csv_path, partial, seed, verbose, t0):
    if csv_path:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(csv_header())
        writer.writerows(csv_row(r) for r in rows)
        atomic_write_text(csv_path, buf.getvalue())
        partial.unlink()
    if verbose:
        print(f"\n{summary(rows)}\n\ngraded {len(rows)} file(s) in {time.perf_counter() - t0:.1f} s "
              f"(hidden cases: --seed {seed})" + (f"; table: {csv_path}" if csv_path else ""))
    return rows
