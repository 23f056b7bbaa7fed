"""What every experiment shares: data, the small AlexNet, training, seeds, tables, the run folder.

An experiment module (one per paper claim) defines::

    NAME, TITLE, PAPER           # registry key, one-line title, the paper's claim and numbers
    FULL, QUICK                  # Settings for the real run and for the seconds-long smoke run
    run(settings, out) -> Result # trains, measures, draws figures into ``out``

``run_experiment`` resolves the settings from the command line, creates the
run folder, calls ``run`` and writes ``results.json`` (everything measured,
raw per-seed numbers included) and ``results.md`` (the tables, figures and
notes) there, atomically.

The network (``small_alexnet``)
-------------------------------
The paper's CIFAR-10 claims (ReLU, LRN) were made with a small 4-layer CNN,
not with AlexNet itself; on a 2-core CPU we do the same for every claim. The
small net keeps AlexNet's ordering of ideas, scaled to 28x28 / 32x32 images:

    conv1 5x5, w kernels   -> act -> [LRN] -> maxpool z/s
    conv2 3x3, 2w kernels, groups=towers (own tower's maps only, like AlexNet conv2)
                            -> act -> [LRN] -> maxpool z/s
    conv3 3x3, 2w kernels, groups=1 (reads BOTH towers, like AlexNet conv3)
                            -> act -> maxpool z/s
    fc6 f -> act -> [dropout]  fc7 f -> act -> [dropout]  fc8 -> softmax

Departures from the paper's net (documented in docs/results.md): He
initialisation (std sqrt(2/fan_in), biases 0; fc8 keeps the paper's
N(0, 0.01)) instead of N(0, 0.01) everywhere with biases 1, because the 0.01 init stalls a small net on standardized inputs;
a constant learning rate (no divide-by-10 schedule) over few epochs.
"""
from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data import ArrayDataset, Pipeline, load_dataset, make_synthetic
from ..fast import implementations
from ..layers import Dropout, Flatten, Sequential, SoftmaxCrossEntropy, Tanh, softmax
from ..layers.conv import conv_output_size
from ..train import SGD

DATASETS = ("fashion-mnist", "cifar10")


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
@dataclass
class Settings:
    """The size of one experiment run. ``FULL`` and ``QUICK`` in each module are Settings."""

    dataset: str = "fashion-mnist"   # fashion-mnist | cifar10 | synthetic (quick mode)
    train_size: int = 4000           # training images (a fixed class-balanced subset)
    test_size: int = 1000            # test images
    epochs: int = 4
    seeds: int = 2
    width: int = 16                  # conv1 kernels; conv2/conv3 have 2*width
    fc: int = 128                    # fc6 and fc7 units
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 5e-4
    data_dir: str | None = None
    quick: bool = False
    extra: dict = field(default_factory=dict)   # experiment-specific knobs

    def describe(self) -> str:
        return (f"{self.dataset}: {self.train_size} train / {self.test_size} test images, "
                f"{self.epochs} epochs, {self.seeds} seed(s), batch {self.batch_size}, "
                f"widths conv {self.width}/{2 * self.width}/{2 * self.width}, fc {self.fc}")


def quick_settings(**overrides) -> Settings:
    """Tiny synthetic data and a tiny net: exercises every code path in about a second."""
    base = dict(dataset="synthetic", train_size=128, test_size=64, epochs=2, seeds=1, width=4,
                fc=16, batch_size=64, quick=True)
    base.update(overrides)
    return Settings(**base)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
@dataclass
class Data:
    """uint8 training and test sets, and a label for tables (e.g. 'CIFAR-10 (JPEG copy)')."""

    train: ArrayDataset
    test: ArrayDataset
    label: str

    @property
    def image_shape(self):
        return self.train.image_shape

    @property
    def num_classes(self):
        return len(self.train.classes)


