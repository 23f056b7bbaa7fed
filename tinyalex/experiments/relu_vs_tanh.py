"""Experiment 1: ReLU vs tanh (paper section 3.1, Figure 1).

The same small CNN with each nonlinearity, no regularization (no dropout, no
weight decay, no LRN: Figure 1's setting). The learning rate is tuned for each
nonlinearity separately, as in the paper: a short sweep (``sweep_epochs``,
seed 0) over ``lrs`` picks, per nonlinearity, the rate with the lowest
training error at the end of the sweep; the full runs then use it. Measured:
epochs and training seconds until the training error (over a quarter-epoch
window) first reaches 25% (the paper's threshold) and lower thresholds, and
the ratio tanh / ReLU.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..viz import plot_lines
from .common import (Result, Settings, Table, errors, final_test_error, fmt, histories_json,
                     load_subsets, quick_settings, small_alexnet, summarize, time_to_train_error,
                     train, train_config, windows)

NAME = "relu_vs_tanh"
TITLE = "ReLU vs tanh: training speed (section 3.1, Figure 1)"
PAPER = ("A 4-layer CNN with ReLUs reached 25% training error on CIFAR-10 six times faster "
         "(in epochs) than the same net with tanh; learning rates tuned per nonlinearity, "
         "no regularization.")
FULL = Settings(dataset="fashion-mnist", epochs=4, weight_decay=0.0, extra={"lrs": [0.003, 0.01, 0.03], "sweep_epochs": 1,
                                         "thresholds": [0.5, 0.4, 0.25, 0.15, 0.10]})
QUICK = quick_settings(weight_decay=0.0, extra={"lrs": [0.01, 0.03], "sweep_epochs": 1,
                                                "thresholds": [0.25, 0.5]})
ACTIVATIONS = ("relu", "tanh")


def plot_training_error(curves_by_act: dict, best_lr: dict, subtitle: str, path) -> None:
    """Figure 1's plot: training error against epochs, one colour per nonlinearity, a line per seed."""
    curves = {}
    for act, style in zip(ACTIVATIONS, ("C0-", "C3--")):
        for i, (epochs, errors) in enumerate(curves_by_act[act]):
            curves[f"{act} (lr {best_lr[act]})" if i == 0 else f"_{act}{i}"] = (epochs, errors, style)
    plot_lines(curves, "training error (%)", path, title=f"ReLU (solid) vs tanh (dashed), {subtitle}",
                hline=0.25)


def replot(run_folder) -> None:
    """Redraw training_error.png of a finished run from its results.json."""
    r = json.loads((Path(run_folder) / "results.json").read_text())
    d = r["data"]
    plot_training_error({a: [(h["chunk_epoch"], h["chunk_error"]) for h in d["runs"][a]] for a in ACTIVATIONS},
                        d["best_lr"], f"{d['data_label']}, {r['settings']['seeds']} seed(s)",
                        Path(run_folder) / "training_error.png")


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    lrs, thresholds = s.extra["lrs"], s.extra["thresholds"]

    def run_one(act, lr, seed, epochs):
        model = small_alexnet(data.image_shape, data.num_classes, activation=act, width=s.width, fc=s.fc,
                              seed=seed)
        return train(model, data, train_config(s, seed, lr, epochs=epochs), log=log).history

    # 1. learning-rate sweep, per nonlinearity
    sweep, best_lr = {}, {}
    for act in ACTIVATIONS:
        for lr in lrs:
            log(f"  sweep: {act}, lr {lr}")
            h = run_one(act, lr, 0, s.extra["sweep_epochs"])
            sweep[(act, lr)] = float("inf") if h.status == "diverged" else windows(h)[-1]["train_error"]
        best_lr[act] = min(lrs, key=lambda lr: sweep[(act, lr)])
    # 2. the comparison at the tuned rates, over seeds
    runs = {act: [] for act in ACTIVATIONS}
    for act in ACTIVATIONS:
        for seed in range(s.seeds):
            log(f"  {act} (lr {best_lr[act]}), seed {seed}")
            runs[act].append(run_one(act, best_lr[act], seed, s.epochs))

    sweep_table = Table(
        f"Learning-rate sweep ({s.extra['sweep_epochs']} epoch(s), seed 0): training error "
        "over the last quarter epoch", ["nonlinearity"] + [f"lr {lr}" for lr in lrs] + ["chosen"],
        [[act] + [("diverged" if not np.isfinite(sweep[(act, lr)]) else f"{100 * sweep[(act, lr)]:.1f}%")
                  for lr in lrs] + [best_lr[act]] for act in ACTIVATIONS])
    rows, ratios = [], {}
    for t in thresholds:
        ep = {a: [time_to_train_error(h, t)[0] for h in runs[a]] for a in ACTIVATIONS}
        sec = {a: [time_to_train_error(h, t)[1] for h in runs[a]] for a in ACTIVATIONS}
        # per-seed ratio tanh/relu (same seed: same data order)
        r_ep = [b / a for a, b in zip(ep["relu"], ep["tanh"])]
        r_sec = [b / a for a, b in zip(sec["relu"], sec["tanh"])]
        ratios[t] = {"epochs": r_ep, "seconds": r_sec}
        rows.append([f"{100 * t:.0f}%", fmt(summarize(ep["relu"])), fmt(summarize(ep["tanh"])),
                     fmt(summarize(r_ep)), fmt(summarize(sec["relu"]), digits=0),
                     fmt(summarize(sec["tanh"]), digits=0), fmt(summarize(r_sec))])
    speed = Table("Time until the training error first reaches the threshold "
                  "(quarter-epoch windows; mean ± std over seeds)",
                  ["threshold", "ReLU epochs", "tanh epochs", "ratio tanh/ReLU (epochs)",
                   "ReLU seconds", "tanh seconds", "ratio (seconds)"], rows)
    final = Table("At the end of training", ["nonlinearity", "lr", "training error (last epoch, running)",
                                             "test error"],
                  [[a, best_lr[a], fmt(summarize([errors(h, "train_top1")[-1] if h.epochs else np.nan
                                                  for h in runs[a]]), percent=True),
                    fmt(summarize([final_test_error(h) for h in runs[a]]), percent=True)]
                   for a in ACTIVATIONS])

    plot_training_error({a: [([w["epoch"] for w in windows(h)], [w["train_error"] for w in windows(h)])
                             for h in runs[a]] for a in ACTIVATIONS},
                        best_lr, f"{data.label}, {s.seeds} seed(s)", out / "training_error.png")
    return Result(
        tables=[sweep_table, speed, final],
        figures=[("training_error.png", "Training error (quarter-epoch windows) against epochs; "
                  "one line per seed; dashed grey line: 25%")],
        notes=["Training error is the error of the training-mode predictions over each quarter "
               "epoch, the closest cheap analogue of Figure 1's curve.",
               "'not reached' means the threshold was not reached within the epochs run."],
        data={"data_label": data.label, "best_lr": best_lr,
              "sweep": {f"{a} lr={lr}": v for (a, lr), v in sweep.items()},
              "ratios": {str(t): r for t, r in ratios.items()}, "runs": histories_json(runs)})
