"""Pictures of training and of what the net learned (matplotlib, no display needed).

Every function builds a :class:`matplotlib.figure.Figure` directly (no
``pyplot`` state, no global backend switch: it works in scripts, on servers
without a display and in notebooks, where a returned Figure shows inline),
and when given ``path`` also writes a PNG atomically.

* :func:`plot_curves` - loss and accuracy per epoch (``curves.png``)
* :func:`plot_lines` - any set of labelled curves of error rates (the experiments' plots)
* :func:`plot_confusion_matrix` - rows: true class, columns: predicted
* :func:`plot_conv1_filters` - the conv1 kernels as images, one panel per
  tower, as in Figure 3 of the paper
* :func:`plot_image_grid` - a grid of images with captions (predictions,
  nearest neighbours, augmentations)
"""
from __future__ import annotations

import io

import numpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from .backend import to_host
from .fileio import atomic_write


def figure(width, height):
    """A new Figure (inches, 100 dpi) that needs no display and no pyplot state."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, tight=False, palette=False):
    """Write ``fig`` as a PNG atomically (tinyalex.fileio.atomic_write); returns the path.

    ``tight`` crops the white margin (bbox_inches="tight"); ``palette`` stores
    a 256-colour palette PNG (image grids: about 3x smaller; needs Pillow).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **({"bbox_inches": "tight"} if tight else {}))
    if palette:
        buf.seek(0)
        image = Image.open(buf).convert("RGB").quantize(256)
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=True)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))



def _finish(fig, path=None, title=""):
    """Title, tight layout, and (with a path) an atomic PNG; returns the figure."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig

def _column(rows, key):
    return numpy.array([numpy.nan if r.get(key) in (None, "") else float(r[key]) for r in rows])


def plot_curves(history, path=None, title=None):
    """Loss (left) and top-1 / top-5 accuracy (right) against epoch.

    ``history`` is a list of per-epoch dicts with keys ``epoch``,
    ``train_loss``, ``val_loss``, ``train_top1``, ``val_top1``, ``val_top5``
    (the rows of ``metrics.jsonl``); missing values are skipped. Epochs where
    the learning rate changed get a dotted vertical line.
    """
    rows = list(history)
    fig = figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    if rows:
        epochs = _column(rows, "epoch")
        for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
            y = _column(rows, key)
            if numpy.isfinite(y).any():
                ax_loss.plot(epochs, y, style, label=key.replace("_", " "), markersize=3)
        for key, style in (("train_top1", "-o"), ("val_top1", "-s"), ("val_top5", "--")):
            y = _column(rows, key)
            if numpy.isfinite(y).any():
                ax_acc.plot(epochs, 100 * y, style, label=key.replace("_", " "), markersize=3)
        lr = _column(rows, "lr")
        for i in range(1, len(rows)):
            if numpy.isfinite(lr[i]) and lr[i] != lr[i - 1]:
                for ax in (ax_loss, ax_acc):
                    ax.axvline(epochs[i], color="gray", linestyle=":", linewidth=1)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy (dotted: lr / 10)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.legend()
    return _finish(fig, path, title)


def plot_lines(curves, ylabel, path=None, xlabel="epoch", title="", hline=None):
    """Line plot of {label: (x, y[, style])}, y as fractions drawn in %; a dashed grey line at ``hline``.

    Labels starting with "_" stay out of the legend (matplotlib's rule), e.g. a second seed's line.
    """
    fig = figure(5.5, 3.6)
    ax = fig.subplots()
    for label, (x, y, *style) in curves.items():
        ax.plot(x, 100 * numpy.asarray(y, dtype=float), *style, label=label)
    if hline is not None:
        ax.axhline(100 * hline, color="gray", linestyle="--", linewidth=0.8)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path, tight=True)
    return fig


def confusion_matrix(labels, predictions, num_classes):
    """counts[i, j] = number of examples of true class i predicted as j."""
    labels = numpy.asarray(labels, dtype=numpy.int64)
    predictions = numpy.asarray(predictions, dtype=numpy.int64)
    counts = numpy.zeros((num_classes, num_classes), dtype=numpy.int64)
    numpy.add.at(counts, (labels, predictions), 1)
    return counts


def plot_confusion_matrix(counts, classes, path=None, normalize=True, title="confusion matrix"):
    """Heat map of a confusion matrix (rows: true class, columns: predicted).

    With ``normalize`` each row is divided by its total, so the diagonal is
    the per-class accuracy; cells show percentages.
    """
    counts = numpy.asarray(counts)
    k = len(classes)
    if counts.shape != (k, k):
        raise ValueError(f"plot_confusion_matrix: counts must be ({k}, {k}) for {k} classes, got {counts.shape}")
    values = counts / numpy.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    size = max(4.0, 0.6 * k + 2)
    fig = figure(size + 1, size)
    ax = fig.subplots()
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                v = values[i, j]
                text = f"{100 * v:.0f}" if normalize else str(int(v))
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 * values.max() else "black")
    return _finish(fig, path)


def _to_display(images):
    """(N, C, H, W) or (N, H, W) arrays -> (N, H, W, 3 or 1) in [0, 1], each image scaled to its own range."""
    x = numpy.asarray(images, dtype=numpy.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {x.shape}")
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    x = (x - lo) / numpy.where(hi > lo, hi - lo, 1.0)
    return x.transpose(0, 2, 3, 1)


def _tile(images, cols):
    """Tile (N, H, W, C) images into one (rows*H', cols*W', C) array with 1-pixel gaps."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    grid = numpy.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, c))
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = images[i]
    return grid


def plot_conv1_filters(W, towers=2, path=None, title="conv1 kernels"):
    """The first layer's kernels as small images, one panel per tower (Figure 3).

    ``W`` is conv1's weight array (out_channels, in_channels, kh, kw) (host or
    device: it is copied to the host explicitly). Each kernel is scaled to its
    own min..max. With ``towers=2`` the first half of the kernels (GPU 1 in
    the paper) and the second half (GPU 2) get separate panels, which shows
    the paper's colour-agnostic / colour-specific split.
    """
    W = to_host(W)
    if W.ndim != 4:
        raise ValueError(f"plot_conv1_filters: W must be (out, in, kh, kw), got shape {W.shape}")
    if towers < 1 or W.shape[0] % towers:
        raise ValueError(f"plot_conv1_filters: {W.shape[0]} kernels do not split into {towers} towers")
    x = _to_display(W if W.shape[1] in (1, 3) else W[:, :1])
    per = W.shape[0] // towers
    cols = int(numpy.ceil(numpy.sqrt(per))) if per > 8 else per
    fig = figure(4 * towers, 4)
    axes = numpy.atleast_1d(fig.subplots(1, towers))
    for t, ax in enumerate(axes):
        grid = _tile(x[t * per:(t + 1) * per], cols)
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"tower {t + 1} ({per} kernels)" if towers > 1 else f"{per} kernels")
    fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_image_grid(images, captions=None, cols=8, path=None, title=None):
    """Images (N, C, H, W) or (N, H, W) in a grid, each with an optional caption."""
    x = _to_display(images)
    n = len(x)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig = figure(1.6 * cols, 1.8 * rows)
    axes = numpy.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < n:
            img = x[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", interpolation="nearest")
            if captions is not None:
                ax.set_title(str(captions[i]), fontsize=8)
    return _finish(fig, path, title)
