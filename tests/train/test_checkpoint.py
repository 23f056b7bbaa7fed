"""Checkpoints are written atomically and read back exactly, without pickle."""
import numpy as np
import pytest

from tinyalex import fileio
from tinyalex.train import checkpoint as ckpt


def _save(path, value):
    return ckpt.save_checkpoint(path, {"kind": "checkpoint", "epoch": value},
                                model={"conv1.W": np.full((2, 3), value, np.float32)},
                                velocity={"conv1.W": np.zeros((2, 3), np.float32)},
                                pipeline={"config": np.array("{}")})


def test_round_trip_keeps_arrays_dtypes_and_meta(tmp_path):
    path = _save(tmp_path / "c.npz", 7)
    c = ckpt.load_checkpoint(path)
    assert c.meta["epoch"] == 7 and c.meta["format"] == ckpt.FORMAT
    assert c.model["conv1.W"].dtype == np.float32
    np.testing.assert_array_equal(c.model["conv1.W"], np.full((2, 3), 7, np.float32))
    assert set(c.velocity) == {"conv1.W"} and "config" in c.pipeline


def test_crash_while_writing_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = _save(tmp_path / "c.npz", 1)
    before = path.read_bytes()

    def savez_that_dies_halfway(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.numpy, "savez", savez_that_dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        _save(path, 2)
    assert path.read_bytes() == before
    assert ckpt.load_checkpoint(path).meta["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]      # no temporary file left behind


def test_ctrl_c_while_writing_also_leaves_the_old_file(tmp_path):
    path = fileio.atomic_write_text(tmp_path / "metrics.csv", "old\n")

    def interrupted(f):
        f.write(b"new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(path, interrupted)
    assert path.read_text() == "old\n"


def test_a_file_that_is_not_a_checkpoint_is_refused_clearly(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable tinyalex checkpoint"):
        ckpt.load_checkpoint(bad)
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a tinyalex checkpoint"):
        ckpt.load_checkpoint(tmp_path / "plain.npz")


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        ckpt.load_checkpoint(tmp_path / "nothing.npz")
