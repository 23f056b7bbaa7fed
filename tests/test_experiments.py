"""The experiments (issue 7): every quick mode runs end to end, and the measurements are right.

Quick modes use synthetic data, so nothing here needs a dataset on disk; the
one test that reads the CIFAR-10 JPEG copy skips when it is absent.
"""
import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinyalex import cli
from tinyalex.data import ArrayDataset
from tinyalex.experiments import EXPERIMENTS, get_experiment, resolve_settings, run_experiment
from tinyalex.experiments.common import (Settings, balanced_subset, epochs_to_near_best_test, fmt,
                                         history_json, load_subsets, quick_settings, small_alexnet,
                                         summarize, time_to_train_error, train, train_config)
from tinyalex.train import History
from tinyalex.experiments.retrieval import nearest, precision_at_k
from tinyalex.experiments.tower_filters import colour_fraction, specialisation

CIFAR_JPG = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg"


# --------------------------------------------------------------------------- quick modes
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_mode_writes_results_tables_and_figures(name, tmp_path):
    module = get_experiment(name)
    folder = run_experiment(module, resolve_settings(module, quick=True), tmp_path, log=lambda *a: None)
    result = json.loads((folder / "results.json").read_text())
    assert result["experiment"] == name
    assert result["settings"]["quick"] is True
    assert result["meta"]["wall_seconds"] > 0
    assert result["tables"] and all(t["rows"] for t in result["tables"])
    markdown = (folder / "results.md").read_text()
    assert module.PAPER in markdown
    for figure, _ in result["figures"]:
        png = folder / figure
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 200_000
        assert f"]({figure})" in markdown


def test_every_experiment_states_paper_claim_and_full_size():
    for name in EXPERIMENTS:
        m = get_experiment(name)
        assert m.NAME == name and m.TITLE and m.PAPER
        assert m.FULL.seeds >= 1 and not m.FULL.quick and m.QUICK.quick and m.QUICK.seeds == 1


# --------------------------------------------------------------------------- CLI
def test_cli_list_names_every_experiment(capsys):
    assert cli.main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out


def test_cli_unknown_experiment_names_the_choices(capsys):
    assert cli.main(["experiment", "alexnet_everything"]) == 2
    err = capsys.readouterr().err
    assert "alexnet_everything" in err and "relu_vs_tanh" in err