def balanced_subset(ds: ArrayDataset, n: int, seed: int = 0) -> ArrayDataset:
    """``n`` examples of ``ds``, as equal per class as possible, in a fixed random order."""
    if n >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ds))
    k = len(ds.classes)
    # rank of each example within its class, in the random order; keep the lowest ranks
    labels = ds.labels[order]
    rank = np.empty(len(ds), np.int64)
    for c in range(k):                      # loop over classes (10), not examples
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    keep = order[np.argsort(rank, kind="stable")[:n]]
    keep = np.sort(keep)
    return ArrayDataset(ds.images[keep], ds.labels[keep], ds.classes)


def _is_image_folder(path) -> bool:
    return path is not None and (Path(path) / "train").is_dir() and (Path(path) / "test").is_dir()


def load_data(s: Settings) -> Data:
    """The train/test subsets the settings ask for (synthetic data in quick mode).

    ``cifar10`` reads either the pickled batches (``cifar10`` loader) or, when
    ``--data-dir`` holds ``train/<class>/`` and ``test/<class>/`` folders of
    images, that folder (e.g. the JPEG copy); only the files needed are decoded.
    """
    if s.dataset == "synthetic":
        shape = s.extra.get("image_shape", (1, 28, 28))
        train = make_synthetic(s.train_size, image_shape=shape, seed=0, split="train")
        test = make_synthetic(s.test_size, image_shape=shape, seed=0, split="test")
        return Data(train, test, f"synthetic {shape}")
    if s.dataset == "fashion-mnist":
        train = load_dataset("fashion-mnist", root=s.data_dir, split="train", download=False)
        test = load_dataset("fashion-mnist", root=s.data_dir, split="test", download=False)
        label = "Fashion-MNIST"
    elif s.dataset == "cifar10":
        if _is_image_folder(s.data_dir):
            # limit_per_class keeps the first files of each class folder: decode only those
            per_train = math.ceil(s.train_size / 10)
            per_test = math.ceil(s.test_size / 10)
            train = load_dataset("imagefolder", root=s.data_dir, split="train",
                                 limit_per_class=per_train, in_memory=True)
            test = load_dataset("imagefolder", root=s.data_dir, split="test",
                                limit_per_class=per_test, in_memory=True)
            label = "CIFAR-10 (JPEG copy)"
        else:
            train = load_dataset("cifar10", root=s.data_dir, split="train", download=False)
            test = load_dataset("cifar10", root=s.data_dir, split="test", download=False)
            label = "CIFAR-10"
    else:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {s.dataset!r}")
    return Data(balanced_subset(train, s.train_size, seed=0),
                balanced_subset(test, s.test_size, seed=1), label)


def make_pipeline(data: Data, crop=None, flip=False, pca=False) -> Pipeline:
    """Mean image subtraction + per-channel std (fitted on the training subset); no
    augmentation unless asked (only the augmentation experiment asks)."""
    return Pipeline(crop=crop, flip=flip, pca=pca and data.image_shape[0] == 3).fit(data.train)


