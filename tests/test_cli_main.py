"""The command line: `python -m tinyalex gradcheck` (the README's demonstration) and --help."""
import subprocess
import sys
from pathlib import Path

import pytest

from tinyalex import cli

LAYERS = ["Conv2D", "ReLU", "Tanh", "LRN paper", "LRN caffe", "MaxPool2D 3/2", "MaxPool2D 2/2",
          "Dropout inverted", "Dropout paper", "Linear", "Flatten", "SoftmaxCrossEntropy"]


def test_gradcheck_command_exits_0_and_passes_every_layer(capsys):
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.rstrip().endswith(("pass", "FAIL"))]
    assert len(rows) >= 14 and all(r.rstrip().endswith("pass") for r in rows)
    for name in LAYERS:
        assert any(r.startswith(name) for r in rows), name
    assert f"{len(rows)} of {len(rows)} layers pass" in out


def test_gradcheck_command_exits_1_and_marks_a_failing_layer(capsys, monkeypatch):
    from tinyalex import gradcheck as gc

    rows = [("Good layer", gc.GradCheckResult({"x": 1e-11}, {"x": 4})),
            ("Broken layer", gc.GradCheckResult({"x": 0.3}, {"x": 4}))]
    monkeypatch.setattr(gc, "check_every_layer", lambda seed=0: rows)
    assert cli.main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("Broken layer") and line.rstrip().endswith("FAIL") for line in out.splitlines())
    assert "1 of 2 layers pass" in out


def test_help_lists_the_gradcheck_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    assert "gradcheck" in capsys.readouterr().out


def test_gradcheck_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["gradcheck", "--help"])
    out = capsys.readouterr().out
    assert "--tol" in out and "default: 1e-06" in out and "--seed" in out


def test_unknown_command_names_the_allowed_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["trian"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'trian'" in err and "gradcheck" in err


def test_bad_tolerance_value_names_the_argument(capsys):
    with pytest.raises(SystemExit):
        cli.main(["gradcheck", "--tol", "small"])
    assert "--tol" in capsys.readouterr().err


def test_python_dash_m_tinyalex_runs():
    """The README's command, as a real process."""
    proc = subprocess.run([sys.executable, "-m", "tinyalex", "gradcheck"], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert "layers pass" in proc.stdout