def test_cli_rejects_zero_seeds(capsys):
    assert cli.main(["experiment", "lrn", "--quick", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_cli_rejects_unknown_dataset(capsys):
    with pytest.raises(SystemExit):
        cli.main(["experiment", "lrn", "--dataset", "imagenet"])
    assert "fashion-mnist" in capsys.readouterr().err


def test_cli_quick_run_writes_run_folder_with_command(tmp_path):
    assert cli.main(["experiment", "towers", "--quick", "--out", str(tmp_path)]) == 0
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("towers-quick-")
    assert "experiment towers --quick" in json.loads((folder / "results.json").read_text())["meta"]["command"]


def test_cli_missing_dataset_says_how_to_provide_it_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    assert cli.main(["experiment", "lrn", "--dataset", "cifar10", "--data-dir", str(tmp_path / "nothing"),
                     "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--data-dir" in err and "--quick" in err
    assert not any(out.iterdir())


def test_quick_with_cifar10_uses_synthetic_rgb_images():
    s = resolve_settings(get_experiment("lrn"), quick=True, dataset="cifar10")
    assert s.dataset == "synthetic" and s.extra["image_shape"] == (3, 32, 32)


def test_resolve_settings_applies_only_given_overrides():
    m = get_experiment("pooling")
    s = resolve_settings(m, seeds=5, epochs=None)
    assert s.seeds == 5 and s.epochs == m.FULL.epochs


# --------------------------------------------------------------------------- shared pieces
def test_summarize_mean_sample_std_and_unreached_seeds():
    st = summarize([0.1, 0.3, float("nan")])
    assert st["mean"] == pytest.approx(0.2) and st["std"] == pytest.approx(math.sqrt(0.02))
    assert st["n"] == 2 and st["n_total"] == 3
    assert fmt(st, percent=True) == "20.00% ± 14.14 (2 of 3 seeds)"
    assert fmt(summarize([float("nan")])) == "not reached"


def test_balanced_subset_takes_equal_numbers_per_class():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    ds = ArrayDataset(np.zeros((100, 1, 2, 2), np.uint8), labels, list("abcd"))
    sub = balanced_subset(ds, 20)
    assert np.bincount(sub.labels, minlength=4).tolist() == [5, 5, 5, 5]


def _history(test_errors=(), windows=()):
    """A trainer History whose epochs hold the given test errors and (two per epoch) windows."""
    rows = [{"val_top1": 1 - e, "windows": []} for e in test_errors]
    for i, (err, sec, ep) in enumerate(windows):
        rows[i // 2]["windows"].append({"train_error": err, "seconds": sec, "epoch": ep})
    return History(run_dir=None, epochs=rows)


def test_time_to_train_error_reads_first_window_at_or_below_threshold():
    h = _history([0.6, 0.6], [(0.5, 1, 0.5), (0.3, 2, 1.0), (0.2, 3, 1.5), (0.25, 4, 2.0)])
    assert time_to_train_error(h, 0.25) == (1.5, 3)
    assert all(math.isnan(v) for v in time_to_train_error(h, 0.1))


def test_epochs_to_near_best_test():
    h = _history([0.5, 0.205, 0.2, 0.21])
    assert epochs_to_near_best_test(h, 0.01) == 2


# --------------------------------------------------------------------------- the one training loop
def test_experiment_training_runs_through_the_trainer_and_records_what_the_tables_read():
    s = quick_settings(epochs=3, train_size=256, lr=0.05)
    data = load_subsets(s)
    model = small_alexnet(data.image_shape, data.num_classes, width=s.width, fc=s.fc, seed=0)
    trainer = train(model, data, train_config(s, seed=0), log=lambda *a: None)
    h = trainer.history
    assert h.status == "completed" and trainer.run_dir is None          # in memory: no run folder
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    curves = history_json(h)
    assert len(curves["test_error"]) == len(curves["train_eval_error"]) == 3
    assert len(curves["chunk_error"]) == 3 * 4 and curves["chunk_epoch"][3] == pytest.approx(1.0)
    assert curves["chunk_seconds"] == sorted(curves["chunk_seconds"])


def test_experiment_with_exploding_learning_rate_is_marked_diverged_not_raised():
    s = quick_settings(epochs=2)
    data = load_subsets(s)
    model = small_alexnet(data.image_shape, data.num_classes, width=s.width, fc=s.fc, seed=0)
    with np.errstate(all="ignore"):
        h = train(model, data, train_config(s, seed=0, lr=1e12), log=lambda *a: None).history
    assert h.status == "diverged" and history_json(h)["diverged"] is True


def test_quick_experiment_trains_every_variant_through_the_trainer(tmp_path, monkeypatch):
    from tinyalex.train.trainer import Trainer

    runs = []
    real_run = Trainer.run

    def counting_run(self, *args, **kwargs):
        runs.append(self.save)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run", counting_run)
    module = get_experiment("pooling")
    run_experiment(module, resolve_settings(module, quick=True), tmp_path, log=lambda *a: None)
    assert runs == [False, False]          # two variants x one seed, in memory


def test_no_experiment_module_defines_a_training_loop_of_its_own():
    """Every SGD step of an experiment goes through tinyalex.train: no module calls
    backward() or an optimizer's step() itself."""
    folder = Path(__file__).resolve().parents[1] / "tinyalex" / "experiments"
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("backward", "step")):
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
    assert offenders == []


def test_two_towers_split_conv2_and_one_tower_keeps_last_conv():
    two = small_alexnet((3, 32, 32), 10, towers=2, width=8, fc=16)
    one = small_alexnet((3, 32, 32), 10, width=4, last_conv=16, fc=16)
    assert two["conv2"].params["W"].shape == (16, 4, 3, 3)      # each tower reads 4 of 8 maps
    assert one["conv2"].params["W"].shape == (8, 4, 3, 3)
    assert two["conv3"].params["W"].shape == (16, 16, 3, 3)   # reads both towers' 16 maps
    assert one["conv3"].params["W"].shape == (16, 8, 3, 3)    # same 16 kernels, half the input maps


@pytest.mark.parametrize("pool", [(3, 2), (2, 2)])
def test_small_alexnet_outputs_logits_for_both_poolings(pool, rng):
    m = small_alexnet((1, 28, 28), 10, pool=pool, lrn=True, dropout=0.5, width=4, fc=8)
    assert m.forward(rng.standard_normal((2, 1, 28, 28)).astype(np.float32)).shape == (2, 10)


def test_small_alexnet_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        small_alexnet((1, 28, 28), 10, activation="sigmoid")


def test_load_subsets_rejects_unknown_dataset():
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_subsets(Settings(dataset="imagenet"))


@pytest.mark.skipif(not (CIFAR_JPG / "train").is_dir(), reason="CIFAR-10 JPEG copy not on this machine")
def test_cifar10_image_folder_subset_is_balanced_rgb():
    data = load_subsets(Settings(dataset="cifar10", data_dir=str(CIFAR_JPG), train_size=20, test_size=10))
    assert data.image_shape == (3, 32, 32) and data.label == "CIFAR-10 (JPEG copy)"
    assert np.bincount(data.train.labels).tolist() == [2] * 10


# --------------------------------------------------------------------------- Figure 3 measure
def test_colour_fraction_is_zero_for_grey_and_one_for_pure_colour_contrast(rng):
    grey = np.repeat(rng.standard_normal((1, 1, 5, 5)), 3, axis=1)
    opponent = np.stack([np.ones((5, 5)), -np.ones((5, 5)), np.zeros((5, 5))])[None]
    assert colour_fraction(grey)[0] == pytest.approx(0.0, abs=1e-12)
    assert colour_fraction(opponent)[0] == pytest.approx(1.0)


def test_colour_fraction_of_random_kernels_is_about_two_thirds(rng):
    assert colour_fraction(rng.standard_normal((2000, 3, 5, 5))).mean() == pytest.approx(2 / 3, abs=0.01)


def test_specialisation_detects_grey_tower_and_not_random_split(rng):
    c_split = np.r_[np.full(8, 0.1), np.full(8, 0.9)] + 0.01 * rng.standard_normal(16)
    st = specialisation(c_split, permutations=500)
    assert st["tower1_mean"] < 0.2 < 0.8 < st["tower2_mean"] and st["p_value"] < 0.01


def test_specialisation_p_value_large_for_identical_towers():
    c = np.tile([0.2, 0.5, 0.8, 0.6], 4)                       # both halves hold the same values
    assert specialisation(c, permutations=500)["p_value"] > 0.5


# --------------------------------------------------------------------------- Figure 4 measure
def test_nearest_returns_sorted_euclidean_neighbours():
    db = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [0.0, 2.0]])
    q = np.array([[0.9, 0.1], [4.0, 4.0]])
    assert nearest(q, db, 2).tolist() == [[1, 0], [2, 3]]


def test_precision_at_k_counts_same_class_neighbours():
    nn = np.array([[0, 1], [2, 3]])
    assert precision_at_k(nn, np.array([0, 1, 1, 1]), np.array([0, 1])) == pytest.approx(0.75)


# --------------------------------------------------------------------------- after AlexNet (issue 17)
def test_small_alexnet_with_batchnorm_normalizes_each_convolution_before_its_nonlinearity():
    net = small_alexnet((1, 28, 28), 10, width=4, fc=8, batchnorm=True)
    names = list(net.layers)
    for i in (1, 2, 3):
        assert names.index(f"bn{i}") == names.index(f"conv{i}") + 1 == names.index(f"act{i}") - 1
    assert "bn1" not in small_alexnet((1, 28, 28), 10, width=4, fc=8).layers


def test_plain_twin_has_the_residual_nets_parameters_but_no_shortcuts():
    from tinyalex.experiments.residual import cifar_resnet
    from tinyalex.layers import Residual

    res = cifar_resnet(8, (2, 4, 4), (3, 32, 32), 10, seed=0)
    plain = cifar_resnet(8, (2, 4, 4), (3, 32, 32), 10, seed=0, plain=True)
    assert list(plain.state_dict()) == list(res.state_dict())
    assert all(np.array_equal(a, b) for a, b in zip(plain.state_dict().values(), res.state_dict().values()))
    assert not any(isinstance(l, Residual) for _, l in plain.named_layers())
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert not np.allclose(plain.eval().forward(x), res.eval().forward(x))


def test_cifar_resnet_depth_must_be_6n_plus_2():
    from tinyalex.experiments.residual import cifar_resnet

    with pytest.raises(ValueError, match="6n \\+ 2 layers"):
        cifar_resnet(10, (2, 4, 4), (3, 32, 32), 10, seed=0)


def test_complexity_rows_are_the_models_own_counts(tmp_path):
    from tinyalex.experiments import complexity
    from tinyalex.models import build_model

    folder = run_experiment(complexity, resolve_settings(complexity, quick=True), tmp_path, log=lambda *a: None)
    rows = {r["name"]: r for r in json.loads((folder / "results.json").read_text())["data"]["rows"]}
    model = build_model("resnet20-small")
    assert rows["resnet20-small"]["parameters"] == model.num_parameters()
    alex = build_model("alexnet-small")
    assert rows["alexnet-small"]["fc_parameters"] == sum(alex.children()[n].num_parameters() for n in ("fc6", "fc7", "fc8"))
