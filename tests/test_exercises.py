"""The classroom exercises: handout generation, checks, and a grader a teacher can run on a class.

The submissions graded here are written by the tests themselves: an
untouched stub, one wrong solution per exercise (max pooling's is the tie
case), a correct solution in another style, three cheats, a sys.exit(), an
endless loop, a crash and a notebook with magics.
"""
import ast
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tinyalex.exercises import checks, generate, grade, scan
from tinyalex.exercises.checks import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "notebooks" / "exercises"
SOLUTIONS = ROOT / "solutions" / "solutions.py"
SOURCE = SOLUTIONS.read_text()
SEED = 20260
TIMEOUT = 10.0
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def load(path, name="submission"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


solutions = load(SOLUTIONS, "tinyalex_test_solutions")


def replace_defs(source, new_code):
    """``source`` with its top-level functions replaced by those in ``new_code`` (new helpers appended)."""
    new_code = textwrap.dedent(new_code)
    new = {n.name: ast.get_source_segment(new_code, n) for n in ast.parse(new_code).body
           if isinstance(n, ast.FunctionDef)}
    lines = source.splitlines(keepends=True)
    for node in sorted((n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in new),
                       key=lambda n: -n.lineno):
        lines[node.lineno - 1:node.end_lineno] = [new[node.name] + "\n"]
    present = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    return "".join(lines) + "".join(f"\n\n{code}\n" for name, code in new.items() if name not in present)


# ---------------------------------------------------------------------------
# the submissions
# ---------------------------------------------------------------------------
WRONG = {   # exercise -> a plausible wrong version of its function(s)
    "conv_forward": """
        def conv_forward(x, W, b, stride=1, padding=0, groups=1):
            xp = get_array_module(x)
            N, C, H, W_in = x.shape
            F, _, kh, kw = W.shape
            Ho = (H + 2 * padding - kh) // stride + 1
            Wo = (W_in + 2 * padding - kw) // stride + 1
            cols = im2col(x, (kh, kw), (stride, stride), (padding, padding), groups)
            out = xp.matmul(W.reshape(groups, F // groups, -1), cols)
            out = out.reshape(N, F, Ho, Wo) + b.reshape(1, F, 1, 1)     # reshape, not transpose
            return out, (x.shape, cols, W, stride, padding, groups)
        """,
    "conv_backward": """
        def conv_backward(dout, cache):
            x_shape, cols, W, stride, padding, groups = cache
            F, _, kh, kw = W.shape
            G = groups
            dout_mat = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)
            dW = np.matmul(dout_mat, cols.transpose(0, 2, 1)).reshape(W.shape).transpose(0, 1, 3, 2)
            db = dout.sum(axis=(0, 2, 3))
            dcols = np.matmul(W.reshape(G, F // G, -1).transpose(0, 2, 1), dout_mat)
            dx = col2im(dcols, x_shape, (kh, kw), (stride, stride), (padding, padding), G)
            return dx, dW, db
        """,
    "window_sum": """
        def window_sum(a, size):
            out = np.zeros_like(a)
            C = a.shape[1]
            for d in range(-(size // 2), size // 2 + 1):      # one offset too many for even sizes
                lo, hi = max(0, d), min(C, C + d)
                if lo < hi:
                    out[:, lo - d:hi - d] += a[:, lo:hi]
            return out
        """,
    "lrn_forward": """
        def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
            s = k + alpha / size * window_sum(x * x, size)      # Caffe's convention, not the paper's
            out = x * s ** (-beta)
            return out, (x, s, out, size, alpha, beta)
        """,
    "lrn_backward": """
        def lrn_backward(dout, cache):
            x, s, out, size, alpha, beta = cache
            return dout * s ** (-beta)                          # no cross-channel term
        """,
    "maxpool_backward": """
        def maxpool_forward(x, kernel_size=3, stride=2):
            k, s = kernel_size, stride
            N, C, H, W = x.shape
            Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
            out = np.full((N, C, Ho, Wo), -np.inf)
            for i in range(k):
                for j in range(k):
                    out = np.maximum(out, x[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s])
            return out, (x, out, k, s)

        def maxpool_backward(dout, cache):
            x, out, k, s = cache
            Ho, Wo = dout.shape[2:]
            dx = np.zeros_like(x)
            for i in range(k):
                for j in range(k):
                    win = x[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]
                    dx[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += np.where(win == out, dout, 0)
            return dx                                           # every tied maximum gets the gradient
        """,
    "dropout": """
        def dropout_forward(x, p=0.5, mode="inverted", training=True, mask=None, rng=None):
            if not training:
                return x, 1.0                                   # forgets the paper's (1 - p) at test time
            if mask is None:
                mask = rng.random(x.shape) >= p
            factor = mask * (1.0 / (1.0 - p) if mode == "inverted" else 1.0)
            return x * factor, factor
        """,
    "softmax_cross_entropy": """
        def softmax_cross_entropy(logits, labels):
            N = logits.shape[0]
            z = logits - logits.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            d = np.exp(logp)
            d[np.arange(N), labels] -= 1
            return float(-logp[np.arange(N), labels].sum()), d  # the sum, not the mean
        """,
    "sgd_momentum_update": """
        def sgd_momentum_update(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
            v = momentum * v + dw + weight_decay * w           # torch.optim.SGD's form
            return w - lr * v, v
        """,
    "batchnorm_backward": """
        def batchnorm_backward(dout, cache):
            xhat, gamma, inv_std = cache
            g = dout * gamma.reshape(1, -1, 1, 1)
            return g * inv_std, (dout * xhat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))   # as if mean, var were constants
        """,
    "residual_backward": """
        def residual_backward(dout, cache):
            cache1, h, cache2, s = cache
            g = dout * (s > 0)
            da, dW2, db2 = conv_backward(g, cache2)
            dx_body, dW1, db1 = conv_backward(da * (h > 0), cache1)
            return dx_body, dW1, db1, dW2, db2                  # forgets the shortcut's gradient
        """,
}

OTHER_STYLE = """
    def conv_forward(x, W, b, stride=1, padding=0, groups=1):
        N, C, H, W_in = x.shape
        F, Cg, kh, kw = W.shape
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        Ho = (H + 2 * padding - kh) // stride + 1
        Wo = (W_in + 2 * padding - kw) // stride + 1
        out = np.zeros((N, F, Ho, Wo))
        Fg = F // groups
        for f in range(F):
            g = f // Fg
            for y in range(Ho):
                for x_ in range(Wo):
                    patch = xp[:, g * Cg:(g + 1) * Cg, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw]
                    out[:, f, y, x_] = (patch * W[f]).sum(axis=(1, 2, 3)) + b[f]
        return out, {"x": x, "W": W, "stride": stride, "padding": padding, "groups": groups}

    def conv_backward(dout, cache):
        x, W, stride, padding, groups = (cache[k] for k in ("x", "W", "stride", "padding", "groups"))
        N, F, Ho, Wo = dout.shape
        _, Cg, kh, kw = W.shape
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        dxp, dW = np.zeros_like(xp), np.zeros_like(W)
        Fg = F // groups
        for f in range(F):
            g = f // Fg
            for y in range(Ho):
                for x_ in range(Wo):
                    sl = (slice(None), slice(g * Cg, (g + 1) * Cg), slice(y * stride, y * stride + kh),
                          slice(x_ * stride, x_ * stride + kw))
                    d = dout[:, f, y, x_][:, None, None, None]
                    dW[f] += (xp[sl] * d).sum(axis=0)
                    dxp[sl] += W[f][None] * d
        H, W_in = x.shape[2:]
        return dxp[:, :, padding:padding + H, padding:padding + W_in], dW, dout.sum(axis=(0, 2, 3))

    def window_sum(a, size):
        C = a.shape[1]
        out = np.zeros_like(a)
        for i in range(C):
            lo, hi = max(0, i - size // 2), min(C - 1, i + (size - 1) // 2)
            out[:, i] = a[:, lo:hi + 1].sum(axis=1)
        return out
    """

FORWARD_BUGS = """
    def conv_forward(x, W, b, stride=1, padding=0, groups=1):
        xp = get_array_module(x)
        N, C, H, W_in = x.shape
        F, _, kh, kw = W.shape
        Ho = (H + 2 * padding - kh) // stride + 1
        Wo = (W_in + 2 * padding - kw) // stride + 1
        cols = im2col(x, (kh, kw), (stride, stride), (padding, padding), groups)
        out = xp.matmul(W.reshape(groups, F // groups, -1), cols).reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
        return out, (x.shape, cols, W, stride, padding, groups)          # forgot the bias

    def window_sum(a, size):
        return a * size                                                   # not a window sum at all
    """

DELEGATE = """
    def conv_forward(x, W, b, stride=1, padding=0, groups=1):
        F, Cg, kh, kw = W.shape
        conv = Conv2D(Cg * groups, F, (kh, kw), stride, padding, groups, dtype=np.float64)
        conv.params["W"][...] = W
        conv.params["b"][...] = b
        return conv.forward(x), None

    def maxpool_backward(dout, cache):
        return _pool_backward(dout, cache)

    def _pool_backward(dout, cache):                     # a helper hides the layer one call deeper
        x_shape, argmax, k, s = cache
        pool = layers.MaxPool2D(k, s, dtype=np.float64)
        pool.impl = "reference"
        pool.argmax, pool.x_shape = argmax, x_shape
        return pool.backward(dout)
    """

PATCHER = """
import tinyalex.exercises.checks as C

C.Exercise.verdict = lambda self, cases, runs: C.CheckResult(self.name, True, 0.0, [("patched", 0.0, 1.0)])
C.Exercise.check = lambda self, impl, verbose=True, hints=True: C.CheckResult(self.name, True)
"""


def notebook_with_magics(tmp):
    generate.generate(tmp, with_solutions=True, solution_path=SOLUTIONS)
    nb = json.loads((tmp / "solutions.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    magic = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
             "source": "%matplotlib inline\n!pip install --no-index nothing-at-all\nfiles = !ls\n%load_ext autoreload"}
    nb["cells"].insert(1, magic)
    code[1]["source"] = "%%time\n" + "".join(code[1]["source"])          # a cell magic before a solution
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "%%bash\necho this is not Python"})
    return json.dumps(nb)


