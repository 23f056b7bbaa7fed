"""The classroom exercises: solutions pass, generated stubs fail cleanly, the generator is reproducible."""
import re
import types
from pathlib import Path

import numpy as np
import pytest

from tinyalex.exercises import checks, generate, solutions
from tinyalex.exercises.checks import CHECKS, run_all

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "notebooks" / "exercises"


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    generate.generate(out)
    return generate.load_module(out / "exercises.py")


@pytest.mark.parametrize("name", list(CHECKS))
def test_solution_passes_its_check(name):
    result = getattr(checks, f"check_{name}")(solutions, verbose=False)
    assert result.passed, result.report(details=True)
    assert result.measurements, "a check must compare something"


@pytest.mark.parametrize("name", list(CHECKS))
def test_generated_stub_fails_its_check_as_not_implemented(name, student):
    result = getattr(checks, f"check_{name}")(student, verbose=False)
    assert not result.passed
    assert "not implemented yet" in result.message
    assert result.hint and "hint:" in result.report()


def test_every_solution_region_becomes_a_stub():
    source = generate.SOLUTIONS.read_text()
    stub = generate.make_student_source(source)
    def markers(text, marker):
        return sum(line.strip() == marker for line in text.splitlines())
    regions = markers(source, generate.BEGIN)
    assert regions == markers(source, generate.END) >= 9
    assert markers(stub, generate.BEGIN) == markers(stub, generate.END) == 0
    assert stub.count("# YOUR CODE HERE") == regions
    # signatures and docstrings survive
    for name in re.findall(r"^def (\w+)\(", source, flags=re.M):
        assert f"def {name}(" in stub


def test_generator_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate.generate(a, with_solutions=True)
    generate.generate(b, with_solutions=True)
    for name in ("exercises.py", "exercises.ipynb", "solutions.ipynb"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_committed_student_files_are_up_to_date(tmp_path):
    generate.generate(tmp_path)
    for name in ("exercises.py", "exercises.ipynb"):
        assert (COMMITTED / name).read_text() == (tmp_path / name).read_text(), (
            f"notebooks/exercises/{name} is stale: run python -m tinyalex exercises generate --out notebooks/exercises")


def test_student_notebook_has_one_check_cell_per_exercise():
    import nbformat

    nb = nbformat.read(COMMITTED / "exercises.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    for name in CHECKS:
        assert sum(f"check_{name}(globals())" in c for c in code) == 1, name
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_unbalanced_markers_are_refused_with_the_line():
    with pytest.raises(ValueError, match="line 2"):
        generate.make_student_source("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(ValueError, match="without"):
        generate.make_student_source("def f():\n    ### END SOLUTION\n")


def _patched(**overrides):
    """The solutions with some functions replaced (a student's partly wrong module)."""
    ns = {n: getattr(solutions, n) for n in dir(solutions) if not n.startswith("__")}
    ns.update(overrides)
    return types.SimpleNamespace(**ns)


def test_check_catches_conv_backward_with_transposed_weight_gradient():
    def bad(dout, cache):
        dx, dW, db = solutions.conv_backward(dout, cache)
        return dx, dW.transpose(0, 1, 3, 2), db
    result = checks.check_conv_backward(_patched(conv_backward=bad), verbose=False)
    assert not result.passed and result.error > 1e-3


def test_check_catches_lrn_backward_without_cross_channel_term():
    def bad(dout, cache):
        x, s, out, size, alpha, beta = cache
        return dout * s ** (-beta)
    result = checks.check_lrn_backward(_patched(lrn_backward=bad), verbose=False)
    assert not result.passed and result.error > 1e-3


def test_check_catches_maxpool_backward_that_overwrites_overlaps():
    def bad(dout, cache):
        x_shape, argmax, k, s = cache
        Ho, Wo = dout.shape[2:]
        dx = np.zeros(x_shape)
        for i in range(k):
            for j in range(k):
                won = argmax == i * k + j
                view = dx[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s]
                view[won] = dout[won]          # = instead of +=: overlapping windows overwrite
        return dx
    assert not checks.check_maxpool_backward(_patched(maxpool_backward=bad), verbose=False).passed


def test_check_catches_softmax_loss_summed_instead_of_averaged():
    def bad(logits, labels):
        loss, d = solutions.softmax_cross_entropy(logits, labels)
        return loss * logits.shape[0], d
    assert not checks.check_softmax_cross_entropy(_patched(softmax_cross_entropy=bad), verbose=False).passed


def test_check_catches_sgd_update_that_modifies_its_input():
    def bad(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
        v *= momentum
        v -= weight_decay * lr * w + lr * dw
        return w + v, v
    result = checks.check_sgd_momentum_update(_patched(sgd_momentum_update=bad), verbose=False)
    assert not result.passed and "modified" in result.message


def test_crashing_student_code_is_reported_as_fail_not_raised():
    def bad(x, W, b, stride=1, padding=0):
        return x @ W, None
    result = checks.check_conv_forward(_patched(conv_forward=bad), verbose=False)
    assert not result.passed and result.message.startswith("raised ValueError")


def test_checks_accept_a_notebook_globals_dict(capsys):
    result = checks.check_window_sum(dict(vars(solutions)))
    assert result.passed
    assert "[PASS] window_sum" in capsys.readouterr().out


def test_grade_cli_prints_scores_and_writes_csv(tmp_path, capsys):
    from tinyalex.cli import main

    generate.generate(tmp_path)
    table = tmp_path / "scores.csv"
    code = main(["exercises", "grade", str(generate.SOLUTIONS), str(tmp_path / "exercises.py"),
                 "--quiet", "--csv", str(table)])
    out = capsys.readouterr().out
    assert code == 1                                     # not everybody passed
    assert f"solutions.py: {len(CHECKS)}/{len(CHECKS)}" in out
    assert f"exercises.py: 0/{len(CHECKS)}" in out
    rows = table.read_text().splitlines()
    assert rows[0].startswith("file,score,total,conv_forward") and len(rows) == 3


def test_grade_cli_names_a_missing_file(tmp_path, capsys):
    from tinyalex.cli import main

    assert main(["exercises", "grade", str(tmp_path / "nope.py")]) == 2
    assert "nope.py" in capsys.readouterr().err


def test_grade_reads_a_student_notebook(tmp_path):
    generate.generate(tmp_path, with_solutions=True)
    rows = generate.grade([tmp_path / "solutions.ipynb"], verbose=False)
    assert rows[0][1] == rows[0][2] == len(CHECKS)


def test_check_catches_pytorch_style_momentum():
    def torch_style(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
        v = momentum * v + dw + weight_decay * w        # torch.optim.SGD keeps v in gradient units
        return w - lr * v, v
    result = checks.check_sgd_momentum_update(_patched(sgd_momentum_update=torch_style), verbose=False)
    assert not result.passed


def test_solutions_run_on_a_standin_device_and_match_numpy():
    """The solutions take xp from their input, so they run (unchanged) where the data lives."""
    from tinyalex import backend as B

    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    logits, labels = rng.standard_normal((4, 5)), np.array([0, 1, 2, 4])

    def run(put):
        out, cache = solutions.conv_forward(put(x), put(W), put(b), 2, 1)
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
