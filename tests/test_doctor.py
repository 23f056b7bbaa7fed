"""`tinyalex doctor --gpu`: the parts that run without a GPU (the comparison on the stand-in, the report, the no-GPU message)."""
import json
import sys

import pytest

from tinyalex import doctor
from tinyalex.cli import main
from tinyalex.layers import Dropout


def test_doctor_gpu_without_cupy_says_so_in_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["doctor", "--gpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no GPU check on this machine: CuPy is not available" in err


def test_doctor_without_gpu_flag_lists_the_backends_here(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["doctor"]) == 0
    assert "backends here: numpy, standin. Add --gpu" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compare_step_on_the_standin_matches_numpy(dtype):
    res = doctor.compare_step("alexnet-small", dtype, backend="standin", device=1, batch=2)
    assert res["passed"] and res["max_grad_error"] <= res["tolerance"] == doctor.TOLERANCE[dtype]
    assert res["loss"] == pytest.approx(res["loss_numpy"])


def test_compare_step_fails_when_the_device_run_draws_other_dropout_masks(monkeypatch):
    monkeypatch.setattr(Dropout, "set_mask", lambda self, mask: None)      # device 1 draws its own masks
    res = doctor.compare_step("alexnet-small", "float64", backend="standin", device=1, batch=2)
    assert not res["passed"] and res["max_grad_error"] > 1e-9


def test_two_towers_on_one_device_runs_a_step_under_the_standin():
    res = doctor.two_towers_on_one_device("standin")
    assert res["passed"] and res["devices"] == [0, 0]


def test_report_is_written_as_markdown_and_json(tmp_path):
    report = {"date": "2026-11-30 06:00:00 UTC", "versions": {"gpus": ["0: Fake GPU"], "cupy": "14.0.1"},
              "seconds": 12.0, "passed": False,
              "parts": {"CuPy step vs NumPy": [{"model": "alexnet", "dtype": "float32", "max_grad_error": 2e-5,
                                                "passed": True}],
                        "pytest -m gpu": [{"command": "pytest -m gpu", "status": 1, "passed": False,
                                           "output_tail": "1 failed, 20 passed"}]}}
    md = doctor.write_report(tmp_path, report)
    text = md.read_text()
    assert "# tinyalex GPU check (2026-11-30 06:00:00 UTC)" in text and "**FAILED**" in text
    assert "| model | dtype | max_grad_error | passed |" in text and "| alexnet | float32 | 2e-05 | True |" in text
    assert "1 failed, 20 passed" in text                    # a failing part shows its output
    assert json.loads((tmp_path / "report.json").read_text()) == report
