"""What every experiment shares: data, the small AlexNet, seeds, tables, the run folder.

Training goes through the one training loop, :class:`tinyalex.train.Trainer`
(in memory: :func:`train`); this module adds only what the experiments measure
on top of it.

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
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data import ArrayDataset, Subset
from ..fast import implementations
from ..fileio import atomic_write_text
from ..layers import BatchNorm2d, Dropout, Flatten, Sequential, Tanh
from ..layers.conv import conv_output_size
from ..train import History, NonFiniteLossError, TrainConfig, Trainer, evaluate
from ..train.trainer import load_data
from ..viz import plot_lines

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


def load_subsets(s: Settings) -> Data:
    """The class-balanced train/test subsets the settings ask for (synthetic data in quick mode).

    The files are read by the training code's :func:`tinyalex.train.trainer.load_data`
    (no validation split). ``cifar10`` reads either the pickled batches or,
    when ``--data-dir`` holds ``train/<class>/`` and ``test/<class>/`` folders
    of images, that folder (e.g. the JPEG copy), decoding only the first
    ``train_size / 10`` files of each class folder.
    """
    if s.dataset not in DATASETS + ("synthetic",):
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {s.dataset!r}")
    dataset, kwargs = s.dataset, {"download": False}
    label = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}.get(s.dataset)
    if s.dataset == "synthetic":
        shape = tuple(s.extra.get("image_shape", (1, 28, 28)))
        kwargs = {"image_shape": shape, "n": max(s.train_size, s.test_size)}
        label = f"synthetic {shape}"
    elif s.dataset == "cifar10" and _is_image_folder(s.data_dir):
        dataset, label = "imagefolder", "CIFAR-10 (JPEG copy)"
        kwargs = {"limit_per_class": math.ceil(max(s.train_size, s.test_size) / 10), "in_memory": True}
    cfg = TrainConfig(dataset=dataset, data_dir=s.data_dir, val_fraction=0.0, schedule="none", seed=0)
    train, _, test = load_data(cfg, **kwargs)
    return Data(balanced_subset(train, s.train_size, seed=0), balanced_subset(test, s.test_size, seed=1), label)


# ---------------------------------------------------------------------------
# The small AlexNet
# ---------------------------------------------------------------------------
def small_alexnet(in_shape, num_classes: int, *, activation: str = "relu", lrn: bool = False,
                  pool=(3, 2), dropout: float = 0.0, width: int = 32, fc: int = 256,
                  towers: int = 1, last_conv: int | None = None, batchnorm: bool = False, seed: int = 0,
                  dtype=np.float32) -> Sequential:
    """The scaled-down AlexNet described in the module docstring.

    in_shape (C, H, W); ``pool`` = (window z, stride s): (3, 2) is overlapping
    pooling, (2, 2) the traditional kind. ``towers=2`` splits conv2 into two
    groups (the two-GPU net on one device: conv1's kernels [0, w/2) are tower 1's).
    ``last_conv`` sets conv3's kernels (default 2*width). ``batchnorm`` puts a
    BatchNorm2d after each convolution, before its nonlinearity (Ioffe and Szegedy's place).
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

    def bn(name, channels):
        return [(name, BatchNorm2d(channels, dtype=dtype))] if batchnorm else []

    layers += [("conv1", L.Conv2D(c, width, 5, padding=2, rng=rng, dtype=dtype)), *bn("bn1", width), ("act1", act())]
    if lrn:
        layers.append(("norm1", L.LRN(dtype=dtype)))
    layers.append(("pool1", L.MaxPool2D(z, s)))
    h, w = size_after(h, z, s, 0), size_after(w, z, s, 0)
    layers += [("conv2", L.Conv2D(width, 2 * width, 3, padding=1, groups=towers, rng=rng, dtype=dtype)),
               *bn("bn2", 2 * width), ("act2", act())]
    if lrn:
        layers.append(("norm2", L.LRN(dtype=dtype)))
    layers.append(("pool2", L.MaxPool2D(z, s)))
    h, w = size_after(h, z, s, 0), size_after(w, z, s, 0)
    layers += [("conv3", L.Conv2D(2 * width, last_conv, 3, padding=1, rng=rng, dtype=dtype)),
               *bn("bn3", last_conv), ("act3", act()), ("pool3", L.MaxPool2D(z, s))]
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
    net = Sequential(*layers, dtype=dtype)
    net.input_shape = tuple(in_shape)
    return net


# ---------------------------------------------------------------------------
# Training: the one loop of tinyalex.train, in memory
# ---------------------------------------------------------------------------
def train_config(s: Settings, seed: int, lr: float | None = None, **overrides) -> TrainConfig:
    """The training run of an experiment: the paper's SGD rule at a constant learning rate.

    No validation split and no schedule; the pipeline subtracts the mean image
    and divides by the per-channel std, with no augmentation unless
    ``overrides`` ask for it (crop, flip, pca: only the augmentation experiment).
    """
    cfg = dict(dataset=s.dataset, epochs=s.epochs, batch_size=s.batch_size, lr=lr or s.lr, momentum=0.9,
               weight_decay=s.weight_decay, schedule="none", val_fraction=0.0, seed=seed,
               crop=0, pad=0, flip=False, pca=False, progress=False, plots=False)
    cfg.update(overrides)
    return TrainConfig(**cfg)


def train(model, data: Data, cfg: TrainConfig, pipeline=None, windows: int = 4,
          train_eval_size: int = 1000, log=print) -> Trainer:
    """Train ``model`` with :class:`tinyalex.train.Trainer` in memory; returns the trainer
    (``.history``, ``.model``, ``.pipeline``: the fitted preprocessing).

    The test subset is the trainer's validation set, so every epoch's row has
    the test accuracy (``val_top1``); nothing is chosen on it (constant
    learning rate, no early stop). The rows gain two measurements:
    ``train_eval_top1``, eval-mode accuracy on ``train_eval_size`` fixed
    training images (what the train/test gap is measured with), and
    ``windows``, the training-mode error and cumulative training seconds over
    each of ``windows`` equal slices of the epoch (Figure 1's curve is read
    from these). A diverging loss ends the run with ``status == "diverged"``.
    """
    n = len(data.train)
    probe = Subset(data.train, np.sort(np.random.default_rng([cfg.seed, 7]).permutation(n)[:train_eval_size]))
    current = []                                   # this epoch's windows
    seen = {"correct": 0, "seen": 0}                # the epoch's counts at the last window end

    def on_step(trainer):
        nb, b = len(trainer.loader), trainer.loader.batch
        if b not in {round(nb * (k + 1) / windows) for k in range(windows)}:
            return
        p = trainer.partial
        count = p["seen"] - seen["seen"]
        current.append({"epoch": trainer.loader.epoch + b / nb,
                        "train_error": 1 - (p["correct"] - seen["correct"]) / count,
                        "seconds": trainer.elapsed + p["time"]})
        seen.update(correct=p["correct"], seen=p["seen"])

    def on_epoch(trainer, row):
        row["train_eval_top1"] = evaluate(trainer.model, probe, trainer.pipeline, trainer.eval_batch_size)["top1"]
        row["windows"] = list(current)
        current.clear()
        seen.update(correct=0, seen=0)

    trainer = Trainer(cfg, model=model, data=(data.train, data.test, None), pipeline=pipeline, save=False,
                      log=lambda msg: log("    " + msg))
    try:
        trainer.run(on_step=on_step, on_epoch=on_epoch, test=False)
    except NonFiniteLossError:
        pass                                       # trainer.history.status == "diverged"
    trainer.model.eval()
    return trainer


def errors(h: History, key: str = "val_top1") -> list:
    """Per-epoch error 1 - accuracy: ``val_top1`` the test error, ``train_top1`` the
    running training error, ``train_eval_top1`` the eval-mode training error."""
    return [1.0 - r[key] for r in h.epochs]


def final_test_error(h: History) -> float:
    return errors(h)[-1] if h.epochs else float("nan")


def final_gap(h: History) -> float:
    """test error - training error (eval mode) at the end: how much the net overfits."""
    if not h.epochs:
        return float("nan")
    return errors(h)[-1] - errors(h, "train_eval_top1")[-1]


def windows(h: History) -> list:
    """Every window of every epoch: dicts with epoch (fractional), train_error, seconds."""
    return [w for r in h.epochs for w in r["windows"]]


def time_to_train_error(h: History, threshold: float):
    """(epochs, seconds) when the window training error first reaches <= threshold, else (nan, nan)."""
    for w in windows(h):
        if w["train_error"] <= threshold:
            return w["epoch"], w["seconds"]
    return float("nan"), float("nan")


def epochs_to_near_best_test(h: History, tolerance: float = 0.01) -> float:
    """First epoch whose test error is within ``tolerance`` of the run's best test error."""
    if not h.epochs:
        return float("nan")
    best = min(errors(h))
    return float(next(i + 1 for i, e in enumerate(errors(h)) if e <= best + tolerance))


def history_json(h: History) -> dict:
    """One run's curves for results.json: per epoch train_error, train_eval_error,
    test_error, loss, seconds; per window chunk_error, chunk_seconds, chunk_epoch."""
    w = windows(h)
    return {"train_error": errors(h, "train_top1"), "train_eval_error": errors(h, "train_eval_top1"),
            "test_error": errors(h), "loss": h.column("train_loss"), "seconds": h.column("elapsed"),
            "chunk_error": [x["train_error"] for x in w], "chunk_seconds": [x["seconds"] for x in w],
            "chunk_epoch": [x["epoch"] for x in w],
            "iterations_per_epoch": h.epochs[0]["step"] if h.epochs else 0, "diverged": h.status == "diverged"}


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


def describe(module, settings: Settings) -> str:
    """The run's size in words: the module's own ``describe(settings)`` if it has one (no training), else the settings'."""
    return module.describe(settings) if hasattr(module, "describe") else settings.describe()


def render_markdown(module, settings: Settings, data_label: str, result: Result, meta: dict) -> str:
    lines = [f"# {module.NAME}: {module.TITLE}", "", f"**Paper:** {module.PAPER}", "",
             f"**Setup:** {data_label}; {describe(module, settings)}.", "",
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
    log(f"{module.NAME}: {describe(module, settings)} -> {folder}")
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
    atomic_write_text(folder / "results.json", json.dumps(payload, indent=1, default=_json_default))
    atomic_write_text(folder / "results.md", render_markdown(module, settings, data_label, result, meta))
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


def compare_variants(variants: dict, settings: Settings, data: Data, log, lr=None,
                     models_out: dict | None = None) -> dict:
    """Train every variant {label: model kwargs} over the seeds; returns {label: [History]}.

    Every variant sees the same data order and augmentation draws for a given seed.
    ``models_out``, if given, receives {label: [Trainer per seed]} (trained model and its pipeline).
    """
    runs = {}
    for label, kwargs in variants.items():
        runs[label] = []
        for seed in range(settings.seeds):
            log(f"  {label}, seed {seed}")
            kw = dict(width=settings.width, fc=settings.fc)
            kw.update(kwargs)
            model = small_alexnet(data.image_shape, data.num_classes, seed=seed, **kw)
            trainer = train(model, data, train_config(settings, seed, lr), log=log)
            runs[label].append(trainer.history)
            if models_out is not None:
                models_out.setdefault(label, []).append(trainer)
    return runs


def standard_table(runs: dict, title: str) -> Table:
    """Test error, train error (eval mode), gap and training seconds, mean ± std over seeds."""
    rows = []
    for label, hs in runs.items():
        rows.append([label,
                     fmt(summarize([final_test_error(h) for h in hs]), percent=True),
                     fmt(summarize([errors(h, "train_eval_top1")[-1] if h.epochs else float("nan")
                                    for h in hs]), percent=True),
                     fmt(summarize([final_gap(h) for h in hs]), percent=True),
                     fmt(summarize([h.epochs[-1]["elapsed"] if h.epochs else float("nan") for h in hs]), digits=0),
                     sum(h.status == "diverged" for h in hs)])
    return Table(title, ["variant", "test error", "train error", "gap (test - train)",
                         "train seconds", "diverged"], rows)


def histories_json(runs: dict) -> dict:
    return {label: [history_json(h) for h in hs] for label, hs in runs.items()}


def plot_train_test_error(runs: dict, path, title: str):
    """Mean test error (solid) and eval-mode training error (dotted) per epoch, one colour per variant."""
    curves = {}
    for i, label in enumerate(runs):
        color = f"C{i}"
        ep, test = mean_curve(runs[label], "val_top1")
        _, train_err = mean_curve(runs[label], "train_eval_top1")
        curves[f"{label}: test"] = (ep, test, color + "-")
        curves[f"{label}: train"] = (ep, train_err, color + ":")
    plot_lines(curves, "error (%)", path, title=title)


def plot_test_error(runs: dict, path, title: str):
    """Mean test error per epoch, one line per variant (solid, dashed, ...)."""
    curves = {}
    for label, style in zip(runs, ("-", "--", "-.", ":")):
        ep, err = mean_curve(runs[label])
        curves[label] = (ep, err, style)
    plot_lines(curves, "test error (%)", path, title=title)


def mean_curve(histories, key: str = "val_top1"):
    """Element-wise mean over seeds of a per-epoch error (see :func:`errors`; truncated to the shortest run)."""
    seqs = [errors(h, key) for h in histories if h.epochs]
    if not seqs:
        return np.arange(0), np.zeros(0)
    n = min(len(s) for s in seqs)
    return np.arange(1, n + 1), np.mean([s[:n] for s in seqs], axis=0)
