"""The networks after AlexNet in the one registry: build_model, load_model, train, summary, bench by name."""
import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.bench import layer_specs, step_matmul_flops
from tinyalex.cli import main
from tinyalex.models import build_model, load_model, model_names, model_options
from tinyalex.models.net import multiply_adds
from tinyalex.models.successors import SUCCESSORS, TRAINABLE
from tinyalex.train.cli import config_from_args
from tinyalex.train.trainer import TrainConfig, _model_overrides, resolve_input_shape

TINY = ["--dataset", "synthetic", "--epochs", "1", "--batch-size", "32", "--limit-train", "96", "--limit-test",
        "40", "--no-progress", "--no-plots", "--seed", "3"]


def test_every_successor_is_a_registered_model_name():
    assert set(SUCCESSORS) <= set(model_names())
    assert model_names()[:4] == ["alexnet", "alexnet-small", "alexnet-fmnist", "alexnet-cifar"]


@pytest.mark.parametrize("name", TRAINABLE)
def test_build_model_builds_each_trainable_successor_by_name(name):
    model = build_model(name, 7)
    assert model.name == name and model.num_classes == 7


def test_build_model_refuses_an_option_the_model_does_not_take_naming_its_options():
    with pytest.raises(ValueError, match=r"'resnet20' takes no option lrn; its options: .*input_shape"):
        build_model("resnet20", lrn=False)


def test_a_successor_refuses_the_two_tower_split():
    with pytest.raises(ValueError, match="runs on one device.*AlexNet's"):
        build_model("zfnet-small", devices=(0, 1))


def test_build_model_places_a_successor_on_the_backend_given():
    model = build_model("resnet20-small", devices=0, backend="standin")
    assert all(B.backend_of(p) == "standin" for _, p in model.named_parameters())


def test_unknown_model_name_lists_the_models():
    with pytest.raises(ValueError, match="unknown model 'resnet21'; choose one of alexnet, .*resnet20"):
        build_model("resnet21")


def test_model_options_of_alexnet_are_alexnets_arguments_and_of_zfnet_its_builders():
    assert {"lrn", "overlap_pool", "width", "devices"} <= model_options("alexnet-small")
    assert model_options("zfnet-small") == {"num_classes", "input_shape", "dropout", "fast", "dtype", "seed",
                                            "devices", "backend"}


def test_load_model_rebuilds_a_saved_successor(tmp_path):
    model = build_model("vgg11-small", dropout=0.0, seed=4)
    model.save(tmp_path / "vgg.npz")
    again = load_model(tmp_path / "vgg.npz", fast=False)
    assert again.name == "vgg11-small" and again.config["dropout"] == 0.0
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(again.eval().forward(x), model.eval().forward(x), rtol=1e-4, atol=1e-5)


# -- the trainer: only the options a model takes ------------------------------------------------
def test_trainer_passes_alexnet_its_options_and_a_successor_only_its_own():
    alex = _model_overrides(TrainConfig(model="alexnet-small", lrn=False, width=0.5), (1, 28, 28))
    assert alex["lrn"] is False and alex["width"] == 0.5 and alex["overlap_pool"] is True
    assert alex["batchnorm"] is False
    assert _model_overrides(TrainConfig(model="alexnet-cifar", batchnorm=True), (3, 32, 32))["batchnorm"] is True
    res = _model_overrides(TrainConfig(model="resnet20"), (3, 32, 32))
    assert set(res) == {"input_shape", "dtype", "seed"}
    vgg = _model_overrides(TrainConfig(model="vgg11-cifar", dropout=0.2), (3, 32, 32))
    assert vgg["dropout"] == 0.2 and "lrn" not in vgg


@pytest.mark.parametrize("field, value, flag", [("lrn", False, "--no-lrn"), ("overlap", False, "--no-overlap"),
                                                ("width", 0.5, "--width"), ("activation", "tanh", "--activation"),
                                                ("dropout", 0.1, "--dropout"), ("batchnorm", True, "--batchnorm")])
def test_trainer_refuses_an_alexnet_flag_given_for_a_resnet_naming_it(field, value, flag):
    with pytest.raises(ValueError, match=f"^{flag}: not an option of model 'resnet20'"):
        _model_overrides(TrainConfig(model="resnet20", **{field: value}), (3, 32, 32))


def test_train_cli_refuses_no_lrn_for_a_resnet_in_one_line(tmp_path, capsys):
    assert main(["train", *TINY, "--model", "resnet20", "--no-lrn", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--no-lrn: not an option of model 'resnet20'" in err


def test_quick_gives_width_and_dropout_only_to_a_model_that_has_them():
    from tinyalex.cli import build_parser

    args = build_parser().parse_args(["train", "--quick", "--model", "resnet20"])
    cfg = config_from_args(args)
    assert cfg.width is None and cfg.dropout == TrainConfig().dropout and cfg.time_limit == 1.5
    assert config_from_args(build_parser().parse_args(["train", "--quick"])).width == 0.5


def test_an_image_smaller_than_the_model_takes_names_the_size_it_needs():
    with pytest.raises(ValueError, match="'zfnet-cifar' takes 32x32 images but fashion-mnist has 28x28"):
        resolve_input_shape(TrainConfig(model="zfnet-cifar", dataset="fashion-mnist"), (1, 28, 28))


def test_a_crop_too_small_for_the_model_names_the_size_it_needs():
    with pytest.raises(ValueError, match="input 1x12x12 is too small.*needs at least 1x"):
        build_model("zfnet-small", input_shape=(1, 12, 12))


def test_train_evaluate_and_load_a_resnet_by_name(tmp_path, capsys):
    out = tmp_path / "r20"
    assert main(["train", *TINY, "--model", "resnet20", "--crop", "28", "--val-fraction", "0", "--schedule", "none",
                 "--lr", "0.001", "--out", str(out)]) == 0
    assert main(["evaluate", str(out)]) == 0
    assert "top-1 accuracy" in capsys.readouterr().out
    model = load_model(out / "model.npz")
    assert model.name == "resnet20" and model.input_shape == (3, 28, 28)


# -- summary and bench by name -------------------------------------------------------------------
def test_summary_cli_prints_a_successors_table(capsys):
    assert main(["summary", "--model", "googlenet-small"]) == 0
    out = capsys.readouterr().out
    assert "inception3a" in out and "Total parameters" in out


def test_summary_cli_refuses_width_for_a_model_without_it(capsys):
    assert main(["summary", "--model", "resnet20", "--width", "2"]) == 2
    assert "takes no option width" in capsys.readouterr().err


def test_bench_times_a_resnets_stages_as_blocks_and_counts_their_multiply_adds():
    model = build_model("resnet20")
    specs = layer_specs(model)
    assert list(specs)[:3] == ["conv1", "bn1", "layer1"] and specs["layer1"][0] == "block"
    total, per = step_matmul_flops(model, batch=2)
    # every layer 3 matrix products per step (forward, dW, dx), conv1 two: 2 flops per multiply-add
    conv1 = multiply_adds(model.conv1, model.input_shape)
    assert total == 2 * 2 * (3 * multiply_adds(model) - conv1)
