"""A divergence keeps a truly good checkpoint; --resume takes --lr; Ctrl-C and SIGTERM stop cleanly in every phase."""
import json
import os
import signal
import time

import numpy as np
import pytest

from tinyalex.models.io import read_npz

from reliability_tools import TINY, one_error_line, snapshot, tinyalex_process
from tinyalex.cli import main
from tinyalex.train import load_checkpoint, trainer
from tinyalex.train.trainer import NonFiniteLossError, StopRequested, fit


def _quiet(*a, **k):
    pass


# -- divergence ----------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_blow_up_on_the_last_step_of_an_epoch_keeps_the_previous_epochs_checkpoint(tiny_config, tiny_model,
                                                                                       tmp_path):
    run = tmp_path / "run"
    kept = {}

    def explode_on_the_last_step_of_epoch_two(trainer):
        if trainer.step == 7:                       # 4 batches per epoch: the next step is epoch 2's last
            kept.update(snapshot(run))
            trainer.optimizer.lr = 1e6

    with pytest.raises(NonFiniteLossError, match="at the end of epoch 2") as info:
        fit(tiny_config(epochs=3, out=str(run), schedule="none"), model=tiny_model(),
            on_step=explode_on_the_last_step_of_epoch_two, log=_quiet)
    assert f"--resume {run} --lr" in str(info.value)
    ck = load_checkpoint(run / "checkpoint.npz")
    assert ck.meta["epoch"] == 1 and ck.meta["step"] == 4
    assert all(np.isfinite(w).all() and np.abs(w).max() < 100 for w in ck.model.values())
    assert snapshot(run)["checkpoint.npz"] == kept["checkpoint.npz"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_interrupt_never_saves_non_finite_weights_over_the_last_good_checkpoint(tiny_config, tiny_model, tmp_path):
    run = tmp_path / "run"

    def poison_then_interrupt(trainer):
        if trainer.step == 6:
            next(w for name, w in trainer.model.named_parameters() if name.startswith("fc2"))[...] = np.nan
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(epochs=3, out=str(run)), model=tiny_model(), on_step=poison_then_interrupt, log=_quiet)
    ck = load_checkpoint(run / "checkpoint.npz")
    assert ck.meta["step"] == 4 and all(np.isfinite(w).all() for w in ck.model.values())


# -- resume: --lr and what cannot change ---------------------------------------------------------------
def test_resume_takes_lr_and_says_what_it_overrides(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--schedule", "none", "--lr", "0.02"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--lr", "0.001", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert (f"resuming {out}: every setting comes from its checkpoint, except --epochs 2 (was 1), "
            "--lr 0.001 (was 0.02).") in text
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == [0.02, 0.001]


def test_resume_refuses_flags_that_define_the_run_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--model", "alexnet-cifar", "--batch-size", "16", "--lr", "0.1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--batch-size 16 (the run has 32)" in line and "--model alexnet-cifar (the run has alexnet-small)" in line
    assert "cannot change when resuming" in line and "--lr" in line
    assert snapshot(out) == before


def test_resume_accepts_a_defining_flag_repeated_with_the_same_value(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--model", "alexnet-small", "--epochs", "2", "--no-progress"]) == 0


# -- signals: every phase -------------------------------------------------------------------------------
def _signal_during(monkeypatch, desc, signum=signal.SIGINT):
    """Send ``signum`` to this process when evaluate() starts the ``desc`` pass (validation or test)."""
    original = trainer.evaluate

    def evaluate(*a, **kw):
        if kw.get("desc") == desc:
            os.kill(os.getpid(), signum)
        return original(*a, **kw)

    monkeypatch.setattr(trainer, "evaluate", evaluate)


def test_ctrl_c_in_the_test_pass_stops_at_once_with_model_and_checkpoint_intact(tiny_config, tiny_model, tmp_path,
                                                                                 monkeypatch):
    run = tmp_path / "run"
    _signal_during(monkeypatch, "test")
    messages = []
    start = time.perf_counter()
    with pytest.raises(StopRequested):
        fit(tiny_config(epochs=1, out=str(run), limit_test=640, eval_batch_size=32), model=tiny_model(),
            log=messages.append)
    assert time.perf_counter() - start < 30
    assert "interrupted during the test pass" in messages[-1] and f"evaluate {run}" in messages[-1]
    assert read_npz(run / "model.npz").meta["kind"] == "model"
    assert load_checkpoint(run / "checkpoint.npz").meta["epoch"] == 1
    assert not (run / "test.json").exists() and not (run / ".lock").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler      # handlers restored


def test_sigterm_in_validation_saves_a_checkpoint_that_resumes_bit_identical(tiny_config, tiny_model, tmp_path,
                                                                              monkeypatch):
    full = fit(tiny_config(epochs=2, out=str(tmp_path / "full")), model=tiny_model(), log=_quiet)
    with monkeypatch.context() as m:
        _signal_during(m, "validation", signal.SIGTERM)
        with pytest.raises(StopRequested) as info:
            fit(tiny_config(epochs=2, out=str(tmp_path / "cut")), model=tiny_model(), log=_quiet)
    assert info.value.signum == signal.SIGTERM
    meta = load_checkpoint(tmp_path / "cut" / "checkpoint.npz").meta
    assert meta["unvalidated_epoch"] == 0 and meta["loader"]["epoch"] == 1 and meta["history"] == []
    resumed = fit(tiny_config(epochs=2), resume=tmp_path / "cut", model=tiny_model(), log=_quiet)
    a = read_npz(full.run_dir / "model.npz").state
    b = read_npz(resumed.run_dir / "model.npz").state
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [r["val_loss"] for r in resumed.epochs] == [r["val_loss"] for r in full.epochs]


def _wait_for(path, proc, seconds=120):
    end = time.time() + seconds
    while time.time() < end and proc.poll() is None:
        if path.is_file():
            return
        time.sleep(0.05)
    pytest.fail(f"{path} did not appear (process ended with {proc.poll()}: {proc.stderr.read()})")


@pytest.mark.parametrize("signum, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signal_to_the_command_ends_it_within_seconds_with_a_resumable_checkpoint(tmp_path, signum, code, name):
    out = tmp_path / "run"
    proc = tinyalex_process("train", *TINY, "--epochs", "200", "--out", str(out))
    try:
        _wait_for(out / "checkpoint.npz", proc)
        proc.send_signal(signum)
        sent = time.time()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.time() - sent < 15
    assert proc.returncode == code, err
    assert f"{name}: stopping at the next safe point" in err and "Traceback" not in err
    meta = load_checkpoint(out / "checkpoint.npz").meta
    assert meta["epoch"] >= 1 and not (out / ".lock").exists()
    assert main(["train", "--resume", str(out), "--epochs", str(meta["loader"]["epoch"] + 1), "--no-progress"]) == 0


def test_a_second_ctrl_c_aborts_at_once_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = tinyalex_process("train", *TINY, "--epochs", "200", "--out", str(out))
    try:
        _wait_for(out / "checkpoint.npz", proc)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert load_checkpoint(out / "checkpoint.npz").meta["epoch"] >= 1