def write_class(folder: Path) -> dict:
    """Every kind of submission, one folder per student as a teacher collects them; {student: expectation}."""
    def put(student, text, name="exercises.py"):
        (folder / student).mkdir(parents=True)
        (folder / student / name).write_text(text)

    generate.generate(folder / "_handout", solution_path=SOLUTIONS)
    stub = (folder / "_handout" / "exercises.py").read_text()
    put("correct", SOURCE)
    put("stub", stub)
    for ex, code in WRONG.items():
        put(f"wrong_{ex}", replace_defs(SOURCE, code))
    put("other_style", replace_defs(SOURCE, OTHER_STYLE))
    put("forward_bugs", replace_defs(SOURCE, FORWARD_BUGS))
    put("delegate", "from tinyalex import layers\nfrom tinyalex.layers import Conv2D\n" + replace_defs(SOURCE, DELEGATE))
    put("import_solutions", "from tinyalex.exercises.solutions import *  # noqa\n")
    put("patcher", stub + PATCHER)
    put("exit_in_function", replace_defs(SOURCE, """
        def softmax_cross_entropy(logits, labels):
            import sys
            sys.exit(0)                                          # left over from debugging
        """))
    put("exit_at_import", "import sys\n" + SOURCE.replace("import numpy as np\n", "import numpy as np\nsys.exit()\n", 1))
    put("endless", replace_defs(SOURCE, """
        def window_sum(a, size):
            while True:
                pass
        """))
    put("crash", replace_defs(SOURCE, """
        def lrn_backward(dout, cache):
            import os
            os.abort()
        """))
    put("notebook", notebook_with_magics(folder / "_nb"), "exercises.ipynb")
    import shutil

    shutil.rmtree(folder / "_handout")
    shutil.rmtree(folder / "_nb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once through the command line: (rows by student, CSV rows, stdout, exit code, folder)."""
    tmp = tmp_path_factory.mktemp("class")
    write_class(tmp / "submissions")
    proc = subprocess.run([sys.executable, "-m", "tinyalex", "exercises", "grade", str(tmp / "submissions"),
                           "--seed", str(SEED), "--timeout", str(TIMEOUT), "--jobs", "2", "--quiet",
                           "--csv", str(tmp / "scores.csv"), "--feedback", str(tmp / "feedback")],
                          capture_output=True, text=True, env=ENV, timeout=600)
    import csv

    with open(tmp / "scores.csv", newline="") as f:
        table = list(csv.DictReader(f))
    return {r["student"]: r for r in table}, proc, tmp


def passed(row):
    return {n for n in EXERCISES if row[n] not in ("", "0")}


ALL = set(EXERCISES)


# ---------------------------------------------------------------------------
# the grader on the class
# ---------------------------------------------------------------------------
def test_grading_exits_0_when_the_grading_worked_even_if_students_failed(graded):
    rows, proc, _ = graded
    assert proc.returncode == 0, proc.stderr
    assert len(rows) == 12 + len(WRONG)


def test_correct_solution_scores_full_marks(graded):
    rows, _, _ = graded
    assert rows["correct"]["status"] == "graded"
    assert rows["correct"]["score"] == rows["correct"]["total"] == str(sum(e.points for e in EXERCISES.values()))


def test_untouched_stub_scores_0_with_not_implemented(graded):
    row = graded[0]["stub"]
    assert row["score"] == "0" and passed(row) == set()
    assert all(row[f"{n} message"].startswith("not implemented yet") for n in EXERCISES)


@pytest.mark.parametrize("exercise", list(WRONG))
def test_a_wrong_solution_fails_its_exercise_only(graded, exercise):
    row = graded[0][f"wrong_{exercise}"]
    assert passed(row) == ALL - {exercise}, row
    assert row[f"{exercise} message"]
    assert row[f"{exercise} error"] or "wrong answer" in row[f"{exercise} message"]


def test_maxpool_backward_that_feeds_every_tied_maximum_fails_on_the_ties(graded):
    message = graded[0]["wrong_maxpool_backward"]["maxpool_backward message"]
    assert "ties" in message and "with the cache of your own forward" in message, message


def test_correct_solution_in_another_style_with_its_own_cache_passes(graded):
    row = graded[0]["other_style"]
    assert passed(row) == ALL, row


def test_a_forward_bug_costs_one_point_not_two(graded):
    row = graded[0]["forward_bugs"]
    assert passed(row) == ALL - {"conv_forward", "window_sum"}, row


def test_delegating_to_tinyalex_layers_scores_0_for_those_exercises(graded):
    row = graded[0]["delegate"]
    # the residual block calls the delegating conv_forward: it reaches Conv2D too
    assert passed(row) == ALL - {"conv_forward", "maxpool_backward", "residual_backward"}, row
    assert "Conv2D from tinyalex.layers" in row["conv_forward message"]
    assert "tinyalex.layers.MaxPool2D" in row["maxpool_backward message"]
    assert "_pool_backward()" in row["maxpool_backward message"]


def test_importing_the_solutions_scores_0(graded):
    row = graded[0]["import_solutions"]
    assert row["score"] == "0" and row["status"] == "not loadable"
    assert "tinyalex.exercises.solutions" in row["message"]


def test_patching_the_checker_changes_no_verdict(graded):
    rows = graded[0]
    assert rows["patcher"]["score"] == "0"
    assert rows["correct"]["score"] == rows["correct"]["total"] and rows["stub"]["score"] == "0"


def test_sys_exit_in_a_function_fails_that_exercise_only(graded):
    row = graded[0]["exit_in_function"]
    assert passed(row) == ALL - {"softmax_cross_entropy"}
    assert "called sys.exit(0)" in row["softmax_cross_entropy message"]


def test_sys_exit_at_import_is_a_failing_row_with_the_reason(graded):
    row = graded[0]["exit_at_import"]
    assert row["status"] == "not loadable" and row["score"] == "0" and "called sys.exit" in row["message"]


def test_endless_loop_times_out_and_keeps_the_exercises_done_before(graded):
    row = graded[0]["endless"]
    assert row["status"] == "timed out"
    assert f"timed out after {TIMEOUT:g} s" in row["message"]
    assert passed(row) == {"conv_forward", "conv_backward"}
    assert "timed out" in row["window_sum message"]


def test_a_crash_is_a_failing_row_with_the_reason(graded):
    row = graded[0]["crash"]
    assert row["status"] == "crashed" and "SIGABRT" in row["message"]
    assert passed(row) == {"conv_forward", "conv_backward", "window_sum", "lrn_forward"}


def test_notebook_with_magics_and_shell_lines_grades(graded):
    row = graded[0]["notebook"]
    assert row["file"].endswith("exercises.ipynb")
    assert passed(row) == ALL, row


def test_one_feedback_file_per_student_with_score_and_hints(graded):
    rows, _, tmp = graded
    files = sorted(p.stem for p in (tmp / "feedback").glob("*.md"))
    assert files == sorted(rows)
    text = (tmp / "feedback" / "wrong_lrn_forward.md").read_text()
    assert f"**{rows['wrong_lrn_forward']['score']} / {rows['wrong_lrn_forward']['total']} points**" in text
    assert "| lrn_forward | 0 / 1 | FAIL |" in text and "Hint: " in text


def test_csv_has_score_worst_error_and_message_per_exercise(graded):
    row = graded[0]["wrong_lrn_backward"]
    for n in EXERCISES:
        assert {n, f"{n} error", f"{n} message"} <= set(row)
    assert float(row["lrn_backward error"]) > 1e-3 and row["lrn_backward"] == "0"
    assert float(graded[0]["correct"]["lrn_backward error"]) < 1e-7


def test_summary_table_counts_passes_per_exercise(graded):
    out = graded[1].stdout
    line = next(l for l in out.splitlines() if l.startswith("window_sum "))
    rows = graded[0]
    n_passed = sum("window_sum" in passed(r) for r in rows.values())
    assert f"{n_passed}/{len(rows)}" in line and "(1)" in line            # with the commonest failures


# ---------------------------------------------------------------------------
# grader: details
# ---------------------------------------------------------------------------
def test_killed_batch_keeps_the_rows_already_graded(tmp_path):
    good, hang = tmp_path / "a_good.py", tmp_path / "b_hang.py"
    good.write_text(SOURCE)
    hang.write_text("while True:\n    pass\n")
    table = tmp_path / "scores.csv"
    proc = subprocess.Popen([sys.executable, "-m", "tinyalex", "exercises", "grade", str(good), str(hang),
                             "--jobs", "1", "--timeout", "300", "--csv", str(table), "--quiet", "--seed", "1"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    partial = Path(f"{table}.partial")
    deadline = time.time() + 120
    while time.time() < deadline and not (partial.exists() and len(partial.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    workers = [int(p) for t in Path(f"/proc/{proc.pid}/task").iterdir()
               for p in (t / "children").read_text().split()]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)                          # the worker notices its grader is gone and ends itself
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]]
    for w in alive:                        # should not be needed; never leave a loop running
        os.kill(w, signal.SIGKILL)
    lines = partial.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("a_good,") and not table.exists()
    assert workers and not alive


def test_grade_cli_names_a_missing_file(tmp_path, capsys):
    from tinyalex.cli import main

    assert main(["exercises", "grade", str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err
    assert "nope.py" in err and "Traceback" not in err


def test_points_file_overrides_the_default_points(tmp_path):
    (tmp_path / "points.toml").write_text("conv_forward = 10\n")
    points = grade.read_points(tmp_path / "points.toml")
    assert points["conv_forward"] == 10 and points["window_sum"] == EXERCISES["window_sum"].points
    (tmp_path / "bad.toml").write_text("conv_fwd = 1\n")
    with pytest.raises(ValueError, match="unknown exercise conv_fwd"):
        grade.read_points(tmp_path / "bad.toml")


def test_feedback_without_hints_for_exams(tmp_path):
    (tmp_path / "s.py").write_text(replace_defs(SOURCE, WRONG["dropout"]))
    rows = grade.grade([tmp_path / "s.py"], seed=1, timeout=60, feedback_dir=tmp_path / "fb", hints=False,
                       verbose=False)
    text = (tmp_path / "fb" / "s.md").read_text()
    assert rows[0].results["dropout"].hint and "Hint" not in text and "hint:" not in text


def test_a_students_folder_with_both_files_gives_the_newer(tmp_path):
    (tmp_path / "kim").mkdir()
    py, nb = tmp_path / "kim" / "exercises.py", tmp_path / "kim" / "exercises.ipynb"
    py.write_text("")
    nb.write_text("{}")
    os.utime(py, (1, 1))
    assert grade.find_submissions([tmp_path]) == [nb]
    os.utime(nb, (0, 0))
    assert grade.find_submissions([tmp_path]) == [py]


def test_a_file_that_is_not_a_notebook_is_a_failing_row_not_a_crash(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    row = grade.grade_file(tmp_path / "bad.ipynb", "bad", checks.grading_cases(0), grade.read_points())
    assert row.status == "not loadable" and "not a Jupyter notebook" in row.message and row.score == 0


def test_the_star_import_of_the_checks_gives_no_reference():
    names = set(checks.__all__)
    assert {"check_conv_forward", "run_all"} <= names
    assert not names & {"EXERCISES", "CHECKS", "L", "reference_conv", "reference_window_sum", "SGD"}


def test_students_are_named_after_their_folders(tmp_path):
    paths = [tmp_path / "kim" / "exercises.py", tmp_path / "lee" / "exercises.ipynb", tmp_path / "park.py"]
    assert grade.student_names(paths) == ["kim", "lee", "park"]


def test_hidden_cases_follow_the_seed():
    a, b, c = checks.hidden_cases(1), checks.hidden_cases(1), checks.hidden_cases(2)
    x = lambda cases: cases["conv_forward"][0].inputs["x"]
    assert np.array_equal(x(a), x(b)) and not np.array_equal(x(a), x(c))


def test_hidden_cases_cover_groups_non_square_kernels_strides_paddings_ties_and_large_logits():
    conv = [c.inputs for s in range(5) for c in checks.hidden_cases(s)["conv_backward"]]
    assert any(i["groups"] > 1 for i in conv)
    assert any(i["W"].shape[2] != i["W"].shape[3] for i in conv)
    assert {i["stride"] for i in conv} >= {1, 2, 3} and {i["padding"] for i in conv} >= {0, 1, 2}
    pools = checks.hidden_cases(0)["maxpool_backward"]
    assert any("ties" in c.label for c in pools)
    assert max(np.abs(c.inputs["logits"]).max() for c in checks.hidden_cases(0)["softmax_cross_entropy"]) > 500


# ---------------------------------------------------------------------------
# the scan
# ---------------------------------------------------------------------------
FUNCS = {n: e.functions for n, e in EXERCISES.items()}


def test_scan_accepts_the_handout_and_the_solutions():
    assert scan.scan(SOURCE, FUNCS) == {}
    assert scan.scan(generate.make_student_source(SOURCE), FUNCS) == {}


@pytest.mark.parametrize("code, culprit", [
    ("import tinyalex\ndef window_sum(a, size):\n    return tinyalex.layers.lrn.window_sum(a, size)\n",
     "tinyalex.layers.lrn.window_sum"),
    ("from tinyalex.layers.lrn import window_sum as ws\ndef window_sum(a, size):\n    return ws(a, size)\n",
     "tinyalex.layers.lrn"),
    ("def window_sum(a, size):\n    import importlib\n    return importlib.import_module('tinyalex.layers')\n",
     "importlib"),
    ("from tinyalex.exercises import checks\ndef window_sum(a, size):\n    return checks.reference_window_sum(a, size)\n",
     "checks.reference_window_sum"),
    ("def window_sum(a, size):\n    return __import__('tinyalex.layers')\n", "__import__"),
    ("from tinyalex.gradcheck import *\ndef window_sum(a, size):\n    return a\n", "tinyalex.gradcheck"),
    ("from tinyalex.fast import implementations as window_sum\n", "tinyalex.fast"),
])
def test_scan_flags_a_shortcut_to_a_reference(code, culprit):
    flagged = scan.scan(code, FUNCS)
    assert "window_sum" in flagged and culprit in flagged["window_sum"], flagged


def test_scan_does_not_flag_an_unused_import_or_numpy():
    code = "import numpy as np\nfrom tinyalex.models import alexnet\ndef window_sum(a, size):\n    return np.sum(a)\n"
    assert scan.scan(code, FUNCS) == {}


def test_notebook_magics_and_shell_lines_become_pass():
    cell = "%matplotlib inline\nx = 1\n!pip install foo\nfiles = !ls\ndef f():\n    %time g()\n    return 1"
    code = scan.strip_magics(cell)
    ast.parse(code)
    assert "x = 1" in code and "pip" not in code
    assert scan.strip_magics("%%bash\necho hi").startswith("pass")
    assert "y = 2" in scan.strip_magics("%%time\ny = 2")


# ---------------------------------------------------------------------------
# the solutions are not shipped, the handout does not name them
# ---------------------------------------------------------------------------
def test_solutions_are_not_in_the_package():
    assert importlib.util.find_spec("tinyalex.exercises.solutions") is None
    assert not list((ROOT / "tinyalex").rglob("solutions*"))
    from setuptools import find_packages
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=cfg["include"], exclude=cfg["exclude"])
    assert "tinyalex.exercises" in packages and not any("solution" in p for p in packages)


def test_handout_does_not_name_the_solutions():
    for name in ("exercises.py", "exercises.ipynb"):
        text = (COMMITTED / name).read_text()
        assert "solutions" not in text.lower() and "BEGIN SOLUTION" not in text


def test_generate_without_the_solution_source_says_where_to_get_it(tmp_path, capsys):
    from tinyalex.cli import main

    assert main(["exercises", "generate", "--out", str(tmp_path), "--solutions", str(tmp_path / "none.py")]) == 2
    assert "solutions/solutions.py" in capsys.readouterr().err


def test_selftest_passes_on_the_solutions(capsys):
    from tinyalex.cli import main

    assert main(["exercises", "selftest", "--solutions", str(SOLUTIONS)]) == 0
    assert "self-test passed" in capsys.readouterr().out


def test_hints_give_a_direction_not_the_answer_line():
    stub = generate.make_student_source(SOURCE)
    for answer in ("window_sum(dout * out / s, size)", "argmax == i * k + j", "out[:, lo - d:hi - d]",
                   "logp[xp.arange(N), labels]"):
        assert answer not in stub
        assert all(answer not in (e.hint if isinstance(e.hint, str) else "") for e in EXERCISES.values())


def test_no_hints_handout_for_exams(tmp_path):
    generate.generate(tmp_path, solution_path=SOLUTIONS, hints=False)
    text = (tmp_path / "exercises.py").read_text()
    assert "Hint" not in text and "run_all(globals(), hints=False)" in text
    nb = (tmp_path / "exercises.ipynb").read_text()
    assert "check_conv_forward(globals(), hints=False)" in nb
    ast.parse(text)


# ---------------------------------------------------------------------------
# the checks in the student's own notebook
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    generate.generate(out, solution_path=SOLUTIONS)
    return load(out / "exercises.py", "tinyalex_test_student")


@pytest.mark.parametrize("name", list(EXERCISES))
def test_solution_passes_its_check(name):
    result = getattr(checks, f"check_{name}")(solutions, verbose=False)
    assert result.passed, result.report(details=True)
    assert result.measurements, "a check must compare something"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_generated_stub_fails_its_check_as_not_implemented(name, student):
    result = getattr(checks, f"check_{name}")(student, verbose=False)
    assert not result.passed
    assert "not implemented yet" in result.message
    assert result.hint and "hint:" in result.report()


def test_checks_accept_a_notebook_globals_dict(capsys):
    result = checks.check_window_sum(dict(vars(solutions)))
    assert result.passed
    assert "[PASS] window_sum" in capsys.readouterr().out


def test_check_restores_the_students_window_sum_after_an_lrn_check():
    module = types.ModuleType("m")
    exec(compile(replace_defs(SOURCE, "def window_sum(a, size):\n    return a\n"), "m", "exec"), module.__dict__)
    assert checks.check_lrn_forward(module, verbose=False).passed
    assert not checks.check_window_sum(module, verbose=False).passed
    assert module.window_sum(np.ones((1, 3, 1, 1)), 3).sum() == 3      # the student's own again


def test_conv_backward_hint_points_at_dx_when_only_dx_is_wrong():
    module = types.ModuleType("m")
    exec(compile(replace_defs(SOURCE, """
        def conv_backward(dout, cache):
            x_shape, cols, W, stride, padding, groups = cache
            dx, dW, db = _right(dout, (x_shape, cols, W[:, :, ::-1, ::-1], stride, padding, groups))
            return dx, _right(dout, cache)[1], db
        """) + "\n_right = None\n", "m", "exec"), module.__dict__)
    module._right = solutions.conv_backward
    result = checks.check_conv_backward(module, verbose=False)
    assert not result.passed and "dx is not" in result.hint and "not flipped" in result.hint


# ---------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------
def test_batchnorm_backward_that_ignores_the_batch_statistics_is_told_where_dx_goes_wrong():
    module = types.ModuleType("m")
    exec(compile(replace_defs(SOURCE, WRONG["batchnorm_backward"]), "m", "exec"), module.__dict__)
    result = checks.check_batchnorm_backward(module, verbose=False)
    assert not result.passed and result.hint.startswith("dgamma and dbeta are right, dx is not")
    assert all(e < tol for w, e, tol in result.measurements if not w.startswith("dx"))


def test_residual_backward_without_the_shortcut_gradient_is_told_about_the_two_paths():
    module = types.ModuleType("m")
    exec(compile(replace_defs(SOURCE, WRONG["residual_backward"]), "m", "exec"), module.__dict__)
    result = checks.check_residual_backward(module, verbose=False)
    assert not result.passed and "along two paths" in result.hint


def test_residual_check_runs_with_the_reference_convolutions_and_restores_the_students():
    module = types.ModuleType("m")
    broken = "def conv_backward(dout, cache):\n    raise ValueError('my conv is broken')\n"
    exec(compile(replace_defs(SOURCE, broken), "m", "exec"), module.__dict__)
    mine = module.conv_backward
    assert checks.check_residual_backward(module, verbose=False).passed
    assert module.conv_backward is mine


def test_every_solution_region_becomes_a_stub():
    stub = generate.make_student_source(SOURCE)

    def markers(text, marker):
        return sum(line.strip() == marker for line in text.splitlines())
    regions = markers(SOURCE, generate.BEGIN)
    assert regions == markers(SOURCE, generate.END) >= 9
    assert markers(stub, generate.BEGIN) == markers(stub, generate.END) == 0
    assert stub.count("# YOUR CODE HERE") == regions
    for name in [n.name for n in ast.parse(SOURCE).body if isinstance(n, ast.FunctionDef)]:
        assert f"def {name}(" in stub


def test_generator_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate.generate(a, with_solutions=True, solution_path=SOLUTIONS)
    generate.generate(b, with_solutions=True, solution_path=SOLUTIONS)
    for name in ("exercises.py", "exercises.ipynb", "solutions.ipynb"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_committed_student_files_are_up_to_date(tmp_path):
    generate.generate(tmp_path, solution_path=SOLUTIONS)
    for name in ("exercises.py", "exercises.ipynb"):
        assert (COMMITTED / name).read_text() == (tmp_path / name).read_text(), (
            f"notebooks/exercises/{name} is stale: run python -m tinyalex exercises generate --out notebooks/exercises")


def test_handout_states_the_points_of_each_exercise():
    import nbformat

    nb = nbformat.read(COMMITTED / "exercises.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    for name, ex in EXERCISES.items():
        assert sum(f"check_{name}(globals())" in c for c in code) == 1, name
        assert any(f"# {name}: {ex.points} point" in c for c in code), name
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_unbalanced_markers_are_refused_with_the_line():
    with pytest.raises(ValueError, match="line 2"):
        generate.make_student_source("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(ValueError, match="without"):
        generate.make_student_source("def f():\n    ### END SOLUTION\n")


def test_solutions_run_on_a_standin_device_and_match_numpy():
    """The solutions take xp from their input, so they run (unchanged) where the data lives."""
    from tinyalex import backend as B

    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 4, 7, 7)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    logits, labels = rng.standard_normal((4, 5)), np.array([0, 1, 2, 4])

    def run(put):
        out, cache = solutions.conv_forward(put(x), put(W), put(b), 2, 1, 2)
        dx, dW, db = solutions.conv_backward(put(np.ones(out.shape)), cache)
        lrn, lcache = solutions.lrn_forward(put(x), 5, 0.5)
        dl = solutions.lrn_backward(put(np.ones(x.shape)), lcache)
        pool, pcache = solutions.maxpool_forward(put(x))
        dp = solutions.maxpool_backward(put(np.ones(pool.shape)), pcache)
        loss, dz = solutions.softmax_cross_entropy(put(logits), put(labels))
        w, v = solutions.sgd_momentum_update(put(W), put(W), put(W), 0.1)
        return [B.to_host(a) for a in (out, dx, dW, db, lrn, dl, pool, dp, dz, w, v)] + [loss]

    host = run(lambda a: a)
    with B.use_backend("standin", 1), B.device(1):
        device = run(lambda a: B.to_device(a, 1, "standin"))
    for h, d in zip(host, device):
        np.testing.assert_allclose(d, h, rtol=1e-12, atol=1e-12)


EXPECTED = {   # kind of submission -> the exercises it passes
    "correct": ALL, "other_style": ALL, "notebook": ALL,
    "stub": set(), "import_solutions": set(), "patcher": set(), "exit_at_import": set(),
    **{f"wrong_{ex}": ALL - {ex} for ex in WRONG},
    "forward_bugs": ALL - {"conv_forward", "window_sum"},
    "delegate": ALL - {"conv_forward", "maxpool_backward", "residual_backward"},
    "exit_in_function": ALL - {"softmax_cross_entropy"},
    "crash": {"conv_forward", "conv_backward", "window_sum", "lrn_forward"},
    "endless": {"conv_forward", "conv_backward"},
}


@pytest.mark.slow
def test_a_class_of_60_grades_in_under_a_minute_on_2_cores(tmp_path):
    """60 folders, every kind of submission above about three times (one endless loop): every row right."""
    one = tmp_path / "one"
    write_class(one)
    import shutil

    src = sorted(p for p in one.iterdir() if p.name != "endless")
    kinds = [src[i % len(src)] for i in range(59)] + [one / "endless"]
    for i, kind in enumerate(kinds):
        shutil.copytree(kind, tmp_path / "class" / f"{i:02d}_{kind.name}")
    assert set(EXPECTED) == {p.name for p in one.iterdir()}
    t0 = time.perf_counter()
    files = grade.find_submissions([tmp_path / "class"])
    rows = grade.grade(files, seed=SEED, timeout=20, jobs=2, verbose=False)
    seconds = time.perf_counter() - t0
    assert len(rows) == 60 == len(files)
    for row in rows:
        got = {n for n, r in row.results.items() if r.passed}
        assert got == EXPECTED[row.student.split("_", 1)[1]], row.student
    print(f"graded 60 files in {seconds:.1f} s")
    assert seconds < 60


def test_grading_a_file_that_is_not_py_or_ipynb_is_one_clear_error(tmp_path, capsys):
    from tinyalex.cli import main

    notes = tmp_path / "notes.txt"
    notes.write_text("not python")
    assert main(["exercises", "grade", str(notes), "--csv", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert "notes.txt is not a submission: give students' exercises.py or exercises.ipynb" in err
    assert "Traceback" not in err and not (tmp_path / "g.csv").exists()
