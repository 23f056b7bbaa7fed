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

from ..data import average_ten_crop_predictions, default_crop_size
from .common import (error_rate, fmt, histories_json, load_data, make_pipeline,
                     plot_train_test_error, predict_proba, quick_settings, Result, Settings,
                     small_alexnet, summarize, Table, train_classifier)

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
    views = pipe.eval_views(data.test.images)                       # (10, N, C, h, w)
    ten, n = views.shape[:2]
    probs = predict_proba(model, views.reshape(ten * n, *views.shape[2:]))
    return error_rate(average_ten_crop_predictions(probs), data.test.labels)


def run(s: Settings, out, log=print) -> Result:
    data = load_data(s)
    crop = default_crop_size(data.image_shape[1])
    rgb = data.image_shape[0] == 3
    configs = {"none (centre crop)": CentreCropOnly(make_pipeline(data, crop=crop)),
               "crops + flips": make_pipeline(data, crop=crop, flip=True)}
    if rgb:
        configs["crops + flips + PCA colour"] = make_pipeline(data, crop=crop, flip=True, pca=True)
    runs, ten = {}, {}
    for label, pipe in configs.items():
        runs[label], ten[label] = [], []
        for seed in range(s.seeds):
            log(f"  {label}, seed {seed}")
            model = small_alexnet(pipe.output_shape(data.image_shape), data.num_classes,
                                  width=s.width, fc=s.fc, seed=seed)
            h = train_classifier(model, data, pipe, epochs=s.epochs, lr=s.lr, seed=seed,
                                 batch_size=s.batch_size, weight_decay=s.weight_decay, log=log)
            runs[label].append(h)
            ten[label].append(ten_crop_error(model, pipe, data) if not h.diverged else np.nan)
    rows = []
    for label, hs in runs.items():
        rows.append([label, fmt(summarize([h.final_test_error for h in hs]), percent=True),
                     fmt(summarize(ten[label]), percent=True),
                     fmt(summarize([h.train_eval_error[-1] for h in hs if h.train_eval_error]), percent=True),
                     fmt(summarize([h.final_gap for h in hs]), percent=True)])
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
