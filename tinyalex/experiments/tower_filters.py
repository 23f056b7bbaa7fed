"""Experiment 7: what the two towers learn (paper section 6.1, Figure 3).

Train the two-tower net (conv2 in two groups) on CIFAR-10, then look at
conv1's kernels tower by tower: conv1 kernels [0, w/2) feed only tower 1's
conv2, kernels [w/2, w) only tower 2's.

Colour-specificity of a kernel W (3, k, k): split it into its luminance
part L = the mean over R, G, B at each position (the projection onto
(1, 1, 1)/sqrt(3)) and the rest, which is orthogonal to luminance:

    colour fraction  c(W) = ||W - L||^2 / ||W||^2     in [0, 1]

c = 0 for a grey kernel (same weights in R, G and B), c -> 1 for a kernel
that only contrasts colours. A tower "specialises" if its kernels' mean c
differs from the other tower's by more than a random split of the same
kernels would give: the p-value is the fraction of 2000 random equal splits
whose difference of means is at least as large as the towers'.
"""
from __future__ import annotations

import numpy as np

from ..viz import plot_conv1_filters
from .common import (Result, Settings, Table, final_test_error, histories_json, load_subsets,
                     quick_settings, small_alexnet, train, train_config)

NAME = "tower_filters"
TITLE = "What the two towers learn: conv1 kernels by tower (section 6.1, Figure 3)"
PAPER = ("The 48 conv1 kernels on GPU 1 came out largely colour-agnostic and the 48 on GPU 2 "
         "largely colour-specific, independently of the random initialization.")
FULL = Settings(dataset="cifar10", epochs=4, extra={"permutations": 2000})
QUICK = quick_settings(extra={"image_shape": (3, 32, 32), "permutations": 200})


def colour_fraction(W) -> np.ndarray:
    """c = ||W - mean_rgb(W)||^2 / ||W||^2 for each kernel of W (K, 3, k, k): shape (K,)."""
    W = np.asarray(W, dtype=np.float64)
    lum = W.mean(axis=1, keepdims=True)
    colour = ((W - lum) ** 2).sum(axis=(1, 2, 3))
    return colour / np.maximum((W ** 2).sum(axis=(1, 2, 3)), 1e-30)


def specialisation(c, permutations: int = 2000, seed: int = 0) -> dict:
    """Mean colour fraction per tower (first half / second half of ``c``) and the permutation p-value."""
    c = np.asarray(c, dtype=np.float64)
    half = len(c) // 2
    diff = abs(c[:half].mean() - c[half:].mean())
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(c, (permutations, 1)), axis=1)      # (P, K), each row shuffled
    null = np.abs(perms[:, :half].mean(axis=1) - perms[:, half:].mean(axis=1))
    return {"tower1_mean": float(c[:half].mean()), "tower2_mean": float(c[half:].mean()),
            "difference": float(diff), "p_value": float((np.sum(null >= diff) + 1) / (permutations + 1))}


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    if data.image_shape[0] != 3:
        raise ValueError("tower_filters measures colour: it needs RGB images (--dataset cifar10)")
    rows, stats, histories, figures = [], [], [], []
    for seed in range(s.seeds):
        log(f"  two towers, seed {seed}")
        model = small_alexnet(data.image_shape, data.num_classes, towers=2, width=s.width, fc=s.fc,
                              seed=seed)
        W0 = model["conv1"].params["W"].copy()
        h = train(model, data, train_config(s, seed), log=log).history
        histories.append(h)
        W = model["conv1"].params["W"]
        c = colour_fraction(W)
        st = specialisation(c, s.extra["permutations"], seed)
        st["init"] = specialisation(colour_fraction(W0), s.extra["permutations"], seed)
        st["colour_fraction"] = c.tolist()
        stats.append(st)
        rows.append([seed, f"{100 * final_test_error(h):.1f}%", f"{st['tower1_mean']:.3f}",
                     f"{st['tower2_mean']:.3f}", f"{st['difference']:.3f}", f"{st['p_value']:.3f}",
                     f"{st['init']['tower1_mean']:.3f} / {st['init']['tower2_mean']:.3f}"])
        name = f"conv1_towers_seed{seed}.png"
        plot_conv1_filters(W, towers=2, path=out / name,
                           title=f"seed {seed}: tower 1 (left, mean c={st['tower1_mean']:.2f}), "
                                 f"tower 2 (right, mean c={st['tower2_mean']:.2f})")
        figures.append((name, f"conv1 kernels after training, seed {seed}: tower 1 on the left, "
                              "tower 2 on the right (each kernel scaled to its own range)"))
    table = Table("Colour fraction c of conv1 kernels per tower (0 = grey, 1 = pure colour "
                  "contrast); p: permutation test of the tower difference",
                  ["seed", "test error", "tower 1 mean c", "tower 2 mean c", "difference of means",
                   "p-value", "at init: tower 1 / tower 2"], rows)
    return Result(tables=[table], figures=figures,
                  notes=["A random 3-channel kernel has expected c = 2/3 (two of the three "
                         "orthogonal colour directions are not luminance)."],
                  data={"data_label": data.label, "towers": stats, "runs": histories_json({"two towers": histories})})
