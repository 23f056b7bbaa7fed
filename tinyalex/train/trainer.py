"""The training loop: data, model, the paper's SGD and schedule, metrics, checkpoints.

One function does it all, from Python or from ``python -m tinyalex train``::

    from tinyalex.train import TrainConfig, fit
    history = fit(TrainConfig(dataset="fashion-mnist", epochs=10, out="runs/fm"))
    history.epochs[-1]["val_top1"], history.test["top1"]

What one epoch does
-------------------
1. ``model.train()``; for every batch of the DataLoader (order and
   augmentation derived from (seed, epoch, batch), prepared ahead in a
   background thread: tinyalex.data.prefetch): the batch is moved
   explicitly to the model's input device, forward, softmax
   cross-entropy, backward, one SGD step (the paper's rule, sgd.py); the
   loss and the correct count are added to running sums on the device,
   read by the host every ``Trainer.read_every`` steps on a GPU (so a step
   never waits for the GPU) and every step on NumPy; a non-finite loss
   stops training at that read.
2. ``model.eval()``; validation loss, top-1 and top-5 (the softmax averaged
   over 10 or 5 crops if enabled).
3. The schedule sees the validation error (divide lr by 10 on a plateau).
4. One row of metrics appended to ``metrics.csv`` / ``metrics.jsonl``,
   ``curves.png`` redrawn, ``checkpoint.npz`` written atomically, and
   ``best.npz`` when the validation top-1 improved.

After the last epoch: ``model.npz`` (final weights, config, class names,
pipeline), the test set's top-1/top-5 in ``test.json`` and a confusion
matrix in ``confusion.png``.

Exact resume
------------
The shuffle, the crops, flips and PCA alphas are a function of (seed, epoch,
batch) (DataLoader). The dropout masks come from one generator per device,
seeded from the seed, made once and shared by the model's dropout layers
(re-creating a CuPy generator every batch would allocate and initialise its
cuRAND states every time); the checkpoint keeps their state. With the
loader's position, the weights, the velocities, the schedule and the
pipeline's statistics, a resumed run computes exactly what the uninterrupted
one would have, bit for bit (tests/train/test_trainer.py).
"""
from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import math
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy
from tqdm import tqdm          # console bars (tqdm.auto warns in Jupyter without ipywidgets)

from .. import backend, models
from ..data import DATASET_NAMES, DataLoader, Pipeline, Subset, load_dataset, prefetch, train_val_split
from ..data.checks import check_training_data
from ..errors import UserError
from ..fast import step_runner
from ..fileio import WriteError, atomic_write_text
from ..layers import Dropout, SoftmaxCrossEntropy
from ..layers.loss import log_softmax
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import Distributed, abort_job, rank_seed_suffix
from .runfolder import open_run_folder
from .schedule import SCHEDULES, CosineSchedule, make_schedule
from .sgd import SGD

# tinyalex.viz (matplotlib) is the one package module imported where it is used, when a run draws its
# plots: matplotlib is most of what importing the trainer would cost (measured with python -X importtime
# on the 2-core test machine: `import tinyalex.train` 0.13 s without it, 0.82 s with it), and every
# process that imports tinyalex.train pays it: each exercise-grading worker (through train.sgd), the
# tests' subprocesses, a script that only trains with plots=False.

METRIC_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1",
                  "val_top5", "epoch_time", "images_per_s", "elapsed", "wall_time")
"""Columns of metrics.csv (and keys of every metrics.jsonl row), in order."""

