"""The training loop: run folder files, exact resume, NaN stop, atomic checkpoints."""
import csv
import json
import os
import signal

import numpy as np
import pytest

from tinyalex.models import read_npz
from tinyalex.train import checkpoint as ckpt
from tinyalex.train.trainer import (METRIC_COLUMNS, NonFiniteLossError, TrainConfig, fit, make_pipeline,
                                     predict_proba)


def _weights(path):
    return read_npz(path).state


def test_loss_falls_and_run_folder_has_its_files(tiny_config, tiny_model, quiet):
    cfg = tiny_config(epochs=3, lr=0.01, plots=True)
    h = fit(cfg, model=tiny_model(), log=quiet)
    assert h.status == "completed"
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    for name in ("config.json", "metrics.csv", "metrics.jsonl", "curves.png", "checkpoint.npz",
                 "best.npz", "model.npz", "test.json", "confusion.png"):
        assert (h.run_dir / name).is_file(), name
    assert 0.0 <= h.test["top1"] <= h.test["top5"] <= 1.0


def test_metrics_files_have_one_row_per_epoch_with_the_documented_columns(tiny_config, tiny_model, quiet):
    h = fit(tiny_config(epochs=2), model=tiny_model(), log=quiet)
    with open(h.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == METRIC_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    jsonl = [json.loads(line) for line in (h.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [set(r) for r in jsonl] == [set(METRIC_COLUMNS)] * 2
    assert float(rows[1]["val_top1"]) == pytest.approx(jsonl[1]["val_top1"])


def test_resumed_run_ends_bit_identical_to_uninterrupted_run(tiny_config, tiny_model, quiet, tmp_path):
    full = fit(tiny_config(epochs=2, out=str(tmp_path / "full")), model=tiny_model(), log=quiet)
    fit(tiny_config(epochs=1, out=str(tmp_path / "part")), model=tiny_model(), log=quiet)
    resumed = fit(tiny_config(epochs=2), resume=tmp_path / "part", model=tiny_model(), log=quiet)
    a, b = _weights(full.run_dir / "model.npz"), _weights(resumed.run_dir / "model.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [r["train_loss"] for r in resumed.epochs] == [r["train_loss"] for r in full.epochs]


def test_ctrl_c_mid_epoch_saves_and_resume_is_bit_identical(tiny_config, tiny_model, quiet, tmp_path):
    full = fit(tiny_config(epochs=2, out=str(tmp_path / "full")), model=tiny_model(), log=quiet)

    def press_ctrl_c(trainer):
        if trainer.step == 6:          # epoch 2, batch 2 (4 batches per epoch)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(epochs=2, out=str(tmp_path / "cut")), model=tiny_model(), on_step=press_ctrl_c, log=quiet)
    meta = ckpt.load_checkpoint(tmp_path / "cut" / "checkpoint.npz").meta
    assert (meta["step"], meta["loader"]["epoch"], meta["loader"]["batch"]) == (6, 1, 2)
    resumed = fit(tiny_config(epochs=2), resume=tmp_path / "cut", model=tiny_model(), log=quiet)
    a, b = _weights(full.run_dir / "model.npz"), _weights(resumed.run_dir / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert resumed.epochs[-1]["train_loss"] == full.epochs[-1]["train_loss"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflow in the diverging net, before the check
def test_huge_learning_rate_stops_with_nan_message_naming_epoch_step_and_lr(tiny_config, tiny_model, quiet):
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+ .*lower the learning rate, e\.g\. --lr"):
        fit(tiny_config(epochs=1, lr=1e9, schedule="none"), model=tiny_model(), log=quiet)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_in_epoch_two_keeps_the_epoch_one_checkpoint(tiny_config, tiny_model, quiet, tmp_path):
    run = tmp_path / "run"

    def blow_up_after_epoch_one(trainer):
        if trainer.step == 5:                   # first step of epoch 2 (4 batches per epoch)
            trainer.optimizer.lr = 1e9

    with pytest.raises(NonFiniteLossError, match="epoch 2"):
        fit(tiny_config(epochs=3, out=str(run), schedule="none"), model=tiny_model(),
            on_step=blow_up_after_epoch_one, log=quiet)
    meta = ckpt.load_checkpoint(run / "checkpoint.npz")
    assert meta.meta["epoch"] == 1 and meta.meta["step"] == 4
    assert all(np.isfinite(w).all() for w in meta.model.values())


def test_time_limit_stops_mid_epoch_and_time_schedule_lowers_lr(tiny_config, tiny_model, quiet):
    h = fit(tiny_config(epochs=5, time_limit=1e-4, schedule="time", lr=0.01), model=tiny_model(), log=quiet)
    assert h.status == "completed" and len(h.epochs) == 1
    assert h.epochs[0]["step"] == 1                      # stopped after the first SGD step
    from tinyalex.train import load_checkpoint
    meta = load_checkpoint(h.run_dir / "checkpoint.npz").meta
    assert meta["optimizer"]["lr"] == pytest.approx(0.001)    # 60% of the budget had passed


def test_time_schedule_without_time_limit_is_refused(tiny_config, tiny_model, quiet):
    with pytest.raises(ValueError, match="--time-limit"):
        fit(tiny_config(schedule="time"), model=tiny_model(), log=quiet)


def test_trains_two_towers_on_two_standin_devices(tiny_config, quiet):
    """Batches, labels, velocities all stay on the model's devices: any implicit transfer would raise."""
    from tinyalex import backend

    cfg = tiny_config(epochs=1, model="alexnet-small", width=0.125, backend="standin", devices=[0, 1],
                      limit_train=64, limit_test=32, val_fraction=0.25)
    h = fit(cfg, log=quiet)
    assert h.status == "completed" and np.isfinite(h.epochs[0]["train_loss"])
    assert backend.get_backend() == "standin"


def test_the_models_dropout_layers_share_one_generator_set_seeded_from_the_run(tiny_config, tiny_model, quiet,
                                                                             tmp_path):
    from tinyalex.layers import Dropout
    from tinyalex.train.trainer import Trainer

    t = Trainer(tiny_config(epochs=1), model=tiny_model(), log=quiet)
    drops = [m for _, m in t.model.named_layers() if isinstance(m, Dropout)]
    assert drops and all(d.generators is t.generators for d in drops)
    other = Trainer(tiny_config(epochs=1, out=str(tmp_path / "other")), model=tiny_model(), log=quiet)
    assert t.generators.seed == other.generators.seed


def test_checkpoint_keeps_the_dropout_generator_state(tiny_config, tiny_model, quiet):
    h = fit(tiny_config(epochs=1), model=tiny_model(), log=quiet)
    rng = ckpt.load_checkpoint(h.run_dir / "checkpoint.npz").rng
    assert list(rng) == ["numpy:0"]


def test_ready_model_data_and_pipeline_train_in_memory_and_loss_falls(tiny_config, tiny_model, quiet, tmp_path,
                                                                      monkeypatch):
    """fit takes a model object, datasets and a fitted pipeline, and with save=False writes nothing."""
    from tinyalex.data import Pipeline, make_synthetic

    monkeypatch.chdir(tmp_path)
    train = make_synthetic(128, image_shape=(3, 28, 28), seed=0, split="train")
    test = make_synthetic(64, image_shape=(3, 28, 28), seed=0, split="test")
    pipe = Pipeline(crop=None, flip=False, pca=False).fit(train)
    rows_seen = []
    h = fit(tiny_config(epochs=3, out=None, val_fraction=0.0, schedule="none", lr=0.02), model=tiny_model(),
            data=(train, test, None), pipeline=pipe, save=False, log=quiet,
            on_epoch=lambda trainer, row: rows_seen.append(row["epoch"]))
    assert h.status == "completed" and h.run_dir is None
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    assert all(r["val_top1"] is not None for r in h.epochs)     # the given second set validates
    assert rows_seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []                        # no run folder, no files


def test_in_memory_run_cannot_be_resumed(tiny_config, tmp_path):
    from tinyalex.train.trainer import Trainer

    with pytest.raises(ValueError, match="save=False"):
        Trainer(tiny_config(), resume=tmp_path, save=False)


@pytest.mark.parametrize("channels, flip, expected", [(3, None, True), (1, None, False), (1, True, True),
                                                      (3, False, False)])
def test_flips_default_to_on_for_rgb_and_off_for_grey_images(channels, flip, expected):
    size = 28 if channels == 1 else 32
    cfg = TrainConfig(flip=flip, model="alexnet-small" if channels == 1 else "alexnet-cifar")
    pipe = make_pipeline(cfg, (channels, size, size), (channels, size, size))
    assert pipe.flip is expected


@pytest.mark.parametrize("channels, pad, expected", [(3, None, 4), (1, None, 1), (1, 3, 3)])
def test_padding_before_crops_defaults_to_one_eighth_for_rgb_and_one_pixel_for_grey(channels, pad, expected):
    size = 28 if channels == 1 else 32
    cfg = TrainConfig(pad=pad, model="alexnet-small" if channels == 1 else "alexnet-cifar")
    assert make_pipeline(cfg, (channels, size, size), (channels, size, size)).pad == expected


def _replica_config(tiny_config, tmp_path, name, **kw):
    base = dict(model="alexnet-small", width=0.25, dataset="synthetic", out=str(tmp_path / name))
    base.update(kw)
    return tiny_config(**base)


def test_a_run_split_over_thread_replicas_trains_the_weights_of_the_model_alone(tiny_config, quiet, tmp_path,
                                                                                  monkeypatch):
    runs = {}
    for replicas in ("1", "2"):
        monkeypatch.setenv("TINYALEX_REPLICAS", replicas)
        cfg = _replica_config(tiny_config, tmp_path, f"r{replicas}", dtype="float64", dropout=0.0)
        runs[replicas] = _weights(fit(cfg, log=quiet).run_dir / "model.npz")
    for k in runs["1"]:
        np.testing.assert_allclose(runs["2"][k], runs["1"][k], rtol=0, atol=1e-9, err_msg=k)


def test_a_run_split_over_thread_replicas_with_dropout_resumes_bit_identical(tiny_config, quiet, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("TINYALEX_REPLICAS", "2")
    full = fit(_replica_config(tiny_config, tmp_path, "full", dropout=0.5), log=quiet)
    fit(_replica_config(tiny_config, tmp_path, "part", dropout=0.5, epochs=1), log=quiet)
    resumed = fit(_replica_config(tiny_config, tmp_path, "part", dropout=0.5), resume=tmp_path / "part", log=quiet)
    a, b = _weights(full.run_dir / "model.npz"), _weights(resumed.run_dir / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_the_log_says_when_each_step_is_split_over_thread_replicas(tiny_config, tmp_path, monkeypatch):
    lines = []
    monkeypatch.setenv("TINYALEX_REPLICAS", "2")
    fit(_replica_config(tiny_config, tmp_path, "two", epochs=1), log=lines.append)
    monkeypatch.setenv("TINYALEX_REPLICAS", "1")
    fit(_replica_config(tiny_config, tmp_path, "one", epochs=1), log=lines.append)
    said = [line for line in lines if "split over" in line]
    assert said == ["each step's batch split over 2 threads up to pool5, each running a replica of the model with "
                    "one BLAS thread; flatten..fc8 on the whole batch, each fully connected layer's neurons split over "
                    "the threads (tinyalex/fast/replicas.py; TINYALEX_REPLICAS=1 turns it off)"]


def test_a_cosine_run_lowers_the_rate_every_step_and_resumes_bit_identical(tiny_config, tiny_model, quiet,
                                                                                    tmp_path):
    lrs = []
    full = fit(tiny_config(epochs=2, schedule="cosine", out=str(tmp_path / "full")), model=tiny_model(),
               on_step=lambda t: lrs.append(t.optimizer.lr), log=quiet)
    # 4 batches per epoch, 8 steps: after step k the rate for step k + 1 is lr(k / 8), down to lr(7 / 8)
    assert len(lrs) == 8 and lrs[-1] == lrs[-2] > 0
    np.testing.assert_allclose(lrs[3], 0.005 * 0.5 * (1 + np.cos(np.pi * 4 / 8)), rtol=1e-12)
    np.testing.assert_allclose(lrs[6], 0.005 * 0.5 * (1 + np.cos(np.pi * 7 / 8)), rtol=1e-12)
    assert all(a > b for a, b in zip(lrs[:7], lrs[1:7]))

    def press_ctrl_c(trainer):
        if trainer.step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(epochs=2, schedule="cosine", out=str(tmp_path / "cut")), model=tiny_model(),
            on_step=press_ctrl_c, log=quiet)
    resumed = fit(tiny_config(epochs=2, schedule="cosine"), resume=tmp_path / "cut", model=tiny_model(), log=quiet)
    a, b = _weights(full.run_dir / "model.npz"), _weights(resumed.run_dir / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_label_smoothing_reaches_the_training_loss_and_is_kept_in_the_run_config(tiny_config, tiny_model, quiet):
    seen = []
    h = fit(tiny_config(epochs=1, label_smoothing=0.1), model=tiny_model(),
            on_step=lambda t: seen.append(t.criterion.label_smoothing), log=quiet)
    assert set(seen) == {0.1}
    assert json.loads((h.run_dir / "config.json").read_text())["train_config"]["label_smoothing"] == 0.1


def test_resuming_a_cosine_run_with_more_epochs_stretches_the_curve_over_them(tiny_config, tiny_model, quiet,
                                                                                tmp_path):
    fit(tiny_config(epochs=1, schedule="cosine"), model=tiny_model(), log=quiet)       # 4 steps
    lrs = []
    fit(tiny_config(epochs=2, schedule="cosine"), resume=tmp_path / "run", model=tiny_model(),
        on_step=lambda t: lrs.append(t.optimizer.lr), log=quiet)
    # steps 5..8 of 8: after step k the next rate is lr(k / 8)
    np.testing.assert_allclose(lrs[:3], [0.005 * 0.5 * (1 + np.cos(np.pi * k / 8)) for k in (5, 6, 7)], rtol=1e-12)


def test_five_crop_tests_on_the_five_crops_and_says_so(tiny_config, tiny_model):
    lines = []
    h = fit(tiny_config(epochs=1, five_crop=True), model=tiny_model(), log=lambda *a, **k: lines.append(a[0]))
    assert json.loads((h.run_dir / "test.json").read_text())["views"] == 5
    assert any(line.startswith("test:") and line.endswith("(5-crop)") for line in lines)


def test_predict_proba_with_five_views_averages_the_softmax_of_the_five_crops(tiny_model):
    from tinyalex.data import Pipeline, make_synthetic

    train = make_synthetic(32, image_shape=(3, 28, 28), seed=0, split="train")
    pipeline = Pipeline(crop=28, pad=2, flip=False, pca=False).fit(train)
    model = tiny_model()
    x, _ = train.get_batch(np.arange(6))
    model.eval()
    logits = [np.asarray(model.forward(v), np.float64) for v in pipeline.eval_views(x, 5)]
    softmax = [np.exp(z - z.max(1, keepdims=True)) for z in logits]
    expected = np.mean([s / s.sum(1, keepdims=True) for s in softmax], axis=0)
    np.testing.assert_allclose(predict_proba(model, x, pipeline, views=5), expected, rtol=1e-5, atol=1e-7)
