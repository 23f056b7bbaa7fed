"""Saving and loading weights (.npz): round trip, atomic write, clear refusals."""
import os

import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.models import build_model, load_model, load_npz, save_npz

SMALL = dict(width=0.25, seed=4)


def test_save_then_load_restores_every_parameter(tmp_path):
    net = build_model("alexnet-small", **SMALL)
    path = tmp_path / "net.npz"
    net.save(path)
    other = build_model("alexnet-small", width=0.25, seed=5)
    other.load(path)
    for (n, p), (m, q) in zip(net.named_parameters(), other.named_parameters()):
        assert n == m
        np.testing.assert_array_equal(p, q)


def test_saved_file_is_a_plain_npz_with_the_config(tmp_path):
    net = build_model("alexnet-small", **SMALL)
    net.save(tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz") as data:
        assert "conv1.W" in data.files and data["fc8.b"].shape == (10,)
    _, config = load_npz(tmp_path / "net.npz")
    assert config["name"] == "alexnet-small" and config["width"] == 0.25


def test_save_writes_atomically_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    net = build_model("alexnet-small", **SMALL)
    path = tmp_path / "net.npz"
    net.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        build_model("alexnet-small", width=0.25, seed=9).save(path)
    assert path.read_bytes() == before                      # the old file is intact
    assert os.listdir(tmp_path) == ["net.npz"]              # no temp file left


def test_load_model_rebuilds_architecture_from_the_stored_config(tmp_path):
    net = build_model("alexnet-cifar", num_classes=4, width=0.25, lrn=False, seed=3)
    net.save(tmp_path / "c.npz")
    again = load_model(tmp_path / "c.npz")
    assert again.config == net.config
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(again.eval().forward(x), net.eval().forward(x))


def test_split_checkpoint_loads_into_one_device_model(tmp_path):
    with B.use_backend("standin"):
        split = build_model("alexnet-small", devices=(0, 1), **SMALL)
        split.save(tmp_path / "s.npz")
    grouped = load_model(tmp_path / "s.npz")
    assert not grouped.split
    np.testing.assert_array_equal(grouped.grouped_state_dict()["conv3.W"],
                                  split.grouped_state_dict()["conv3.W"])


def test_load_refuses_a_wrong_shape_naming_the_layer_and_both_shapes(tmp_path):
    build_model("alexnet-small", num_classes=7, width=0.25).save(tmp_path / "seven.npz")
    net = build_model("alexnet-small", **SMALL)
    with pytest.raises(ValueError) as err:
        net.load(tmp_path / "seven.npz")
    msg = str(err.value)
    assert "'fc8'" in msg and "(7, 128)" in msg and "(10, 128)" in msg


def test_load_refuses_a_file_missing_a_layer_naming_it_and_its_shape(tmp_path):
    net = build_model("alexnet-small", **SMALL)
    state = net.state_dict()
    del state["conv4.W"]
    save_npz(tmp_path / "partial.npz", state)
    with pytest.raises(KeyError) as err:
        net.load(tmp_path / "partial.npz")
    assert "conv4.W" in str(err.value) and "(24, 12, 3, 3)" in str(err.value)


def test_load_refuses_unexpected_parameters_in_strict_mode():
    net = build_model("alexnet-small", **SMALL)
    state = net.state_dict()
    state["fc9.W"] = np.zeros((3, 3), np.float32)
    with pytest.raises(KeyError, match="fc9.W"):
        net.load_state_dict(state)
    net.load_state_dict(state, strict=False)


def test_load_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        build_model("alexnet-small", **SMALL).load(tmp_path / "nothere.npz")


def test_state_dict_is_a_host_copy():
    net = build_model("alexnet-small", **SMALL)
    state = net.state_dict()
    state["conv1.W"][...] = 0
    assert dict(net.named_parameters())["conv1.W"].any()


def test_model_npz_of_a_training_run_loads_with_load_model(tmp_path):
    """The file `train` writes is the models' weights file: load_model rebuilds the trained net."""
    from tinyalex.train import TrainConfig, fit
    from tinyalex.train.trainer import load_trained

    cfg = TrainConfig(model="alexnet-cifar", width=0.125, dataset="synthetic", epochs=1, batch_size=16,
                      limit_train=48, limit_test=16, val_fraction=0.25, out=str(tmp_path / "run"),
                      progress=False, plots=False)
    history = fit(cfg, log=lambda *a, **k: None)
    path = history.run_dir / "model.npz"
    net = load_model(path)
    assert net.config["name"] == "alexnet-cifar" and net.config["width"] == 0.125
    trained, _, classes, meta = load_trained(history.run_dir)
    assert len(classes) == net.num_classes and meta["kind"] == "model"
    for (n, p), (m, q) in zip(net.named_parameters(), trained.named_parameters()):
        assert n == m
        np.testing.assert_array_equal(p, q)
    assert load_model(history.run_dir / "checkpoint.npz").num_parameters() == net.num_parameters()


def test_load_model_reads_a_model_file_in_the_earlier_training_layout(tmp_path):
    """model.npz files written by training before the formats were one (meta + model/<name>) still load."""
    from tinyalex.train.checkpoint import save_checkpoint

    net = build_model("alexnet-small", **SMALL)
    save_checkpoint(tmp_path / "old.npz", {"kind": "model", "model_config": dict(net.config)},
                    model=net.state_dict())
    again = load_model(tmp_path / "old.npz")
    for (n, p), (m, q) in zip(net.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(p, q)


def test_load_model_refuses_a_file_without_config_saying_what_to_do(tmp_path):
    save_npz(tmp_path / "bare.npz", build_model("alexnet-small", **SMALL).state_dict())
    with pytest.raises(ValueError, match="no model config.*model.load"):
        load_model(tmp_path / "bare.npz")