CHECKPOINT, BEST, FINAL = "checkpoint.npz", "best.npz", "model.npz"
EXPLODED_LOSS_FACTOR = 10
"""An epoch whose validation loss exceeds 10 x ln K (K classes; ln K is a uniform guess's) has diverged."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in the run folder as config.json).

    The defaults are a sensible Fashion-MNIST run of the small AlexNet; the
    paper's values are noted where they differ.
    """

    # -- data ------------------------------------------------------------------------
    dataset: str = "fashion-mnist"       # fashion-mnist | cifar10 | imagefolder | synthetic
    data_dir: str | None = None          # where the dataset is (default: search, see tinyalex.data)
    classes: list | None = None          # imagefolder: keep only these classes
    image_size: int | None = None        # imagefolder: resize images to this size first
    val_fraction: float = 0.1            # part of the training set held out for validation
    limit_train: int | None = None       # use only N training images (quick runs)
    limit_test: int | None = None        # use only N test images
    # -- preprocessing and augmentation (sections 2, 4.1) ------------------------------
    mean: bool = True                    # subtract the training mean image
    crop: int | None = None              # crop size; None: the model's input size; 0: no crop
    pad: int | None = None               # zero padding before random crops; None: see make_pipeline
    flip: bool | None = None             # random horizontal flips; None: on for RGB images (see make_pipeline)
    pca: bool | None = None              # PCA colour noise; None: on for RGB images
    standardize: bool = True             # divide by the per-channel std (not in the paper)
    ten_crop: bool = False               # evaluate with the 10-crop average
    five_crop: bool = False              # evaluate with the 5 crops, no mirrors (not in the paper)
    erase: float = 0.0                   # random erasing probability (not in the paper; Zhong et al. 2017)
    # -- model -----------------------------------------------------------------------
    model: str = "alexnet-small"         # alexnet | alexnet-small | alexnet-fmnist | alexnet-cifar
    width: float | None = None           # channel-width multiplier override of the model
    lrn: bool = True                     # local response normalization (section 3.3)
    lrn_convention: str = "paper"        # paper | caffe
    overlap: bool = True                 # 3/2 pooling (True) or 2/2 (False), section 3.4
    batchnorm: bool = False              # a BatchNorm2d after every conv (not in the paper; Ioffe and Szegedy 2015)
    dropout: float = 0.0                 # dropout probability of fc6, fc7 (0 disables; the paper: 0.5)
    dropout_mode: str = "inverted"       # inverted | paper
    activation: str = "relu"             # relu | tanh
    init: str | None = None              # paper | released | he; None: the model's default
    dtype: str = "float32"
    # -- learning (section 5) ----------------------------------------------------------
    # The defaults are a 10-minute recipe (90% on Fashion-MNIST on 2 CPU cores, docs/training.md);
    # the paper's run: lr 0.01, dropout 0.5, schedule "plateau", flips, 90 epochs.
    epochs: int = 7
    batch_size: int = 128
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0         # targets (1 - e) onehot + e / K (not in the paper; Szegedy et al. 2016)
    schedule: str = "step"               # plateau (the paper) | step | time | cosine | none
    patience: int = 2                    # plateau: epochs without improvement before lr / 10
    max_reductions: int = 3              # at most this many reductions (3 in the paper)
    step_epochs: int | list = field(default_factory=lambda: [5, 6])   # step: lr/10 after these epochs, or every N
    time_limit: float | None = None      # minutes of training (wall clock incl. validation); stops mid-epoch
    # -- runtime ---------------------------------------------------------------------
    backend: str = "numpy"               # numpy | cupy | standin
    devices: list = field(default_factory=lambda: [0])
    seed: int = 0
    distributed: bool = False            # data parallel over MPI: mpiexec -n P python -m tinyalex train --distributed
    out: str | None = None               # run folder; default runs/<dataset>-<model>-<time>
    progress: bool = True                # tqdm progress bars (off automatically when not a TTY)
    eval_batch_size: int | None = None   # default: 2 * batch_size
    plots: bool = True                   # write curves.png every epoch and confusion.png at the end

    def validate(self):
        """Raise ValueError naming the bad field and the allowed values."""
        def choice(name, allowed):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {getattr(self, name)!r}")

        choice("dataset", DATASET_NAMES)
        choice("schedule", SCHEDULES)
        choice("backend", backend.BACKENDS)
        choice("dtype", ("float32", "float64"))
        choice("lrn_convention", ("paper", "caffe"))
        choice("dropout_mode", ("inverted", "paper"))
        choice("activation", ("relu", "tanh"))
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.erase <= 1.0:
            raise ValueError(f"erase must be a probability in [0, 1], got {self.erase}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.ten_crop and self.five_crop:
            raise ValueError("--ten-crop and --five-crop are two ways to test; give one of them")
        for name in ("limit_train", "limit_test"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"{name} must be >= 1 (or None for all), got {v}")
        if self.dataset != "imagefolder":
            for name, flag in (("image_size", "--image-size"), ("classes", "--classes")):
                if getattr(self, name) is not None:
                    raise ValueError(f"{flag} works only with --dataset imagefolder ({self.dataset} has fixed "
                                     f"images and classes); remove {flag}")
        if self.limit_train is not None and int(self.limit_train) < self.batch_size:
            raise ValueError(f"--limit-train {self.limit_train} is smaller than one batch (--batch-size "
                             f"{self.batch_size}); use at least {self.batch_size} images or a smaller --batch-size")
        if not self.devices or any(int(d) < 0 for d in self.devices):
            raise ValueError(f"devices must be a non-empty list of device numbers >= 0, got {self.devices}")
        if self.distributed and len(self.devices) > 1:
            raise ValueError(f"--devices {','.join(map(str, self.devices))} with --distributed: each rank uses one "
                             "GPU (its local rank's); drop --devices, or train the two towers without --distributed")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be > 0 minutes, got {self.time_limit}")
        if self.schedule == "time" and self.time_limit is None:
            raise ValueError("schedule 'time' divides the learning rate at 60% and 85% of --time-limit: "
                             "give --time-limit MINUTES")
        if self.schedule == "plateau" and self.val_fraction == 0:
            raise ValueError("schedule 'plateau' needs a validation set: set val_fraction > 0 "
                             "(--val-fraction) or use --schedule step|none")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class History:
    """What :func:`fit` returns.

    ``epochs``: one dict per finished epoch, keys :data:`METRIC_COLUMNS`;
    ``test``: {'top1', 'top5', 'loss', 'per_class'} on the test set (None if
    skipped); ``best_epoch`` / ``best_val_top1``: the epoch saved as best.npz;
    ``status``: 'completed' | 'interrupted' | 'diverged'; ``run_dir``.
    """

    run_dir: Path
    epochs: list = field(default_factory=list)
    test: dict | None = None
    best_epoch: int | None = None
    best_val_top1: float | None = None
    status: str = "running"

    def column(self, key):
        """One metric over epochs, e.g. ``history.column('val_top1')``."""
        return [row.get(key) for row in self.epochs]


# ---------------------------------------------------------------------------
# Building the pieces
# ---------------------------------------------------------------------------
def _limit(dataset, n, seed, salt):
    """A seeded random subset of n examples (all when n is None or >= len)."""
    if n is None or n >= len(dataset):
        return dataset
    idx = numpy.sort(numpy.random.default_rng([seed, salt]).permutation(len(dataset))[:n])
    return Subset(dataset, idx)


def load_data(cfg: TrainConfig, check=True, **loader_kwargs):
    """(train, val or None, test) datasets for ``cfg`` (host, uint8).

    ``check``: refuse data that cannot train a classifier and warn about a test
    split missing classes (tinyalex.data.checks); evaluate passes False.
    ``loader_kwargs`` go to ``tinyalex.data.load_dataset`` for both splits
    (e.g. ``image_shape`` of synthetic data, ``limit_per_class`` of an image folder).
    """
    kwargs = dict(loader_kwargs)
    if cfg.dataset == "imagefolder":
        kwargs.update(classes=cfg.classes, image_size=cfg.image_size)
    elif cfg.dataset == "synthetic":
        kwargs.update(seed=cfg.seed)
    full = load_dataset(cfg.dataset, root=cfg.data_dir, split="train", **kwargs)
    try:
        test = load_dataset(cfg.dataset, root=cfg.data_dir, split="test", **kwargs)
    except FileNotFoundError:
        if cfg.dataset != "imagefolder":
            raise
        test = None          # an image folder without train/ and test/: no test set
    full = _limit(full, cfg.limit_train, cfg.seed, 101)
    if cfg.val_fraction > 0:
        train, val = train_val_split(full, cfg.val_fraction, seed=cfg.seed)
    else:
        train, val = full, None
    if test is not None:
        test = _limit(test, cfg.limit_test, cfg.seed, 102)
    if check:
        for warning in check_training_data(train, test, where=cfg.data_dir or cfg.dataset):
            warnings.warn(warning, stacklevel=2)
    return train, val, test


# The model options of TrainConfig: field -> (builder keyword, flag). A model is given only the ones its
# builder takes; one it does not take, set to other than the default, is refused (e.g. --no-lrn for resnet20).
MODEL_OPTIONS = {"lrn": ("lrn", "--no-lrn"), "lrn_convention": ("lrn_convention", "--lrn-convention"),
                 "overlap": ("overlap_pool", "--no-overlap"), "batchnorm": ("batchnorm", "--batchnorm"),
                 "dropout": ("dropout", "--dropout"),
                 "dropout_mode": ("dropout_mode", "--dropout-mode"), "activation": ("activation", "--activation"),
                 "width": ("width", "--width"), "init": ("init", "--init")}


def _model_overrides(cfg: TrainConfig, input_shape):
    """Keyword arguments of tinyalex.models.build_model from the config (JSON-serialisable).

    Only the options the model takes (:func:`tinyalex.models.model_options`);
    an option it does not take, set to other than TrainConfig's default, is a
    ValueError naming the flag (AlexNet's --no-lrn means nothing to ResNet).
    """
    takes = models.model_options(cfg.model)
    kw = {"input_shape": list(input_shape), "dtype": cfg.dtype, "seed": cfg.seed}
    defaults = TrainConfig()
    refused = []
    for field_name, (keyword, flag) in MODEL_OPTIONS.items():
        value = getattr(cfg, field_name)
        if keyword in takes:
            if value is not None:
                kw[keyword] = value
        elif value != getattr(defaults, field_name):
            refused.append(flag)
    if refused:
        raise ValueError(f"{', '.join(refused)}: not an option of model {cfg.model!r} (AlexNet's); remove "
                         f"{'it' if len(refused) == 1 else 'them'} or train an alexnet model")
    return kw


def _placement(cfg: TrainConfig):
    """build_model's devices/backend arguments: one device, or two towers."""
    devices = [int(d) for d in cfg.devices]
    if len(devices) > 2:
        raise ValueError(f"--devices takes one device or two (one per tower), got {cfg.devices}")
    return {"devices": devices[0] if len(devices) == 1 else tuple(devices), "backend": cfg.backend}


def build_model(cfg: TrainConfig, num_classes: int, input_shape):
    """The model named by ``cfg.model`` (tinyalex.models.build_model) for inputs ``input_shape``."""
    return models.build_model(cfg.model, num_classes, **_model_overrides(cfg, input_shape), **_placement(cfg))


def resolve_input_shape(cfg: TrainConfig, image_shape):
    """(C, s, s) the model will take: the crop size (default: the model's own input size)."""
    c, h, w = image_shape
    if cfg.crop == 0:
        return (c, h, w)
    if cfg.crop is not None:
        return (c, int(cfg.crop), int(cfg.crop))
    size = models.default_input_shape(cfg.model)[1]
    if size > min(h, w):
        raise ValueError(f"model {cfg.model!r} takes {size}x{size} images but {cfg.dataset} has {h}x{w}; "
                         "use a model for this image size (e.g. alexnet-small, zfnet-small or resnet20-small for "
                         "28x28, alexnet-cifar, vgg11-cifar or resnet20 for 32x32), a smaller --crop, or "
                         "--image-size for image folders")
    return (c, size, size)


def model_input_shape(model):
    """(C, H, W) the model expects (``model.input_shape``)."""
    return tuple(int(v) for v in model.input_shape)


def make_pipeline(cfg: TrainConfig, image_shape, input_shape):
    """The data Pipeline whose output matches the model's input size."""
    c, h, w = image_shape
    if input_shape[0] != c:
        raise ValueError(f"the dataset has {c}-channel images but model {cfg.model!r} expects {input_shape[0]} "
                         "channels; choose the model made for this dataset (--model)")
    size = int(input_shape[1])
    if cfg.crop == 0:                          # --no-crop: the images must already fit
        crop, pad = None, 0
        if (h, w) != tuple(input_shape[1:]):
            raise ValueError(f"--no-crop: images are {h}x{w} but the model expects {size}x{size}; "
                             "allow cropping or pick a matching --model")
    else:
        crop = size
        # When the crop is the whole image, pad first so that random crops still shift it: by H//8 for
        # RGB images, by 1 pixel for grey ones (Fashion-MNIST's are centred and size-normalised; in a
        # 10-minute run 1 pixel beat 3 by 0.5-1.5 points of validation top-1, docs/training.md).
        if cfg.pad is not None:
            pad = cfg.pad
        elif crop < min(h, w):
            pad = 0
        else:
            pad = max(1, h // 8) if c == 3 else 1
        if crop > min(h, w) + 2 * pad:
            raise ValueError(f"the model needs {size}x{size} inputs but the images are {h}x{w}; "
                             "use a model for this image size or --image-size (image folders)")
    pca = (c == 3) if cfg.pca is None else bool(cfg.pca)
    # Flips by default only for RGB (natural) images: Fashion-MNIST's all face one way (shoes
    # point left), and on it flips cost accuracy in short runs (docs/training.md, "default run").
    flip = (c == 3) if cfg.flip is None else bool(cfg.flip)
    if pca and c != 3:
        raise ValueError(f"--pca needs RGB images; {cfg.dataset} has {c} channel(s)")
    return Pipeline(mean=cfg.mean, crop=crop, flip=flip, pca=pca, ten_crop=cfg.ten_crop,
                    five_crop=cfg.five_crop, pad=pad, standardize=cfg.standardize, erase=cfg.erase)


def _model_config(model):
    cfg = getattr(model, "config", None)
    cfg = cfg() if callable(cfg) else cfg
    return json.loads(json.dumps(cfg, default=str)) if cfg else {}


def input_device(model):
    """(device, backend name) where the model wants its input."""
    dev = getattr(model, "input_device", None)
    dev = dev() if callable(dev) else dev
    first = next(iter(model.named_parameters()))[1]
    if dev is None:
        dev = backend.device_of(first)
    return dev, backend.backend_of(first)


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------
def _forward_host(model, x, dev, bname):
    """Forward a host batch on the model's device; logits back on the host (float64)."""
    xd = backend.to_device(numpy.ascontiguousarray(x, dtype=model_dtype(model)), dev, bname)
    with backend.device(dev):
        out = model.forward(xd)
    return numpy.asarray(backend.to_host(out), dtype=numpy.float64)


def model_dtype(model):
    return next(iter(model.named_parameters()))[1].dtype


def views_label(views):
    """' (10-crop)', ' (5-crop)' or '' (the centre crop), for messages."""
    return f" ({views}-crop)" if views > 1 else ""


def predict_proba(model, x_uint8, pipeline, batch_size=256, views=None):
    """Softmax probabilities (N, K) float64 for uint8 images (N, C, H, W).

    ``views`` (default: ``pipeline.test_views``): 1, the centre crop; 10, the
    softmax averaged over the paper's 10 views; 5, over the 5 crops without
    their mirrors (``Pipeline.eval_views``).
    """
    views = pipeline.test_views if views is None else views
    model.eval()
    dev, bname = input_device(model)
    out = []
    for i in range(0, len(x_uint8), batch_size):
        xb = x_uint8[i:i + batch_size]
        if views == 1:
            out.append(numpy.exp(log_softmax(_forward_host(model, pipeline.eval_transform(xb), dev, bname))))
        else:
            probs = numpy.stack([numpy.exp(log_softmax(_forward_host(model, v, dev, bname)))
                                 for v in pipeline.eval_views(xb, views)])    # (views, n, K)
            out.append(probs.mean(axis=0))
    return numpy.concatenate(out)


def evaluate(model, dataset, pipeline, batch_size=256, views=None, progress=False, desc="eval",
             check_stop=None):
    """Loss, top-1, top-5 and per-class accuracy of ``model`` on ``dataset``.

    ``views``: as in ``predict_proba`` (default: the pipeline's).
    Returns a dict: loss (mean cross-entropy of the (averaged) softmax),
    top1, top5 (fractions), per_class (list; None for a class with no image
    in ``dataset``), predictions (N,), labels (N,). ``check_stop()`` is
    called between batches (it raises to stop, see _StopSignals).
    """
    labels_all, probs_all = [], []
    n = len(dataset)
    bar = tqdm(total=n, desc=desc, unit="img", leave=False, disable=not progress)
    for i in range(0, n, batch_size):
        xb, yb = dataset.get_batch(numpy.arange(i, min(n, i + batch_size)))
        probs_all.append(predict_proba(model, xb, pipeline, batch_size, views))
        labels_all.append(numpy.asarray(yb, dtype=numpy.int64))
        bar.update(len(yb))
        if check_stop is not None:
            check_stop()
    bar.close()
    probs, labels = numpy.concatenate(probs_all), numpy.concatenate(labels_all)
    k = min(5, probs.shape[1])
    topk = numpy.argsort(-probs, axis=1, kind="stable")[:, :k]
    pred = topk[:, 0]
    num_classes = probs.shape[1]
    per_class = [float((pred[labels == c] == c).mean()) if (labels == c).any() else None
                 for c in range(num_classes)]
    p_true = probs[numpy.arange(len(labels)), labels]
    return {
        "loss": float(-numpy.log(numpy.maximum(p_true, 1e-30)).mean()),
        "top1": float((pred == labels).mean()),
        "top5": float((topk == labels[:, None]).any(axis=1).mean()),
        "per_class": per_class,
        "predictions": pred,
        "labels": labels,
        "n": int(len(labels)),
    }


# ---------------------------------------------------------------------------
# Run-folder files
# ---------------------------------------------------------------------------
def write_metrics(run_dir, rows):
    """(Re)write metrics.csv and metrics.jsonl atomically from all rows so far."""
    run_dir = Path(run_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def read_metrics(run_dir):
    """The rows of a run's metrics.jsonl (list of dicts)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}: is it a tinyalex run folder?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_model_file(path, model, meta_extra, pipeline):
    """model.npz / best.npz: the models' weights file (tinyalex.models.io) + what using them needs (no optimizer)."""
    meta = dict(meta_extra, kind="model")
    models.save_npz(path, model.state_dict(), meta.pop("model_config") or None, meta,
                    extras={"pipeline": pipeline.state_dict()})


def resolve_model_file(run_or_model):
    """A run folder -> its model.npz (or best.npz, or checkpoint.npz); a file -> itself."""
    p = Path(run_or_model)
    if p.is_dir():
        for name in (FINAL, BEST, CHECKPOINT):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"{p} holds no {FINAL}, {BEST} or {CHECKPOINT}: is it a tinyalex run folder?")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such run folder or model file")
    return p


def load_trained(run_or_model):
    """(model, pipeline, classes, meta) from a run folder or a model/checkpoint file."""
    f = models.read_npz(resolve_model_file(run_or_model))     # model.npz, best.npz or checkpoint.npz
    model = models.model_from_weights(f, backend="numpy", devices=None)
    pipeline = Pipeline.from_state_dict(f.extras.get("pipeline", {}))
    return model.eval(), pipeline, list(f.meta["classes"]), dict(f.meta, model_config=f.config)


# ---------------------------------------------------------------------------
# Ctrl-C and SIGTERM: finish the step, save, stop
# ---------------------------------------------------------------------------
class StopRequested(KeyboardInterrupt):
    """Training stopped on a signal (Ctrl-C = SIGINT, or SIGTERM); ``signum`` says which."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class _StopSignals:
    """For a whole run (training, validation, checkpoints, test pass, plots), the first
    Ctrl-C or SIGTERM only sets ``requested``; the loops look at it between batches
    and stop at a point where the state is consistent. A second one raises at once.

    Why a flag and not an exception: an exception raised by a signal handler lands
    wherever the main thread is, for instance inside ``Future.result()`` while the
    CPU thread pool (tinyalex/layers/fast.py, ``in_chunks``) works on a batch, between
    taking a lock and the ``with`` block that would release it. A worker thread then
    waits forever for that lock, and Python, which joins the pool's threads at exit,
    never exits: the "interrupted", then hang, seen once after a Ctrl-C in the test
    pass (which ran without this handler). With the flag no exception is injected
    there; after a second signal the command line ends the process with
    ``os._exit`` (tinyalex/cli.py) so a stuck worker cannot keep it alive.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, saves=True):
        self.saves = saves            # False: an in-memory run, nothing to save
        self.requested = None         # first signal's number: stop cleanly at the next safe point
        self.forced = False           # second signal: stopped mid-step, state may be inconsistent
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            self.forced = True
            raise StopRequested(signum)
        self.requested = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        what = " and saving a checkpoint" if self.saves else ""
        print(f"\n{name}: stopping at the next safe point{what} ({name} again to abort)",
              file=sys.stderr, flush=True)

    def check(self):
        """Raise StopRequested if a signal asked to stop (call between batches)."""
        if self.requested:
            raise StopRequested(self.requested)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------
def _dropout_seed(seed, *rank):
    """The seed of the dropout generators: derived from the run's seed (and the rank, with several),
    apart from the data's streams."""
    return int(numpy.random.SeedSequence([seed, 2, *rank]).generate_state(1)[0])


def _default_out(cfg):
    return str(Path("runs") / f"{cfg.dataset}-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}")


def _print(*args):
    print(*args, flush=True)      # one line per epoch, visible at once even when piped to a file


class Trainer:
    """Holds the pieces of a run; :meth:`run` trains. Most users call :func:`fit`.

    By default everything comes from the config: the data (:func:`load_data`),
    the model (:func:`build_model`) and the pipeline (:func:`make_pipeline`,
    fitted on the training part). Any of them can be handed in ready instead:

    model : a model object (it needs ``input_shape`` (C, H, W), or a ``pipeline``).
    data : (train, val or None, test or None) datasets (containers.py interface).
    pipeline : a fitted Pipeline (or an object with its ``train_transform``,
        ``eval_transform``, ``test_views``, ``config`` and ``state_dict``), used as is.
    save : False trains in memory: no run folder, no files (metrics, plots,
        checkpoints, weights), so no resume; the History is the whole result
        (the experiments train this way).
    """

    def __init__(self, cfg: TrainConfig, resume=None, model=None, log=_print, overwrite=None, overrides=None, *,
                 data=None, pipeline=None, save=True):
        self.log = log
        self.resume_from = None
        self.save = bool(save)
        ck = None
        if resume is not None and not self.save:
            raise ValueError("resume needs the run folder's checkpoint: it cannot be combined with save=False")
        if resume is not None:
            ck = load_checkpoint(Path(resume) / CHECKPOINT if Path(resume).is_dir() else resume)
            if ck.meta.get("kind") != "checkpoint":
                raise UserError(f"--resume {resume}: {ck.path} is a model file, not a training checkpoint; "
                                "resume from the run folder")
            saved = TrainConfig.from_dict(ck.meta["train_config"])
            if cfg is not None:   # only these may change on resume
                saved.epochs, saved.progress = cfg.epochs, cfg.progress
            for key, value in (overrides or {}).items():
                setattr(saved, key, value)
            saved.out = str(Path(ck.path).parent)
            cfg = saved
            self.resume_from = ck.path
        cfg = cfg or TrainConfig()
        cfg.validate()
        if cfg.out is None and self.save:
            cfg.out = _default_out(cfg)
        self.cfg = cfg
        self.run_dir = Path(cfg.out) if self.save else None
        # data parallel: every rank runs this same code; rank 0 alone writes the run folder and logs
        self.dist = Distributed.launched(cfg.batch_size) if cfg.distributed else None
        self.is_root = self.dist is None or self.dist.is_root
        self.writes = self.save and self.is_root
        if not self.is_root:
            self.log = lambda *a: None
        # the folder is this run's alone from here on (checked, locked; released at the end of run())
        self.folder = None
        if self.writes:
            self.folder = open_run_folder(self.run_dir, resume=ck is not None, overwrite=overwrite,
                                          checkpoint_run_id=ck.meta.get("run_id") if ck is not None else None)
            if self.folder.replaced:
                self.log(f"{self.run_dir}: replaced the files of the run that was there")
            if self.folder.lock.stale:
                self.log(f"{self.run_dir}: took over the lock left by process {self.folder.lock.stale}, "
                         "which is no longer running")
        try:
            self._build(cfg, ck, model, overrides or {}, data, pipeline)
        except BaseException:
            if self.folder is not None:
                if ck is None:
                    self.folder.abandon()        # a new run that never started: leave the folder as it was
                else:
                    self.folder.close()
            raise

    def _build(self, cfg, ck, model, overrides, data, pipeline):
        if self.dist is not None and cfg.backend in ("cupy", "standin"):
            cfg.devices = [self.dist.local_rank()]      # one device per rank: its local rank's GPU
        backend.set_backend(cfg.backend, int(cfg.devices[0]))
        backend.check_devices(cfg.devices, cfg.backend)     # e.g. --devices 0,1 on a one-GPU machine

        # data
        self.train_set, self.val_set, self.test_set = load_data(cfg) if data is None else data
        self.classes = list(self.train_set.classes)
        image_shape = tuple(self.train_set.image_shape)

        # model
        self.model_given = model is not None
        if model is None:
            model = build_model(cfg, len(self.classes), resolve_input_shape(cfg, image_shape))
        self.model = model
        if hasattr(model, "requires_input_grad"):
            model.requires_input_grad(False)   # the input is data: skip conv1's input gradient
        self.input_shape = (model_input_shape(self.model) if hasattr(model, "input_shape") or pipeline is None
                            else tuple(pipeline.output_shape(image_shape)))
        # one dropout generator per device for the whole model, seeded from the run's seed
        self.generators = backend.DeviceGenerators(_dropout_seed(cfg.seed, *rank_seed_suffix(self.dist)))
        for _, m in self.model.named_layers():
            if isinstance(m, Dropout):
                m.generators = self.generators
        self.criterion = SoftmaxCrossEntropy(dtype=model_dtype(self.model), label_smoothing=cfg.label_smoothing)
        # what runs each step's forward and backward: the model, or on a multi-core CPU the model and
        # copies of it sharing its parameters, each on a slice of the batch in its own thread
        self.runner = step_runner(self.model)

        # pipeline: fitted on the training part, or restored
        if ck is not None:
            self.pipeline = Pipeline.from_state_dict(ck.pipeline)
        elif pipeline is not None:
            self.pipeline = pipeline
        else:
            self.pipeline = make_pipeline(cfg, image_shape, self.input_shape).fit(self.train_set)
            # one round trip, so a fresh run and a resumed one use identical arrays
            self.pipeline = Pipeline.from_state_dict(self.pipeline.state_dict())
        self.loader = DataLoader(self.train_set, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                 transform=self.pipeline.train_transform,
                                 shard=(self.dist.rank, self.dist.size) if self.dist else (0, 1))
        self.optimizer = SGD(self.model, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.schedule = make_schedule(cfg.schedule, patience=cfg.patience, max_reductions=cfg.max_reductions,
                                      step_epochs=cfg.step_epochs,
                                      time_limit_seconds=60 * cfg.time_limit if cfg.time_limit else None,
                                      base_lr=cfg.lr, total_steps=cfg.epochs * len(self.loader))
        self.history = History(self.run_dir)
        self.step = 0
        self.elapsed = 0.0            # seconds spent in training steps (sum of epoch_time)
        self.wall_time = 0.0          # seconds of wall clock of the run, validation included (over resumes)
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "time": 0.0}
        self.unvalidated = None       # an epoch whose training ended but whose validation was interrupted
        self._sums, self._read_step = None, 0     # the epoch's loss and accuracy sums on the device
        if ck is not None:
            self._restore(ck)
            if "lr" in overrides:        # --resume --lr: the new rate replaces the saved one
                self.optimizer.lr = float(overrides["lr"])
                if isinstance(self.schedule, CosineSchedule):   # and tops the cosine from here on
                    self.schedule.base_lr = float(overrides["lr"])

    # -- state ------------------------------------------------------------------------
    def _meta(self, kind):
        return {
            "kind": kind,
            "train_config": self.cfg.to_dict(),
            "model_name": self.cfg.model,
            "model_config": _model_config(self.model),
            "input_shape": list(self.input_shape),
            "image_shape": list(self.train_set.image_shape),
            "classes": self.classes,
            "epoch": self.loader.epoch,
            "step": self.step,
            "run_id": self.folder.run_id if self.folder is not None else None,
        }

    def save_checkpoint(self):
        """Write checkpoint.npz (atomically); returns its path, or None when this process writes no
        files, or if the weights are not finite (then the previous checkpoint is kept: the last good one)."""
        if not self.writes:
            return None
        if not all(numpy.isfinite(v).all() for v in self.model.state_dict().values()):
            self.log(f"the weights are not finite: no checkpoint written; {self.run_dir / CHECKPOINT} "
                     "keeps the last good one")
            return None
        self._read_sums(agree=False)              # the partial epoch's sums, from the device
        meta = self._meta("checkpoint")
        meta.update(
            optimizer={k: v for k, v in self.optimizer.state_dict().items() if k != "velocities"},
            schedule=self.schedule.state_dict(),
            loader=self.loader.state_dict(),
            history=self.history.epochs,
            best_epoch=self.history.best_epoch,
            best_val_top1=self.history.best_val_top1,
            partial_epoch=self.partial,
            unvalidated_epoch=self.unvalidated,
            elapsed=self.elapsed,
            wall_time=self._wall() if hasattr(self, "_wall_start") else self.wall_time,
            rng={"seed": self.cfg.seed, "dropout": "generator states in rng/ (one per device)"},
        )
        return save_checkpoint(self.run_dir / CHECKPOINT, meta, model=self.model.state_dict(),
                               velocity=self.optimizer.state_dict()["velocities"],
                               pipeline=self.pipeline.state_dict(), rng=self.generators.state_dict())

    def _restore(self, ck):
        m = ck.meta
        self.model.load_state_dict(ck.model)
        self.optimizer.load_state_dict(dict(m["optimizer"], velocities=ck.velocity))
        self.schedule.load_state_dict(m["schedule"])
        self.loader.load_state_dict(m["loader"])
        self.generators.load_state_dict(ck.rng)
        self.history.epochs = list(m["history"])
        self.history.best_epoch, self.history.best_val_top1 = m.get("best_epoch"), m.get("best_val_top1")
        self.partial = dict(m["partial_epoch"])
        self.unvalidated = m.get("unvalidated_epoch")
        self.step, self.elapsed = int(m["step"]), float(m.get("elapsed", 0.0))
        self._read_step = self.step
        self.wall_time = float(m.get("wall_time", 0.0))
        if list(m["classes"]) != self.classes:
            raise ValueError(f"the checkpoint's classes {m['classes']} differ from the dataset's {self.classes}")

    # -- one epoch -----------------------------------------------------------------------
    # On a GPU the host reads the running loss and accuracy back (a synchronisation: the host
    # waits for every queued step) only every this many steps, at the end of an epoch and
    # before a checkpoint; a step itself never waits. NumPy reads every step (nothing to wait for).
    read_every = 50

    def _add_to_sums(self, loss_arr, logits, yd, n):
        """The epoch's running loss sum (float64) and correct count, kept on the logits' device.

        They start from ``self.partial`` (a resumed epoch's sums) and are never
        reset within the epoch, so the sum is the same fold over the steps
        however often it is read: a resumed run's metrics are bit-identical.
        """
        xp = backend.get_array_module(logits)
        if self._sums is None:
            dev, bname = backend.device_of(logits), backend.backend_of(logits)
            self._sums = (backend.to_device(numpy.asarray(self.partial["loss_sum"], numpy.float64), dev, bname),
                          backend.to_device(numpy.asarray(self.partial["correct"], numpy.int64), dev, bname))
        loss_sum, correct = self._sums
        loss_sum += loss_arr.astype(xp.float64) * n
        correct += (logits.argmax(axis=1) == yd).sum()

    def _read_sums(self, agree=True):
        """Copy the device sums into ``self.partial`` (host floats); a non-finite loss stops training here.

        ``agree``: with several ranks, all of them stop or none (a collective: the loop reads
        at the same steps on every rank; a checkpoint's read, on rank 0 alone, does not agree).
        """
        if self._sums is None:
            return
        loss_sum, correct = (backend.to_host(a) for a in self._sums)
        p = self.partial
        p["loss_sum"], p["correct"] = float(loss_sum), int(correct)
        finite = math.isfinite(p["loss_sum"])
        if agree and self.dist is not None:
            finite = not self.dist.any([not finite])[0]
        if not finite:
            since = (f" or earlier (read every {self._read_interval} steps; finite at step {self._read_step})"
                     if self.step - self._read_step > 1 else "")
            raise self._diverged(f"the training loss became {p['loss_sum']} at epoch {self.loader.epoch + 1}, "
                                 f"step {self.step}{since}")
        self._read_step = self.step

    def _train_epoch(self, stop):
        cfg, model, loader = self.cfg, self.model, self.loader
        epoch = loader.epoch
        dev, bname = input_device(model)
        self._read_interval = 1 if bname == "numpy" else self.read_every
        self.runner.train()
        p = self.partial
        bar = tqdm(total=len(loader), initial=loader.batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", leave=False, disable=not self._progress, dynamic_ncols=True)
        t_last = time.perf_counter()
        # the next batch is read and augmented in a background thread while this one trains
        with prefetch(loader) as batches:
            for x, y in batches:
                batch = loader.batch - 1
                xd = backend.to_device(x.astype(model_dtype(model), copy=False), dev, bname)
                with backend.device(dev):
                    logits = self.runner.forward(xd)
                ldev = backend.device_of(logits)
                with backend.device(ldev):
                    yd = backend.to_device(y, ldev, bname)
                    loss_arr = self.criterion.forward(logits, yd)
                    dlogits = self.criterion.backward()
                    self.runner.backward(dlogits)
                    self._add_to_sums(loss_arr, logits, yd, len(y))
                if self.dist is not None:     # g = sum over ranks of (n_r / n) g_r: the global batch's gradient
                    self.dist.allreduce_gradients(model, len(y) / loader.global_batch_size(batch))
                self.optimizer.step()
                self.step += 1
                p["seen"] += len(y)
                if self.step - self._read_step >= self._read_interval or loader.batch == len(loader):
                    try:
                        self._read_sums()           # waits for the GPU: inside the timed part
                    except NonFiniteLossError:
                        bar.close()
                        raise
                    bar.set_postfix(loss=f"{p['loss_sum'] / p['seen']:.3f}",
                                    acc=f"{100 * p['correct'] / p['seen']:.1f}%",
                                    img_s=f"{p['seen'] / max(p['time'], 1e-9):.0f}", refresh=False)
                now = time.perf_counter()
                p["time"] += now - t_last
                t_last = now
                bar.update(1)
                wall = self._wall()
                if self.dist is not None:     # rank 0's clock and any rank's Ctrl-C decide for all
                    wall = self.dist.bcast(wall)
                    if self.dist.any([bool(stop.requested)])[0] and not stop.requested:
                        stop.requested = signal.SIGINT
                if hasattr(self.schedule, "after_step") and self.schedule.after_step(self.step, wall, self.optimizer):
                    self.log(f"{wall / 60:.1f} min of the {cfg.time_limit:g} min budget: lr -> {self.optimizer.lr:g}")
                if self.on_step is not None:
                    self.on_step(self)
                if stop.requested:
                    bar.close()
                    stop.check()
                if cfg.time_limit is not None and wall >= 60 * cfg.time_limit:
                    self.time_up = True
                    break
        self._read_sums()
        bar.close()
        return epoch

    def _diverged(self, what):
        """The NonFiniteLossError for ``what``, naming the checkpoint kept and the fix."""
        ck = self.run_dir / CHECKPOINT if self.save else None
        lower = self.optimizer.lr / 10
        if ck is None:
            kept = "nothing was saved (an in-memory run)"
        elif ck.is_file():
            kept = (f"the last good checkpoint (written before the divergence, finite weights) is kept in {ck}; "
                    f"continue from it with a lower rate: python -m tinyalex train --resume {self.run_dir} "
                    f"--lr {lower:g}")
        else:
            kept = "no epoch finished, so there is no checkpoint; start again with a lower rate"
        return NonFiniteLossError(
            f"{what} with lr={self.optimizer.lr:g}; training stopped and {kept}. The learning rate is probably "
            f"too high: lower the learning rate, e.g. --lr {lower:g}.")

    def _check_not_diverged(self, epoch, row):
        """Before an epoch's checkpoint is written: the weights are finite and the validation loss is
        finite and not exploding (at most EXPLODED_LOSS_FACTOR x ln K, K classes: a model that bad is far
        worse than a uniform guess). Otherwise raise, keeping the previous checkpoint."""
        bad = [name for name, value in self.model.state_dict().items() if not numpy.isfinite(value).all()]
        if bad:
            raise self._diverged(f"the weights became non-finite ({', '.join(bad[:3])}) at the end of epoch "
                                 f"{epoch + 1}")
        loss = row["val_loss"] if row["val_loss"] is not None else row["train_loss"]
        limit = EXPLODED_LOSS_FACTOR * math.log(max(len(self.classes), 2))
        if not math.isfinite(loss) or loss > limit:
            which = "validation" if row["val_loss"] is not None else "training"
            raise self._diverged(f"the {which} loss became {loss:.4g} at the end of epoch {epoch + 1} (a uniform "
                                 f"guess gives {limit / EXPLODED_LOSS_FACTOR:.3g})")

    def _finish_epoch(self, epoch, stop=None):
        cfg, p = self.cfg, self.partial
        if self.dist is not None:             # the epoch's metrics over all ranks' images
            p["loss_sum"], p["correct"], p["seen"] = self.dist.sum([p["loss_sum"], p["correct"], p["seen"]])
        self.unvalidated = epoch
        lr_used = self.optimizer.lr
        row = {"epoch": epoch + 1, "step": self.step, "lr": lr_used,
               "train_loss": p["loss_sum"] / max(p["seen"], 1), "train_top1": p["correct"] / max(p["seen"], 1),
               "val_loss": None, "val_top1": None, "val_top5": None}
        if self.val_set is not None:
            # a stop here leaves everything as it was: the checkpoint then says to validate first on resume
            ev = evaluate(self.model, self.val_set, self.pipeline, self.eval_batch_size,
                          progress=self._progress, desc="validation",
                          check_stop=stop.check if stop is not None else None)
            row.update(val_loss=ev["loss"], val_top1=ev["top1"], val_top5=ev["top5"])
        self._check_not_diverged(epoch, row)
        self.unvalidated = None
        self.elapsed += p["time"]
        row.update(epoch_time=p["time"], images_per_s=p["seen"] / max(p["time"], 1e-9), elapsed=self.elapsed,
                   wall_time=self._wall())
        self.history.epochs.append(row)
        err = 1.0 - (row["val_top1"] if row["val_top1"] is not None else row["train_top1"])
        reduced = self.schedule.step(epoch, err, self.optimizer)
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "time": 0.0}
        self._sums = None
        improved = row["val_top1"] is not None and (self.history.best_val_top1 is None
                                                    or row["val_top1"] > self.history.best_val_top1)
        if improved:
            self.history.best_epoch, self.history.best_val_top1 = epoch + 1, row["val_top1"]
        if self.on_epoch is not None:
            self.on_epoch(self, row)
        # files: metrics, curves, checkpoint (after the schedule, so resume sees the new lr), best
        if self.writes:
            write_metrics(self.run_dir, self.history.epochs)
            self._plot()
            self.save_checkpoint()
            if improved:
                save_model_file(self.run_dir / BEST, self.model, self._meta("model"), self.pipeline)
        val = (f"val loss {row['val_loss']:.4f} top-1 {100 * row['val_top1']:.2f}% top-5 {100 * row['val_top5']:.2f}%"
               if row["val_top1"] is not None else "no validation set")
        self.log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f} top-1 "
                 f"{100 * row['train_top1']:.2f}% | {val} | lr {lr_used:g} | {row['epoch_time']:.1f}s "
                 f"{row['images_per_s']:.0f} img/s" + (f" | lr -> {self.optimizer.lr:g}" if reduced else ""))

    def _wall(self):
        """Wall-clock seconds of training so far (this session plus earlier ones)."""
        return self._wall_before + time.perf_counter() - self._wall_start

    def _plot(self):
        if not self.cfg.plots or not self.writes:
            return
        from ..viz import plot_curves       # matplotlib only when plotting (see the imports)

        plot_curves(self.history.epochs, self.run_dir / "curves.png",
                    title=f"{self.cfg.model} on {self.cfg.dataset}")

    def _write_config(self):
        if not self.writes:
            return
        doc = {"train_config": self.cfg.to_dict(), "model_config": _model_config(self.model),
               "classes": self.classes, "input_shape": list(self.input_shape),
               "pipeline": self.pipeline.config(),
               "sizes": {"train": len(self.train_set), "val": len(self.val_set) if self.val_set else 0,
                         "test": len(self.test_set) if self.test_set is not None else 0}}
        atomic_write_text(self.run_dir / "config.json", json.dumps(doc, indent=2) + "\n")

    # -- the whole run -------------------------------------------------------------------
    def run(self, on_step=None, on_epoch=None, test=True):
        """Train until cfg.epochs, then evaluate on the test set. Returns a History.

        ``on_step(trainer)`` is called after every SGD step; ``on_epoch(trainer, row)``
        after every epoch's validation, with that epoch's metrics row (it may add
        keys to it: they go into history.epochs and metrics.jsonl).
        """
        cfg = self.cfg
        self.on_step, self.on_epoch = on_step, on_epoch
        self.time_up = False
        self._wall_start, self._wall_before = time.perf_counter(), self.wall_time
        self._progress = bool(cfg.progress) and sys.stderr.isatty() and self.is_root
        self.eval_batch_size = cfg.eval_batch_size or 2 * cfg.batch_size
        self._write_config()
        if self.resume_from is not None:
            if self.writes:
                write_metrics(self.run_dir, self.history.epochs)   # drop rows newer than the checkpoint
            self.log(f"resuming {self.run_dir} at epoch {self.loader.epoch + 1}, batch {self.loader.batch + 1}")
        else:
            what = cfg.model if not self.model_given else type(self.model).__name__
            self.log(f"training {what} on {cfg.dataset}: {len(self.train_set)} train / "
                     f"{len(self.val_set) if self.val_set else 0} val images, {len(self.classes)} classes, "
                     f"{self.model.num_parameters():,} parameters -> {self.run_dir or 'memory'}")
            if self.dist is not None:
                self.log(self.dist.describe())
            if self.runner is not self.model:
                self.log(self.runner.describe())
            if isinstance(self.schedule, CosineSchedule):
                over = (f"{cfg.time_limit:g} min" if self.schedule.limit_seconds is not None
                        else f"{self.schedule.total_steps} steps")
                self.log(f"lr follows a cosine from {cfg.lr:g} to 0 over {over}")
        try:
            with _StopSignals(saves=self.save) as stop:
                self._run_phases(stop, test)
        finally:
            if self.folder is not None:
                self.folder.close()      # the folder's lock, however the run ended
        return self.history

    def _run_phases(self, stop, test):
        """Training, validation, checkpoints, the test pass and plots, all stoppable by ``stop``."""
        cfg = self.cfg
        try:
            if self.unvalidated is not None:     # stopped while validating: finish that epoch first
                self._finish_epoch(self.unvalidated, stop)
            while self.loader.epoch < cfg.epochs and not self.time_up:
                epoch = self._train_epoch(stop)
                self._finish_epoch(epoch, stop)
                stop.check()
        except KeyboardInterrupt:
            self.history.status = "interrupted"
            if not self.writes:           # an in-memory run, or a rank other than 0: nothing to save
                raise
            if stop.forced:   # interrupted inside a step: keep the last consistent checkpoint
                self.log(f"aborted; the last checkpoint in {self.run_dir / CHECKPOINT} is kept")
                raise
            if self.save_checkpoint() is None:
                raise
            self.log(f"interrupted at epoch {self.loader.epoch + 1}, step {self.step}; checkpoint saved in "
                     f"{self.run_dir / CHECKPOINT}. Continue with: python -m tinyalex train --resume {self.run_dir}")
            raise
        except NonFiniteLossError:
            self.history.status = "diverged"
            raise
        except WriteError as exc:      # disk full, folder made read-only: every write is atomic
            self.history.status = "failed"
            ck = self.run_dir / CHECKPOINT
            kept = (f"the previous checkpoint survived intact in {ck}: "
                    + ("free some disk space" if exc.errno == errno.ENOSPC else "fix the problem")
                    + f" and continue with python -m tinyalex train --resume {self.run_dir}"
                    if ck.is_file() else "no checkpoint had been written yet")
            raise WriteError(f"{exc}; {kept}", exc.errno) from exc
        if self.time_up:
            self.log(f"time limit of {cfg.time_limit:g} min reached after {self._wall() / 60:.1f} min "
                     f"(epoch {self.history.epochs[-1]['epoch']}, step {self.step})")
        if self.writes:
            save_model_file(self.run_dir / FINAL, self.model, self._meta("model"), self.pipeline)
        if test and self.test_set is not None:
            try:
                self.history.test = self.test(write=self.writes, check_stop=stop.check)
            except KeyboardInterrupt:
                self.history.status = "interrupted"
                if self.writes:
                    self.log(f"interrupted during the test pass; the trained model is saved in "
                             f"{self.run_dir / FINAL}: test it with python -m tinyalex evaluate {self.run_dir}")
                raise
        self.history.status = "completed"

    def test(self, write=True, check_stop=None):
        """Evaluate the current model on the test set; writes test.json and confusion.png."""
        ev = evaluate(self.model, self.test_set, self.pipeline, self.cfg.eval_batch_size or 2 * self.cfg.batch_size,
                      progress=getattr(self, "_progress", False), desc="test", check_stop=check_stop)
        result = {k: ev[k] for k in ("loss", "top1", "top5", "per_class", "n")}
        result["views"] = int(self.pipeline.test_views)
        result["ten_crop"] = result["views"] == 10
        result["classes"] = self.classes
        write = write and self.save
        if write:
            atomic_write_text(self.run_dir / "test.json", json.dumps(result, indent=2) + "\n")
        if write and self.cfg.plots:
            from ..viz import confusion_matrix, plot_confusion_matrix     # (see the imports)

            plot_confusion_matrix(confusion_matrix(ev["labels"], ev["predictions"], len(self.classes)),
                                  self.classes, self.run_dir / "confusion.png",
                                  title=f"test confusion (top-1 {100 * ev['top1']:.2f}%)")
        self.log(f"test: top-1 {100 * result['top1']:.2f}%, top-5 {100 * result['top5']:.2f}% "
                 f"on {result['n']} images" + views_label(result["views"]))
        return result


