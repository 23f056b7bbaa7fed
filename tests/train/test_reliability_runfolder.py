"""Each run owns its --out folder: a lock, a run id, and no writing over what is not a run."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from tinyalex.models.io import read_npz

from reliability_tools import REPO, TINY, one_error_line, read_only_copy, snapshot
from tinyalex.cli import main
from tinyalex.train import runfolder


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def _hold_lock(folder):
    """Another process that holds the lock of ``folder`` until killed."""
    code = ("import sys, time; from tinyalex.train.runfolder import RunLock; "
            "lock = RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_on_a_locked_folder_is_refused_naming_the_other_process(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    other = _hold_lock(out)
    try:
        assert main(["train", *TINY, "--out", str(out)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"in use by another tinyalex run (process {other.pid}" in line and "choose another --out" in line
        assert sorted(p.name for p in out.iterdir()) == [".lock"]       # nothing of the refused run written
    finally:
        other.kill()
        other.wait()


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    other = _hold_lock(out)
    other.send_signal(signal.SIGKILL)
    other.wait()
    assert json.loads((out / ".lock").read_text())["pid"] == other.pid      # the dead process's lock file
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert f"took over the lock left by process {other.pid}" in capsys.readouterr().out
    assert not (out / ".lock").exists()                                      # released at exit


def test_two_runs_at_once_on_one_folder_the_second_is_refused_and_the_first_completes(tmp_path, capsys):
    out = tmp_path / "run"
    seen = []

    def second_run_meanwhile(trainer):
        if trainer.step == 1:
            seen.append(main(["train", *TINY, "--out", str(out)]))

    from tinyalex.train.cli import config_from_args
    from tinyalex.cli import build_parser
    from tinyalex.train import fit

    cfg = config_from_args(build_parser().parse_args(["train", *TINY, "--out", str(out)]))
    history = fit(cfg, on_step=second_run_meanwhile, log=lambda *a: None)
    assert seen == [2]
    assert f"in use by another tinyalex run (process {os.getpid()}" in capsys.readouterr().err
    recorded = json.loads((out / "test.json").read_text())["top1"]
    assert recorded == history.test["top1"]


def test_an_existing_folder_that_is_not_a_run_is_refused_and_left_as_it_was(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "own settings"}\n')
    (out / "metrics.csv").write_text("a,b\n1,2\n")
    before = snapshot(out)
    assert main(["train", *TINY, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is not a tinyalex run folder" in line and "new --out name" in line and "--overwrite" in line
    assert snapshot(out) == before


def test_overwrite_writes_into_a_folder_with_other_files_and_keeps_them(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    assert main(["train", *TINY, "--out", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "keep me\n" and (out / "model.npz").is_file()


def test_a_finished_run_is_refused_without_resume(finished_run, capsys):
    before = snapshot(finished_run)
    assert main(["train", *TINY, "--out", str(finished_run)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds a finished run" in line and "--overwrite" in line and "--resume" in line
    assert snapshot(finished_run) == before


def test_resume_refuses_a_checkpoint_copied_from_another_run(finished_run, tmp_path, capsys):
    a = shutil.copytree(finished_run, tmp_path / "a")
    assert main(["train", *TINY, "--out", str(tmp_path / "b")]) == 0
    shutil.copy(tmp_path / "b" / "checkpoint.npz", a / "checkpoint.npz")       # b's checkpoint into a
    before = snapshot(a)
    assert main(["train", "--resume", str(a), "--epochs", "2", "--no-progress"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "belongs to another run" in line and runfolder.read_run_id(a) in line
    assert snapshot(a) == before


def test_every_run_writes_a_run_id_that_its_checkpoints_carry(finished_run):
    from tinyalex.train import load_checkpoint

    run_id = runfolder.read_run_id(finished_run)
    assert len(run_id) == 32
    assert load_checkpoint(finished_run / "checkpoint.npz").meta["run_id"] == run_id
    for name in ("model.npz", "best.npz"):                       # the weights files carry it in their meta
        assert read_npz(finished_run / name).meta["run_id"] == run_id


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("precious\n")
    assert main(["train", *TINY, "--out", str(f)]) == 2
    assert "is a file, not a folder" in one_error_line(capsys.readouterr().err)
    assert f.read_text() == "precious\n"


def test_out_under_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("precious\n")
    assert main(["train", *TINY, "--out", str(f / "run")]) == 2
    assert "is a file, so no folder can be made under it" in one_error_line(capsys.readouterr().err)
    assert f.read_text() == "precious\n"


def test_out_in_proc_is_refused(capsys):
    assert main(["train", *TINY, "--out", "/proc/tinyalex-run"]) == 2
    assert "/proc is a system folder" in one_error_line(capsys.readouterr().err)


def test_out_in_a_read_only_folder_is_refused(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    with read_only_copy(src, tmp_path / "ro") as ro:
        assert main(["train", *TINY, "--out", str(ro / "run")]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "read-only" in line and "--out" in line
        assert not (ro / "run").exists()


def test_the_default_runs_folder_in_a_read_only_working_directory_is_refused(tmp_path, capsys, monkeypatch):
    src = tmp_path / "work"
    src.mkdir()
    with read_only_copy(src, tmp_path / "ro") as ro:
        monkeypatch.chdir(ro)
        assert main(["train", *TINY]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "--out runs/synthetic-alexnet-small-" in line and "read-only" in line


def test_the_lock_is_released_when_the_run_ends(finished_run):
    assert not (finished_run / ".lock").exists()
    lock = runfolder.RunLock(finished_run).acquire()      # free: this process can take it
    try:
        assert json.loads((finished_run / ".lock").read_text())["pid"] == os.getpid()
        assert lock.stale is None
    finally:
        lock.release()


def test_a_folder_left_by_a_run_killed_before_its_first_checkpoint_is_started_again(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"run_id": "0123"}\n')          # what a run killed while loading leaves
    (out / "config.json").write_text("{}\n")
    (out / ".lock").write_text('{"pid": 999999999}')
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert runfolder.read_run_id(out) != "0123" and (out / "model.npz").is_file()


def test_sigterm_outside_training_ends_the_command_like_ctrl_c(tmp_path, monkeypatch, capsys):
    from tinyalex.train import cli as train_cli

    def slow_load(path):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have stopped the command")

    monkeypatch.setattr(train_cli, "load_trained", slow_load)
    (tmp_path / "model.npz").write_bytes(b"")
    assert main(["evaluate", str(tmp_path)]) == 143
    assert "interrupted (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_fit_in_python_replaces_its_own_earlier_run_but_never_a_folder_that_is_not_a_run(tmp_path, tiny_config,
                                                                                          tiny_model):
    from tinyalex.errors import UserError
    from tinyalex.train import fit

    messages = []
    first = fit(tiny_config(epochs=1), model=tiny_model(), log=messages.append)
    first_id = runfolder.read_run_id(first.run_dir)
    fit(tiny_config(epochs=1), model=tiny_model(), log=messages.append)      # a notebook cell run again
    assert f"{first.run_dir}: replaced the files of the run that was there" in messages
    assert runfolder.read_run_id(first.run_dir) != first_id
    with pytest.raises(UserError, match="holds a finished run"):
        fit(tiny_config(epochs=1), model=tiny_model(), log=messages.append, overwrite=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    with pytest.raises(UserError, match="is not a tinyalex run folder"):
        fit(tiny_config(epochs=1, out=str(mine)), model=tiny_model(), log=messages.append)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
