"""Experiment 5: data augmentation (paper section 4.1) and 10-crop testing.

Three trainings of the same small CNN on crops of 28x28 out of CIFAR-10's
32x32 images (the scaled-down 224 of 256; 24 of 28 on Fashion-MNIST):

* none:           the centre crop every time (no augmentation);
* crops + flips:  a random crop and a random horizontal flip each time an image is used;
* + PCA colour:   and PCA colour noise (alpha ~ N(0, 0.1) per eigenvector; RGB only).

Each net is tested on the centre crop and with the paper's 10 views (four
corners, centre, and their mirror images; softmax outputs averaged).
"""
from __future__ import annotations

import numpy as np

from ..data import default_crop_size
from ..train import evaluate
from ..train.trainer import make_pipeline
from .common import (errors, final_gap, final_test_error, fmt, histories_json, load_subsets,
                     plot_train_test_error, quick_settings, Result, Settings, small_alexnet,
                     summarize, Table, train, train_config)

NAME = "augmentation"
TITLE = "Data augmentation: crops, flips, PCA colour; 10-crop testing (section 4.1)"
PAPER = ("Without crops and flips the net overfits substantially; PCA colour augmentation cut "
         "top-1 error by over 1%; averaging the 10 test patches (vs. one) is part of the reported "
         "results (the paper gives no separate number for it).")
FULL = Settings(dataset="cifar10", epochs=4)
QUICK = quick_settings(extra={"image_shape": (3, 32, 32)})


class CentreCropOnly:
    """A Pipeline whose training transform is its eval transform: no augmentation at all."""

    def __init__(self, pipe):
        self.pipe = pipe

    def train_transform(self, x, rng=None):
        return self.pipe.eval_transform(x)

    def __getattr__(self, name):
        return getattr(self.pipe, name)


def ten_crop_error(model, pipe, data) -> float:
    """Test error with the softmax averaged over the 10 views of every test image."""
    return 1.0 - evaluate(model, data.test, pipe, views=10)["top1"]


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    crop = default_crop_size(data.image_shape[1])
    rgb = data.image_shape[0] == 3
    in_shape = (data.image_shape[0], crop, crop)
    variants = {"none (centre crop)": dict(flip=False), "crops + flips": dict(flip=True)}
    if rgb:
        variants["crops + flips + PCA colour"] = dict(flip=True, pca=True)
    runs, ten = {}, {}
    for label, aug in variants.items():
        runs[label], ten[label] = [], []
        for seed in range(s.seeds):
            log(f"  {label}, seed {seed}")
            cfg = train_config(s, seed, crop=crop, **aug)
            pipe = make_pipeline(cfg, data.image_shape, in_shape).fit(data.train)
            if label.startswith("none"):
                pipe = CentreCropOnly(pipe)
            model = small_alexnet(in_shape, data.num_classes, width=s.width, fc=s.fc, seed=seed)
            h = train(model, data, cfg, pipeline=pipe, log=log).history
            runs[label].append(h)
            ten[label].append(ten_crop_error(model, pipe, data) if h.status != "diverged" else np.nan)
    rows = []
    for label, hs in runs.items():
        rows.append([label, fmt(summarize([final_test_error(h) for h in hs]), percent=True),
                     fmt(summarize(ten[label]), percent=True),
                     fmt(summarize([errors(h, "train_eval_top1")[-1] for h in hs if h.epochs]), percent=True),
                     fmt(summarize([final_gap(h) for h in hs]), percent=True)])
    table = Table(f"Augmentation and test-time views ({crop}x{crop} crops; mean ± std over seeds)",
                  ["training data", "test error, centre crop", "test error, 10 views",
                   "train error (centre crop, eval mode)", "gap (centre test - train)"], rows)
    plot_train_test_error(runs, out / "train_test_error.png",
                          title=f"Augmentation, {data.label}, mean of {s.seeds} seed(s)")
    notes = [] if rgb else ["PCA colour augmentation needs RGB images: skipped on this 1-channel dataset."]
    return Result(tables=[table],
                  figures=[("train_test_error.png", "Test (solid) and training (dotted, centre "
                            "crop, eval mode) error against epochs, mean over seeds")],
                  notes=notes,
                  data={"data_label": data.label, "crop": crop, "ten_crop_error": ten,
                        "runs": histories_json(runs)})
