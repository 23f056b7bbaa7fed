"""Experiment 3: overlapping pooling 3/2 vs 2/2 (paper section 3.4).

The same small CNN with max pooling z=3, s=2 (overlapping, the paper's) or
z=2, s=2 (traditional) at all three pooling layers. With floor rounding the
feature maps are not the same size (28 -> 13 -> 6 -> 2 vs 28 -> 14 -> 7 -> 3),
so fc6 has fewer inputs with 3/2: the table lists the parameter counts.
Measured: test error, training error (eval mode) and the gap between them.
"""
from __future__ import annotations

from .common import (compare_variants, histories_json, load_subsets, plot_train_test_error, quick_settings, Result, Settings, small_alexnet,
                     standard_table, Table)

NAME = "pooling"
TITLE = "Overlapping pooling 3/2 vs 2/2 (section 3.4)"
PAPER = ("Overlapping pooling (z=3, s=2) cut top-1/top-5 error by 0.4%/0.3% against z=2, s=2 "
         "with output of equal size, and nets with it were slightly harder to overfit.")
FULL = Settings(dataset="fashion-mnist")
QUICK = quick_settings()
VARIANTS = {"overlapping 3/2": {"pool": (3, 2)}, "non-overlapping 2/2": {"pool": (2, 2)}}


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    runs = compare_variants(VARIANTS, s, data, log)
    params = Table("Model size", ["variant", "parameters"],
                   [[label, f"{small_alexnet(data.image_shape, data.num_classes, width=s.width, fc=s.fc, **kw).num_parameters():,}"]
                    for label, kw in VARIANTS.items()])
    plot_train_test_error(runs, out / "train_test_error.png",
                          title=f"Pooling 3/2 vs 2/2, {data.label}, mean of {s.seeds} seed(s)")
    return Result(
        tables=[standard_table(runs, "Overlapping vs non-overlapping pooling (mean ± std over seeds)"),
                params],
        figures=[("train_test_error.png", "Test (solid) and training (dotted, eval mode) error "
                  "against epochs, mean over seeds")],
        data={"data_label": data.label, "runs": histories_json(runs)})