def fit(config: TrainConfig | None = None, resume=None, model=None, on_step=None, test=True, log=_print,
        overwrite=None, overrides=None, *, data=None, pipeline=None, save=True, on_epoch=None) -> History:
    """Train a model as described by ``config`` and return its :class:`History`.

    Parameters
    ----------
    config : TrainConfig (default: TrainConfig()). With ``resume``, only its
        ``epochs`` and ``progress`` are used (the rest comes from the checkpoint).
    resume : a run folder (or its checkpoint.npz) to continue exactly.
    model : a ready model to train instead of ``tinyalex.models.build_model(config.model)``
        (must match the checkpoint when resuming).
    data, pipeline, save : ready datasets, a fitted pipeline, in-memory training
        (see :class:`Trainer`).
    on_step : called as ``on_step(trainer)`` after every SGD step (for notebooks, tests).
    on_epoch : called as ``on_epoch(trainer, row)`` after every epoch (see :meth:`Trainer.run`).
    test : evaluate on the test set at the end.
    log : where one-line messages go (``print``; pass ``lambda *a: None`` for silence).
    overwrite : None (default): an ``out`` folder holding an earlier run is replaced (its
        files deleted), any other non-empty folder refused; False: refuse both (the
        command line without --overwrite); True: write into either (runfolder.py).
    overrides : with ``resume``, settings that may change (train/cli.py RESUMABLE), e.g. {"lr": 0.001}.

    Raises :class:`NonFiniteLossError` if the loss diverges (the last good
    checkpoint is kept), and :class:`StopRequested` (a ``KeyboardInterrupt``)
    after saving a checkpoint on Ctrl-C or SIGTERM.
    """
    try:
        trainer = Trainer(config, resume=resume, model=model, log=log, overwrite=overwrite, overrides=overrides,
                          data=data, pipeline=pipeline, save=save)
        return trainer.run(on_step=on_step, on_epoch=on_epoch, test=test)
    except Exception as exc:
        if config is not None and config.distributed:    # one failed rank ends them all, never a hang
            abort_job(1, f"{type(exc).__name__}: {exc}")
        raise
