"""Experiment 6: two towers vs one tower with half the kernels (paper section 3.2).

Two towers: conv1 w kernels (w/2 per tower), conv2 2w kernels in two groups
(each tower reads only its own conv1 maps), conv3 2w kernels reading both
towers. One tower: conv1 w/2, conv2 w (one group); conv3 keeps 2w kernels
and fc6/fc7 keep their size, as in the paper ("we did not halve the size of
the final convolutional layer nor the fully-connected layers"), so both nets
have about the same number of parameters.
"""
from __future__ import annotations

from .common import (Result, Settings, Table, compare_variants, histories_json, load_subsets,
                     plot_test_error, quick_settings, small_alexnet, standard_table)

NAME = "towers"
TITLE = "Two towers vs one tower with half the kernels (section 3.2)"
PAPER = ("The two-GPU net cut top-1/top-5 error by 1.7%/1.2% against a net with half as many "
         "kernels in each convolutional layer (except the last) trained on one GPU.")
FULL = Settings(dataset="fashion-mnist")
QUICK = quick_settings()


def variants(s: Settings) -> dict:
    return {"two towers (groups=2)": {"towers": 2},
            "one tower, half the kernels": {"width": s.width // 2, "last_conv": 2 * s.width}}


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    v = variants(s)
    runs = compare_variants(v, s, data, log)
    sizes = []
    for label, kw in v.items():
        kw = {"width": s.width, "fc": s.fc, **kw}
        m = small_alexnet(data.image_shape, data.num_classes, **kw)
        conv = [m[n].params["W"].shape[0] for n in ("conv1", "conv2", "conv3")]
        sizes.append([label, " / ".join(map(str, conv)), f"{m.num_parameters():,}"])
    params = Table("Model size", ["variant", "kernels conv1 / conv2 / conv3", "parameters"], sizes)
    plot_test_error(runs, out / "test_error.png", title=f"Two towers vs one, {data.label}, mean of {s.seeds} seed(s)")
    return Result(
        tables=[standard_table(runs, "Two towers vs one tower (mean ± std over seeds)"), params],
        figures=[("test_error.png", "Test error against epochs, mean over seeds")],
        data={"data_label": data.label, "runs": histories_json(runs)})