# ---------------------------------------------------------------------------
# The small AlexNet
# ---------------------------------------------------------------------------
def small_alexnet(in_shape, num_classes: int, *, activation: str = "relu", lrn: bool = False,
                  pool=(3, 2), dropout: float = 0.0, width: int = 32, fc: int = 256,
                  towers: int = 1, last_conv: int | None = None, seed: int = 0,
                  dtype=np.float32) -> Sequential:
    """The scaled-down AlexNet described in the module docstring.

    in_shape (C, H, W); ``pool`` = (window z, stride s): (3, 2) is overlapping
    pooling, (2, 2) the traditional kind. ``towers=2`` splits conv2 into two
    groups (the two-GPU net on one device: conv1's kernels [0, w/2) are tower 1's).
    ``last_conv`` sets conv3's kernels (default 2*width).
    """
    if activation not in ("relu", "tanh"):
        raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
    if width % towers or (2 * width) % towers:
        raise ValueError(f"width {width} must be divisible by towers={towers}")
    L = implementations(fast=True)
    act = {"relu": L.ReLU, "tanh": Tanh}[activation]
    rng = np.random.default_rng(seed)
    c, h, w = in_shape
    z, s = pool
    last_conv = 2 * width if last_conv is None else last_conv
    layers = []

    def size_after(hw, k, stride, pad):
        return conv_output_size(hw, k, stride, pad)

    layers += [("conv1", L.Conv2D(c, width, 5, padding=2, rng=rng, dtype=dtype)), ("act1", act())]
    if lrn:
        layers.append(("norm1", L.LRN(dtype=dtype)))
    layers.append(("pool1", L.MaxPool2D(z, s)))
    h, w = size_after(h, z, s, 0), size_after(w, z, s, 0)
    layers += [("conv2", L.Conv2D(width, 2 * width, 3, padding=1, groups=towers, rng=rng, dtype=dtype)),
               ("act2", act())]
    if lrn:
        layers.append(("norm2", L.LRN(dtype=dtype)))
    layers.append(("pool2", L.MaxPool2D(z, s)))
    h, w = size_after(h, z, s, 0), size_after(w, z, s, 0)
    layers += [("conv3", L.Conv2D(2 * width, last_conv, 3, padding=1, rng=rng, dtype=dtype)),
               ("act3", act()), ("pool3", L.MaxPool2D(z, s))]
    h, w = size_after(h, z, s, 0), size_after(w, z, s, 0)
    if h < 1 or w < 1:
        raise ValueError(f"images {in_shape} are too small for three {z}/{s} poolings")
    layers += [("flatten", Flatten()),
               ("fc6", L.Linear(last_conv * h * w, fc, rng=rng, dtype=dtype)), ("act6", act())]
    if dropout:
        layers.append(("drop6", Dropout(dropout, seed=seed + 1000)))
    layers += [("fc7", L.Linear(fc, fc, rng=rng, dtype=dtype)), ("act7", act())]
    if dropout:
        layers.append(("drop7", Dropout(dropout, seed=seed + 2000)))
    # fc8 starts small (the paper's N(0, 0.01)): with He init here the initial logits
    # are large (std ~6 on a Fashion-MNIST batch) and the first updates go to shrinking them.
    layers.append(("fc8", L.Linear(fc, num_classes, weight_std=0.01, rng=rng, dtype=dtype)))
    return Sequential(*layers, dtype=dtype)


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------
def predict_proba(model, x, batch_size: int = 500) -> np.ndarray:
    """Softmax outputs of ``model`` (eval mode) for float32 inputs x (N, C, H, W)."""
    model.eval()
    out = [softmax(model.forward(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def error_rate(probs, labels) -> float:
    return float(np.mean(np.argmax(probs, axis=1) != labels))


@dataclass
class History:
    """What one training run measured.

    Per epoch: ``train_error`` (running error of the training-mode predictions
    over that epoch), ``train_eval_error`` (eval mode on a fixed subset of the
    training set, what the train/test gap is measured with), ``test_error``,
    ``loss``, ``seconds`` (cumulative training time, evaluation excluded).
    Per chunk (``chunks_per_epoch`` equal slices of every epoch):
    ``chunk_error`` and ``chunk_seconds``, the finer curve thresholds are read from.
    """

    train_error: list = field(default_factory=list)
    train_eval_error: list = field(default_factory=list)
    test_error: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    chunk_error: list = field(default_factory=list)
    chunk_seconds: list = field(default_factory=list)
    chunk_epoch: list = field(default_factory=list)
    iterations_per_epoch: int = 0
    diverged: bool = False

    @property
    def final_test_error(self) -> float:
        return self.test_error[-1] if self.test_error else float("nan")

    @property
    def final_gap(self) -> float:
        """test error - training error (eval mode) at the end: how much the net overfits."""
        if not self.test_error:
            return float("nan")
        return self.test_error[-1] - self.train_eval_error[-1]

    def time_to_train_error(self, threshold: float):
        """(epochs, seconds) when the chunk training error first reaches <= threshold, else (nan, nan)."""
        for err, sec, ep in zip(self.chunk_error, self.chunk_seconds, self.chunk_epoch):
            if err <= threshold:
                return ep, sec
        return float("nan"), float("nan")

    def epochs_to_near_best_test(self, tolerance: float = 0.01) -> float:
        """First epoch whose test error is within ``tolerance`` of the run's best test error."""
        if not self.test_error:
            return float("nan")
        best = min(self.test_error)
        return float(next(i + 1 for i, e in enumerate(self.test_error) if e <= best + tolerance))


def train_classifier(model, data: Data, pipe: Pipeline, *, epochs: int, lr: float, seed: int,
                     batch_size: int = 128, weight_decay: float = 5e-4, momentum: float = 0.9,
                     chunks_per_epoch: int = 4, train_eval_size: int = 1000, log=None) -> History:
    """Minibatch SGD with the paper's update rule (tinyalex.train.SGD), constant lr.

    Epoch e visits the training set in the order ``default_rng([seed, e])``;
    augmentation draws come from ``default_rng([seed, e, b, 1])`` for batch b.
    Stops early, marking ``diverged``, if the loss becomes NaN or infinite.
    """
    n = len(data.train)
    images, labels = data.train.images, data.train.labels
    x_test = pipe.eval_transform(data.test.images)
    sub = np.random.default_rng([seed, 7]).permutation(n)[:train_eval_size]
    x_train_eval, y_train_eval = pipe.eval_transform(images[sub]), labels[sub]
    opt = SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay)
    criterion = SoftmaxCrossEntropy()
    h = History()
    batches = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    h.iterations_per_epoch = len(batches)
    chunk_ends = {int(round(len(batches) * (k + 1) / chunks_per_epoch)) - 1 for k in range(chunks_per_epoch)}
    train_seconds = 0.0
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        model.train()
        wrong = seen = 0
        chunk_wrong = chunk_seen = 0
        loss_sum = 0.0
        for b, (lo, hi) in enumerate(batches):
            idx = order[lo:hi]
            t0 = time.perf_counter()
            x = pipe.train_transform(images[idx], np.random.default_rng([seed, epoch, b, 1]))
            y = labels[idx]
            logits = model.forward(x)
            loss = float(criterion.forward(logits, y))
            model.backward(criterion.backward())
            opt.step()
            train_seconds += time.perf_counter() - t0
            if not math.isfinite(loss):
                h.diverged = True
                break
            miss = int(np.sum(np.argmax(logits, axis=1) != y))
            wrong, seen, loss_sum = wrong + miss, seen + len(y), loss_sum + loss * len(y)
            chunk_wrong, chunk_seen = chunk_wrong + miss, chunk_seen + len(y)
            if b in chunk_ends:
                h.chunk_error.append(chunk_wrong / chunk_seen)
                h.chunk_seconds.append(train_seconds)
                h.chunk_epoch.append(epoch + (b + 1) / len(batches))
                chunk_wrong = chunk_seen = 0
        if h.diverged:
            break
        h.train_error.append(wrong / seen)
        h.loss.append(loss_sum / seen)
        h.seconds.append(train_seconds)
        h.train_eval_error.append(error_rate(predict_proba(model, x_train_eval), y_train_eval))
        h.test_error.append(error_rate(predict_proba(model, x_test), data.test.labels))
        if log:
            log(f"    epoch {epoch + 1}/{epochs}: loss {h.loss[-1]:.3f}  train err {h.train_error[-1]:.3f}  "
                f"test err {h.test_error[-1]:.3f}  ({train_seconds:.0f} s)")
    model.eval()
    return h


# ---------------------------------------------------------------------------
# Statistics over seeds
# ---------------------------------------------------------------------------
def summarize(values) -> dict:
    """mean, sample std (0 for one value), min, max and n of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"),
                "max": float("nan"), "n": 0, "n_total": len(list(values))}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(v.size), "n_total": len(values)}


def fmt(stat: dict, percent: bool = False, digits: int = 2) -> str:
    """'mean ± std' (or 'n/a', and '(k of n)' when some seeds had no value)."""
    if stat["n"] == 0:
        return "not reached"
    scale, unit = (100.0, "%") if percent else (1.0, "")
    text = f"{stat['mean'] * scale:.{digits}f}{unit}"
    if stat["n"] > 1 or stat["n_total"] > 1:
        text += f" ± {stat['std'] * scale:.{digits}f}"
    if stat["n"] < stat["n_total"]:
        text += f" ({stat['n']} of {stat['n_total']} seeds)"
    return text


# ---------------------------------------------------------------------------
# Results and the run folder
# ---------------------------------------------------------------------------
@dataclass
class Table:
    title: str
    columns: list
    rows: list                     # lists of str, already formatted

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Result:
    """What ``run`` returns: tables and figures for results.md, ``data`` for results.json."""

    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)   # (file name in the run folder, caption)
    notes: list = field(default_factory=list)
    data: dict = field(default_factory=dict)


def _default_mode(tmp) -> None:
    """Give a mkstemp file (created 0600) the mode a plain open() would: 0666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def write_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and os.replace (never half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        _default_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_figure(fig, path, palette: bool = False) -> None:
    """Save a matplotlib figure atomically as PNG (100 dpi) and close it.

    ``palette=True`` stores it with a 256-colour palette (image grids: about 3x smaller).
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.stem, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
        if palette:
            from PIL import Image

            Image.open(tmp).convert("RGB").quantize(256).save(tmp, format="PNG", optimize=True)
        _default_mode(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _load():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def render_markdown(module, settings: Settings, data_label: str, result: Result, meta: dict) -> str:
    lines = [f"# {module.NAME}: {module.TITLE}", "", f"**Paper:** {module.PAPER}", "",
             f"**Setup:** {data_label}; {settings.describe()}.", "",
             f"**Wall time:** {meta['wall_seconds']:.0f} s on {meta['machine']}; "
             f"load average {meta['load_before'][0]:.2f} before, {meta['load_after'][0]:.2f} after "
             "(a shared machine: other processes slow the wall times).", "",
             f"**Command:** `{meta['command']}`", ""]
    for t in result.tables:
        lines += [t.markdown(), ""]
    for name, caption in result.figures:
        lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    if result.notes:
        lines += ["**Notes**", ""] + [f"- {n}" for n in result.notes] + [""]
    return "\n".join(lines)


def run_experiment(module, settings: Settings, out_dir, command: str = "", log=print) -> Path:
    """Run ``module`` with ``settings`` into a new folder under ``out_dir``; returns the folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(out_dir) / f"{module.NAME}{'-quick' if settings.quick else ''}-{stamp}"
    k = 1
    while folder.exists():
        k += 1
        folder = Path(out_dir) / f"{module.NAME}{'-quick' if settings.quick else ''}-{stamp}-{k}"
    folder.mkdir(parents=True)
    load_before = _load()
    t0 = time.perf_counter()
    log(f"{module.NAME}: {settings.describe()} -> {folder}")
    try:
        result = module.run(settings, folder, log=log)
    except BaseException:
        if not any(folder.iterdir()):      # failed before writing anything: leave no empty folder
            folder.rmdir()
        raise
    meta = {"wall_seconds": time.perf_counter() - t0, "load_before": load_before,
            "load_after": _load(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}",
            "command": command, "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    data_label = result.data.get("data_label", settings.dataset)
    payload = {"experiment": module.NAME, "title": module.TITLE, "paper": module.PAPER,
               "settings": asdict(settings), "meta": meta,
               "tables": [asdict(t) for t in result.tables], "figures": result.figures,
               "notes": result.notes, "data": result.data}
    write_atomic(folder / "results.json", json.dumps(payload, indent=1, default=_json_default))
    write_atomic(folder / "results.md", render_markdown(module, settings, data_label, result, meta))
    log(f"{module.NAME}: done in {meta['wall_seconds']:.0f} s; results in {folder}/results.md")
    return folder


def resolve_settings(module, quick: bool = False, **overrides) -> Settings:
    """The module's FULL (or QUICK) settings with the non-None command-line overrides applied."""
    base = module.QUICK if quick else module.FULL
    changes = {k: v for k, v in overrides.items() if v is not None}
    if quick and "dataset" in changes:
        # quick mode always uses synthetic data of the dataset's image shape
        shape = (3, 32, 32) if changes.pop("dataset") == "cifar10" else (1, 28, 28)
        changes["extra"] = {**base.extra, "image_shape": shape}
    return replace(base, **changes)


def plot_curves(curves: dict, ylabel: str, path, xlabel: str = "epoch", title: str = "", hline=None):
    """Line plot of {label: (x, y)} (y as fractions, drawn in %), saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, (x, y, *style) in curves.items():
        ax.plot(x, 100 * np.asarray(y, dtype=float), *(style or []), label=label)
    if hline is not None:
        ax.axhline(100 * hline, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def compare_variants(variants: dict, settings: Settings, data: Data, log, pipe=None, lr=None,
                     models_out: dict | None = None) -> dict:
    """Train every variant {label: model kwargs} over the seeds; returns {label: [History]}.

    Every variant sees the same data order and augmentation draws for a given seed.
    ``models_out``, if given, receives {label: [trained model per seed]}.
    """
    pipe = pipe or make_pipeline(data)
    in_shape = pipe.output_shape(data.image_shape)
    runs = {}
    for label, kwargs in variants.items():
        runs[label] = []
        for seed in range(settings.seeds):
            log(f"  {label}, seed {seed}")
            kw = dict(width=settings.width, fc=settings.fc)
            kw.update(kwargs)
            model = small_alexnet(in_shape, data.num_classes, seed=seed, **kw)
            runs[label].append(train_classifier(
                model, data, pipe, epochs=settings.epochs, lr=lr or settings.lr, seed=seed,
                batch_size=settings.batch_size, weight_decay=settings.weight_decay, log=log))
            if models_out is not None:
                models_out.setdefault(label, []).append(model)
    return runs


def standard_table(runs: dict, title: str) -> Table:
    """Test error, train error (eval mode), gap and training seconds, mean ± std over seeds."""
    rows = []
    for label, hs in runs.items():
        rows.append([label,
                     fmt(summarize([h.final_test_error for h in hs]), percent=True),
                     fmt(summarize([h.train_eval_error[-1] if h.train_eval_error else float("nan")
                                    for h in hs]), percent=True),
                     fmt(summarize([h.final_gap for h in hs]), percent=True),
                     fmt(summarize([h.seconds[-1] if h.seconds else float("nan") for h in hs]), digits=0),
                     sum(h.diverged for h in hs)])
    return Table(title, ["variant", "test error", "train error", "gap (test - train)",
                         "train seconds", "diverged"], rows)


def histories_json(runs: dict) -> dict:
    return {label: [asdict(h) for h in hs] for label, hs in runs.items()}


def plot_train_test_error(runs: dict, path, title: str):
    """Mean test error (solid) and eval-mode training error (dotted) per epoch, one colour per variant."""
    curves = {}
    for i, label in enumerate(runs):
        color = f"C{i}"
        ep, test = mean_curve(runs[label], "test_error")
        _, train = mean_curve(runs[label], "train_eval_error")
        curves[f"{label}: test"] = (ep, test, color + "-")
        curves[f"{label}: train"] = (ep, train, color + ":")
    plot_curves(curves, "error (%)", path, title=title)


def mean_curve(histories, attr: str):
    """Element-wise mean over seeds of a per-epoch list (truncated to the shortest run)."""
    seqs = [getattr(h, attr) for h in histories if getattr(h, attr)]
    if not seqs:
        return np.arange(0), np.zeros(0)
    n = min(len(s) for s in seqs)
    return np.arange(1, n + 1), np.mean([s[:n] for s in seqs], axis=0)
