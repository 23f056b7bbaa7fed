"""Experiment 8: feature retrieval (paper section 6.1, Figure 4 right).

Train the small CNN, then for test images find the training images nearest
in Euclidean distance (a) in fc7 space (the 'fc' activations after fc7's
ReLU, eval mode) and (b) in pixel space (the preprocessed input). Measured:
precision@k, the fraction of the k neighbours that share the query's class,
over every test image; drawn: a grid of queries with their neighbours.
"""
from __future__ import annotations

import numpy as np

from ..viz import figure, save_figure
from .common import (Result, Settings, Table, final_test_error, histories_json, load_subsets,
                     quick_settings, small_alexnet, train, train_config)

NAME = "retrieval"
TITLE = "Nearest neighbours in fc7 space vs pixel space (section 6.1, Figure 4)"
PAPER = ("Training images whose last-hidden-layer (4096-d) feature vectors are nearest to a test "
         "image's are semantically similar to it, even when they are not close in pixel space.")
FULL = Settings(dataset="cifar10", epochs=4, seeds=1, extra={"k": 5, "queries": 8})
QUICK = quick_settings(extra={"k": 3, "queries": 4})


def features(model, x, layer: str = "act7", batch_size: int = 500) -> np.ndarray:
    """The activations of ``layer`` (eval mode) for inputs x, flattened: (N, D)."""
    model.eval()
    model.keep_activations = True
    out = []
    try:
        for i in range(0, len(x), batch_size):
            model.forward(x[i:i + batch_size])
            out.append(model.activations[layer].reshape(len(x[i:i + batch_size]), -1))
    finally:
        model.keep_activations = False
        model.activations.clear()
    return np.concatenate(out)


def nearest(queries, database, k: int) -> np.ndarray:
    """Indices (Q, k) of the k rows of ``database`` nearest to each query (Euclidean).

    ||q - d||^2 = ||q||^2 - 2 q.d + ||d||^2; ||q||^2 is the same for every d and is dropped.
    """
    q = np.asarray(queries, dtype=np.float64)
    d = np.asarray(database, dtype=np.float64)
    dist = (d * d).sum(axis=1)[None, :] - 2.0 * q @ d.T
    idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(dist, idx, axis=1).argsort(axis=1)
    return np.take_along_axis(idx, order, axis=1)


def precision_at_k(neighbours, train_labels, query_labels) -> float:
    return float(np.mean(train_labels[neighbours] == query_labels[:, None]))


def draw_grid(data, query_idx, nn_fc7, nn_pix, path, title):
    k = nn_fc7.shape[1]
    rows = len(query_idx)
    fig = figure((2 * k + 1) * 0.7, rows * 0.75 + 0.4)
    axes = fig.subplots(rows, 2 * k + 1, squeeze=False)
    gray = data.image_shape[0] == 1

    def show(ax, img, label, colour="black"):
        img = img[0] if gray else img.transpose(1, 2, 0)
        ax.imshow(img, cmap="gray" if gray else None, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for sp in ax.spines.values():
            sp.set_edgecolor(colour)
            sp.set_linewidth(2)

    for r, q in enumerate(query_idx):
        ql = data.test.labels[q]
        show(axes[r, 0], data.test.images[q], ql, "blue")
        for j in range(k):
            for col, nn in ((1 + j, nn_fc7), (1 + k + j, nn_pix)):
                t = nn[r, j]
                show(axes[r, col], data.train.images[t], data.train.labels[t],
                     "green" if data.train.labels[t] == ql else "red")
    axes[0, 0].set_title("query", fontsize=7)
    axes[0, 1 + k // 2].set_title("nearest in fc7 space", fontsize=7)
    axes[0, 1 + k + k // 2].set_title("nearest in pixel space", fontsize=7)
    fig.suptitle(title, fontsize=8)
    save_figure(fig, path, tight=True, palette=True)


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    k, nq = s.extra["k"], s.extra["queries"]
    log("  training the net (seed 0)")
    model = small_alexnet(data.image_shape, data.num_classes, width=s.width, fc=s.fc, dropout=0.5, seed=0)
    trainer = train(model, data, train_config(s, 0), log=log)
    h, pipe = trainer.history, trainer.pipeline
    x_train, x_test = pipe.eval_transform(data.train.images), pipe.eval_transform(data.test.images)
    f_train, f_test = features(model, x_train), features(model, x_test)
    nn_fc7 = nearest(f_test, f_train, k)
    nn_pix = nearest(x_test.reshape(len(x_test), -1), x_train.reshape(len(x_train), -1), k)
    p_fc7 = precision_at_k(nn_fc7, data.train.labels, data.test.labels)
    p_pix = precision_at_k(nn_pix, data.train.labels, data.test.labels)
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nn_fc7, nn_pix)]))
    table = Table(f"Retrieval of training images for all {len(data.test)} test images "
                  f"({len(data.train)} training images; net test error {100 * final_test_error(h):.1f}%)",
                  ["space", "dimension", f"precision@{k} (same class)", f"overlap of the two {k}-NN sets"],
                  [["fc7 (after ReLU)", f_train.shape[1], f"{100 * p_fc7:.1f}%", f"{100 * overlap:.1f}%"],
                   ["pixels (preprocessed)", x_train[0].size, f"{100 * p_pix:.1f}%", ""]])
    # queries: the first test image of each of the first nq classes (a fixed, readable choice)
    query_idx = [int(np.flatnonzero(data.test.labels == c)[0]) for c in range(data.num_classes)
                 if np.any(data.test.labels == c)][:nq]
    draw_grid(data, query_idx, nn_fc7[query_idx], nn_pix[query_idx], out / "neighbours.png",
              f"{data.label}: query (blue frame), {k} nearest in fc7 space, {k} nearest in pixel "
              "space; green = same class, red = other class")
    return Result(tables=[table],
                  figures=[("neighbours.png", "Each row: a test image, its nearest training images "
                            "in fc7 space, then in pixel space (green frame: same class)")],
                  notes=["The net is the small CNN with dropout in fc6/fc7; fc7 has "
                         f"{s.fc} units here, 4096 in the paper."],
                  data={"data_label": data.label, "precision_fc7": p_fc7, "precision_pixels": p_pix,
                        "overlap": overlap, "query_idx": query_idx, "runs": histories_json({"net": [h]})})
