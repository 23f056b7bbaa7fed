"""Experiment 4: dropout on vs off in fc6 and fc7 (paper section 4.2).

The same small CNN with and without dropout (p=0.5, inverted form) after the
ReLUs of fc6 and fc7. Measured: test error, training error (eval mode), the
gap, and how long each takes to converge, read two ways: iterations until the
test error is within 1 point of the run's best, and iterations until the
training error (quarter-epoch windows) first reaches ``threshold``.
"""
from __future__ import annotations

from .common import (compare_variants, epochs_to_near_best_test, fmt, histories_json, load_subsets,
                     plot_train_test_error, quick_settings, Result, Settings, standard_table,
                     summarize, Table, time_to_train_error)

NAME = "dropout"
TITLE = "Dropout on vs off in fc6 and fc7 (section 4.2)"
PAPER = ("Without dropout the network overfits substantially; dropout roughly doubles the number "
         "of iterations required to converge.")
FULL = Settings(dataset="fashion-mnist", epochs=5, extra={"threshold": 0.15})
QUICK = quick_settings(extra={"threshold": 0.5})
VARIANTS = {"no dropout": {"dropout": 0.0}, "dropout 0.5 in fc6, fc7": {"dropout": 0.5}}


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    runs = compare_variants(VARIANTS, s, data, log)
    t = s.extra["threshold"]
    ipe = -(-len(data.train) // s.batch_size)          # iterations per epoch
    rows = []
    for label, hs in runs.items():
        near = [epochs_to_near_best_test(h, 0.01) * ipe for h in hs]
        thr = [time_to_train_error(h, t)[0] * ipe for h in hs]
        rows.append([label, fmt(summarize(near), digits=0), fmt(summarize(thr), digits=0)])
    conv = Table(f"Iterations to converge (batch {s.batch_size}; {ipe} "
                 "iterations per epoch)", ["variant", "until test error within 1 point of its best",
                                           f"until training error <= {100 * t:.0f}%"], rows)
    plot_train_test_error(runs, out / "train_test_error.png",
                          title=f"Dropout on/off, {data.label}, mean of {s.seeds} seed(s)")
    return Result(
        tables=[standard_table(runs, "Dropout on vs off (mean ± std over seeds)"), conv],
        figures=[("train_test_error.png", "Test (solid) and training (dotted, eval mode) error "
                  "against epochs, mean over seeds")],
        data={"data_label": data.label, "runs": histories_json(runs)})
