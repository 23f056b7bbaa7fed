"""The training subcommands: ``train``, ``evaluate``, ``predict``, ``plot``.

    python -m tinyalex train                       # Fashion-MNIST, small AlexNet
    python -m tinyalex train --quick               # a 1-2 minute run
    python -m tinyalex train --resume runs/NAME    # continue exactly where it stopped
    python -m tinyalex evaluate runs/NAME --ten-crop
    python -m tinyalex predict shoe.png --model runs/NAME
    python -m tinyalex plot runs/NAME

Every flag maps to a field of :class:`tinyalex.train.TrainConfig`
(``--batch-size`` -> ``batch_size``); see docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy
from PIL import Image

from ..backend import BACKENDS
from ..cli import parse_devices
from ..data import DATASET_NAMES, Relabeled, Subset, decode_image
from ..data.imagefolder import IMAGE_EXTENSIONS, decode_errors, list_classes, scan_files
from ..errors import UserError
from ..fileio import CorruptFileError
from ..models import INITS, model_names, model_options
from ..models.io import read_npz
from ..viz import confusion_matrix, plot_confusion_matrix, plot_conv1_filters, plot_curves
from .checkpoint import load_checkpoint
from .schedule import SCHEDULES
from .trainer import (CHECKPOINT, MODEL_OPTIONS, TrainConfig, evaluate, fit, load_data, load_trained, predict_proba,
                      read_metrics, resolve_model_file, views_label)

# --quick: a first run that finishes in about two minutes on 2 CPU cores, whatever
# the machine's speed: 1.5 minutes of training on all 54,000 training images (about
# two epochs on 2 cores; the rest is data loading and the test on 2,000 images), the
# recipe of the measured run in docs/training.md. (All the images, not a subset: in
# the same 1.5 minutes 20,000 images seen 5 times gave 84.35%, 54,000 seen twice 85.85%.)
QUICK = {"limit_test": 2000, "width": 0.5, "batch_size": 64, "lr": 0.02,
         "dropout": 0.0, "time_limit": 1.5, "schedule": "time", "epochs": 5}


def _devices(text):
    """argparse's type for --devices: tinyalex.cli.parse_devices, as the list TrainConfig.devices holds."""
    try:
        return list(parse_devices(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _checked(convert, ok, must):
    """An argparse type: ``convert(text)`` when ``ok`` accepts it, else "invalid value 'x': must be MUST"."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {must}")
        return value
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a whole number >= 1")
_fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_probability = _checked(float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")
_positive_float = _checked(float, lambda v: v > 0, "a number > 0")


def _step_epochs(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: give an epoch interval (5) or the epochs after which to reduce (6,9)")
    return values[0] if len(values) == 1 else values


def _classes(text):
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give class names separated by commas, e.g. cat,dog")
    return names


_OPTIONS = {}     # command -> {"--flag": dest}, filled by register_cli (see explicit_options)


def add_views(p):
    """evaluate's and predict's --ten-crop / --five-crop (default: as trained)."""
    p.add_argument("--ten-crop", action=argparse.BooleanOptionalAction, default=None,
                   help="average the softmax over the 10 views, the paper's (default: as trained; "
                        "--no-ten-crop: the centre crop)")
    p.add_argument("--five-crop", action=argparse.BooleanOptionalAction, default=None,
                   help="average the softmax over the 5 crops without mirrors, for nets trained without flips "
                        "(default: as trained; --no-five-crop: the centre crop)")


def test_views(args, pipeline):
    """1, 5 or 10 test views from --ten-crop / --five-crop, else the pipeline's (as trained)."""
    if args.ten_crop and args.five_crop:
        raise UserError("--ten-crop and --five-crop are two ways to test; give one of them")
    if args.ten_crop:
        return 10
    if args.five_crop:
        return 5
    if args.ten_crop is False or args.five_crop is False:
        return 1
    return pipeline.test_views


def register_cli(subparsers):
    d = TrainConfig()
    S = argparse.SUPPRESS
    _add = argparse._ActionsContainer.add_argument

    def add_quick(group, flag, key, shown_default, **kw):
        """A flag that --quick may set: no argparse default, both defaults in the help."""
        kw["help"] = kw["help"] + f" [default: {shown_default}; --quick: {QUICK[key]}]"
        return _add(group, flag, default=S, **kw)

    # -- train ----------------------------------------------------------------------
    p = subparsers.add_parser(
        "train", help="train an AlexNet (default: the small one on Fashion-MNIST)",
        description="Train an AlexNet with the paper's SGD and schedule; writes metrics, curves, "
                    "checkpoints and the trained weights into a run folder (--out). Ctrl-C saves a "
                    "checkpoint; --resume continues exactly.",
        epilog="examples:\n  python -m tinyalex train --quick\n"
               "  python -m tinyalex train --epochs 12 --out runs/fmnist\n"
               "  python -m tinyalex train --dataset cifar10 --model alexnet-cifar --epochs 30\n"
               "  python -m tinyalex train --dataset imagefolder --data-dir pets --classes cat,dog "
               "--image-size 64 --model alexnet-cifar --crop 56\n"
               "  python -m tinyalex train --resume runs/fmnist --epochs 20")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASET_NAMES, default=d.dataset, help="which dataset")
    g.add_argument("--data-dir", default=d.data_dir,
                   help="where the dataset is (default: $TINYALEX_DATA, the user cache, "
                        "/usr/share/datasets, else download)")
    g.add_argument("--classes", type=_classes, default=None, help="imagefolder: keep only these classes, e.g. cat,dog")
    g.add_argument("--image-size", type=_positive_int, default=None, help="imagefolder: resize images to SIZE x SIZE")
    g.add_argument("--val-fraction", type=_fraction, default=d.val_fraction,
                   help="part of the training set held out for validation (0: none)")
    g.add_argument("--limit-train", type=_positive_int, default=d.limit_train, help="use only N training images")
    add_quick(g, "--limit-test", "limit_test", "all", type=_positive_int, help="use only N test images")
    g = p.add_argument_group("preprocessing and augmentation (sections 2 and 4.1)")
    g.add_argument("--no-mean", dest="mean", action="store_false", help="do not subtract the mean image")
    g.add_argument("--crop", type=_positive_int, default=None,
                   help="size of the random (train) / centre (test) crops, the model's input size "
                        "(default: the model's own, e.g. 28 for alexnet-small)")
    g.add_argument("--no-crop", dest="crop", action="store_const", const=0, help="no cropping: feed whole images")
    g.add_argument("--pad", type=int, default=None,
                   help="zero padding before random crops (default when the crop is the image size: H//8 for RGB "
                        "images, 1 for grey ones; else 0)")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flips (default: on for RGB images, off for grey ones such as "
                        "Fashion-MNIST, whose images all face one way)")
    g.add_argument("--pca", action=argparse.BooleanOptionalAction, default=None,
                   help="PCA colour augmentation (default: on for RGB images)")
    g.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="do not divide by the per-channel std (the paper does not)")
    g.add_argument("--erase", type=_probability, default=d.erase, metavar="P",
                   help="random erasing: blank a random rectangle (2-40%% of the image) in each training image "
                        "with probability P (not in the paper; Zhong et al. 2017; 0: off)")
    g.add_argument("--ten-crop", action="store_true", help="evaluate with the 10-crop softmax average")
    g.add_argument("--five-crop", action="store_true",
                   help="evaluate with the softmax averaged over the 5 crops without mirrors (for nets trained "
                        "without flips; not in the paper)")
    g = p.add_argument_group("model (section 3)")
    g.add_argument("--model", choices=model_names(), default=d.model, help="architecture")
    add_quick(g, "--width", "width", 1, type=_positive_float, help="channel-width multiplier")
    g.add_argument("--init", choices=sorted(INITS), default=None, help="weight initialization (default: the model's)")
    g.add_argument("--no-lrn", dest="lrn", action="store_false", help="remove local response normalization")
    g.add_argument("--batchnorm", action="store_true",
                   help="batch normalization after every convolution, before its ReLU (not in the paper: "
                        "Ioffe and Szegedy 2015; usually with --no-lrn)")
    g.add_argument("--lrn-convention", choices=("paper", "caffe"), default=d.lrn_convention,
                   help="LRN alpha per term (paper) or divided by n (caffe)")
    g.add_argument("--no-overlap", dest="overlap", action="store_false", help="2/2 pooling instead of the paper's 3/2")
    add_quick(g, "--dropout", "dropout", d.dropout, type=_fraction, help="dropout probability in fc6, fc7 (0: off)")
    g.add_argument("--dropout-mode", choices=("inverted", "paper"), default=d.dropout_mode, help="dropout form")
    g.add_argument("--activation", choices=("relu", "tanh"), default=d.activation, help="non-linearity")
    g.add_argument("--dtype", choices=("float32", "float64"), default=d.dtype, help="floating-point type")
    g = p.add_argument_group("learning (section 5)")
    add_quick(g, "--epochs", "epochs", d.epochs, type=_positive_int, help="epochs to train")
    add_quick(g, "--batch-size", "batch_size", d.batch_size, type=_positive_int, help="images per SGD step")
    add_quick(g, "--lr", "lr", d.lr, type=_positive_float, help="initial learning rate")
    g.add_argument("--momentum", type=_fraction, default=d.momentum, help="momentum of the velocity")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="weight decay in the update")
    g.add_argument("--label-smoothing", type=_fraction, default=d.label_smoothing, metavar="E",
                   help="train on targets (1 - E) one-hot + E / classes (not in the paper; 0: off)")
    add_quick(g, "--schedule", "schedule", d.schedule, choices=SCHEDULES,
              help="plateau: lr/10 when validation error stops improving (the paper); step: at --step-epochs; "
                   "time: at 60%% and 85%% of --time-limit; cosine: down to 0 along half a cosine over "
                   "--time-limit, or over --epochs without one")
    g.add_argument("--patience", type=_positive_int, default=d.patience, help="plateau: epochs without improvement")
    g.add_argument("--max-reductions", type=int, default=d.max_reductions, help="at most this many lr reductions")
    g.add_argument("--step-epochs", type=_step_epochs, default=d.step_epochs,
                   help="step: reduce every N epochs (5), or after the listed epochs (6,9)")
    add_quick(g, "--time-limit", "time_limit", "none", type=_positive_float, metavar="MINUTES",
              help="stop training after this many minutes of wall clock (validation included), "
                   "even mid-epoch; with --schedule time the lr drops at 60%% and 85%% of it")
    g = p.add_argument_group("run")
    g.add_argument("--backend", choices=BACKENDS, default=d.backend, help="array backend")
    g.add_argument("--devices", type=_devices, default=d.devices, help="device, or two devices for the two towers: 0,1")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of everything random (init, order, augmentation, dropout)")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel training over MPI, one process per rank: mpiexec -n 2 python -m tinyalex "
                        "train --distributed ... (--batch-size is the global batch; docs/distributed.md)")
    g.add_argument("--out", default=None, help="run folder (default: runs/DATASET-MODEL-TIME)")
    g.add_argument("--resume", metavar="RUN", default=None,
                   help="continue the run in this folder exactly (its settings are used; --epochs, --lr, "
                        "--data-dir, --no-plots may change)")
    g.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out folder that already holds files (a run's own files are "
                        "deleted first; other files are kept)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    g.add_argument("--no-plots", dest="plots", action="store_false", help="do not draw curves.png / confusion.png")
    g.add_argument("--quick", action="store_true",
                   help="a first run of about two minutes (the values marked --quick above; explicit flags win)")
    p.set_defaults(func=_train)
    _OPTIONS["train"] = {o: a.dest for a in p._actions for o in a.option_strings if o.startswith("--")}

    # -- evaluate ---------------------------------------------------------------------
    p = subparsers.add_parser(
        "evaluate", help="top-1, top-5, per-class accuracy and a confusion matrix of a trained model",
        description="Evaluate a run (its model.npz) or a model file on the dataset it was trained on.")
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run folder, or a model.npz / best.npz / checkpoint.npz")
    add_views(p)
    p.add_argument("--split", choices=("test", "train"), default="test", help="which split to evaluate")
    p.add_argument("--data-dir", default=None, help="where the dataset is (default: as trained)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="evaluate only the first N images (the run's own --limit-test/--limit-train apply first)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="images per forward pass")
    p.add_argument("--classes", type=_classes, default=None,
                   help="score only these of the model's classes (image folders whose classes differ from "
                        "the model's), e.g. cat,dog")
    p.add_argument("--out", default=None, help="confusion matrix PNG (default: confusion-SPLIT.png next to the model)")
    p.set_defaults(func=_evaluate)

    # -- predict ------------------------------------------------------------------------
    p = subparsers.add_parser(
        "predict", help="top-5 classes of image files",
        description="Classify image files (JPEG, PNG, ...) with a trained model; prints the top classes "
                    "with their probabilities. Images are converted to the training images' size and "
                    "colour mode first.")
    p.add_argument("images", metavar="IMAGE", nargs="+",
                   help="image files, or folders of them (class folders must be named as the model's classes)")
    p.add_argument("--model", required=True, metavar="RUN_OR_MODEL", help="run folder or model file")
    p.add_argument("--top", type=_positive_int, default=5, help="how many classes to show")
    add_views(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_predict)

    # -- plot -------------------------------------------------------------------------------
    p = subparsers.add_parser("plot", help="re-draw a run's curves (and its conv1 kernels)",
                              description="Draw curves.png from a run's metrics.jsonl; with --filters "
                                          "also conv1.png, the first layer's kernels by tower.")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("--out", default=None, help="curves PNG (default: RUN/curves.png)")
    p.add_argument("--filters", action="store_true", help="also draw conv1's kernels (RUN/conv1.png)")
    p.set_defaults(func=_plot)


def _error(msg):
    print(f"tinyalex: error: {msg}", file=sys.stderr)


def _warn(msg):
    print(f"tinyalex: warning: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------
def config_from_args(args) -> TrainConfig:
    """A TrainConfig from parsed ``train`` arguments (--quick fills what was not given)."""
    kw = {}
    fields = set(TrainConfig.__dataclass_fields__)
    for key, value in vars(args).items():
        if key in fields and key not in QUICK:
            kw[key] = value
    takes = model_options(kw.get("model", TrainConfig.model))
    for key in QUICK:
        if hasattr(args, key):
            kw[key] = getattr(args, key)
        elif args.quick and (key not in MODEL_OPTIONS or MODEL_OPTIONS[key][0] in takes):
            kw[key] = QUICK[key]          # --quick's width and dropout only for a model that has them
    return TrainConfig(**kw)


# What --resume may change: everything else defines the run and comes from its checkpoint.
RESUMABLE = ("epochs", "lr", "plots", "data_dir")


def explicit_options(args, command="train"):
    """The destinations of the options given on the command line (not defaults), e.g. {'lr', 'epochs'}.

    Read from ``args.argv`` (set by tinyalex.cli.main); unique prefixes
    (``--ep``) count as argparse accepts them.
    """
    options = _OPTIONS.get(command, {})
    given = set()
    tokens = list(getattr(args, "argv", None) or [])
    if command in tokens:
        tokens = tokens[tokens.index(command) + 1:]
    for token in tokens:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        matches = [o for o in options if o == name] or [o for o in options if o.startswith(name)]
        if len(matches) == 1:
            given.add(options[matches[0]])
    return given


def _resume_overrides(args):
    """(overrides, message) for ``train --resume``: flags it may change; refuses those it may not."""
    run = Path(args.resume)
    path = run / CHECKPOINT if run.is_dir() else run
    if not path.is_file():
        raise UserError(f"--resume {args.resume}: no {CHECKPOINT} there; give the run folder of an earlier training")
    meta = load_checkpoint(path).meta
    if meta.get("kind") != "checkpoint":
        raise UserError(f"--resume {args.resume}: {path} is a model file, not a training checkpoint; "
                        "resume from the run folder")
    saved = meta["train_config"]
    fields = set(TrainConfig.__dataclass_fields__)
    explicit = explicit_options(args) & fields - {"progress"}
    overrides, refused = {}, []
    for key in sorted(explicit):
        value = getattr(args, key, None)
        if key in RESUMABLE:
            overrides[key] = value
        elif key == "out":
            if Path(value).resolve() != path.parent.resolve():
                refused.append(f"--out {value} (the run folder is {path.parent})")
        elif value != saved.get(key):
            refused.append(f"--{key.replace('_', '-')} {_show(value)} (the run has {_show(saved.get(key))})")
    if args.quick:
        refused.append("--quick")
    if refused:
        raise UserError(f"--resume {args.resume}: {'; '.join(refused)} cannot change when resuming: they define the "
                        f"run. Only {', '.join('--' + k.replace('_', '-') for k in RESUMABLE)} may; remove the "
                        "others, or start a new run with another --out")
    overrides.setdefault("epochs", saved["epochs"])
    was = {"lr": meta.get("optimizer", {}).get("lr", saved.get("lr"))}
    changed = [f"--{k.replace('_', '-')} {_show(v)} (was {_show(was.get(k, saved.get(k)))})"
               for k, v in sorted(overrides.items()) if v != was.get(k, saved.get(k))]
    message = (f"resuming {path.parent}: every setting comes from its checkpoint"
               + (f", except {', '.join(changed)}" if changed else "") + ".")
    overrides["progress"] = args.progress
    return overrides, message


def _show(value):
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "(default)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _train(args):
    if args.resume:
        overrides, message = _resume_overrides(args)
        print(message, flush=True)
        history = fit(None, resume=args.resume, overrides=overrides)
    else:
        cfg = config_from_args(args)
        try:
            cfg.validate()
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        history = fit(cfg, overwrite=args.overwrite)
    if getattr(args, "distributed", False) and not _is_root_rank():
        return 0
    if history.test is not None:
        print(f"done: test top-1 {100 * history.test['top1']:.2f}%, top-5 {100 * history.test['top5']:.2f}%; "
              f"run folder {history.run_dir}")
    else:
        print(f"done; run folder {history.run_dir}")
    return 0


def _is_root_rank():
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is None or not mpi.Is_initialized() or mpi.COMM_WORLD.Get_rank() == 0


def _evaluate(args):
    path = resolve_model_file(args.model)
    model, pipeline, classes, meta = load_trained(path)
    cfg = TrainConfig.from_dict(meta["train_config"])
    if args.data_dir:
        cfg.data_dir = args.data_dir
    if args.classes:
        unknown = [c for c in args.classes if c not in classes]
        if unknown:
            raise UserError(f"--classes: {', '.join(unknown)} not among the model's classes ({', '.join(classes)})")
        if cfg.dataset != "imagefolder":
            raise UserError(f"--classes works only for image folders; this model was trained on {cfg.dataset}")
        cfg.classes = list(args.classes)
    if cfg.dataset == "imagefolder" and cfg.data_dir and not cfg.classes:      # before decoding any image
        _check_same_classes(list_classes(cfg.data_dir), classes, cfg, path)
    train, val, test = load_data(cfg, check=False)
    dataset = test if args.split == "test" else train
    if dataset is None:
        raise UserError(f"the dataset of this model has no {args.split} split ({cfg.data_dir or cfg.dataset}); "
                        "evaluate --split train, or give a --data-dir with train/ and test/ folders")
    data_classes = list(dataset.classes)
    if data_classes != classes:
        if not args.classes:
            _check_same_classes(data_classes, classes, cfg, path)
        dataset = Relabeled(dataset, [classes.index(c) for c in data_classes], classes)
    if args.limit:
        dataset = Subset(dataset, numpy.arange(min(args.limit, len(dataset))))
    views = test_views(args, pipeline)
    ev = evaluate(model, dataset, pipeline, args.batch_size, views=views,
                  progress=sys.stderr.isatty(), desc=args.split)
    subset = f", classes {','.join(args.classes)} only" if args.classes else ""
    print(f"{path}: {cfg.dataset} {args.split}{subset}, {ev['n']} images{views_label(views)}")
    print(f"top-1 accuracy {100 * ev['top1']:.2f}%   top-5 accuracy {100 * ev['top5']:.2f}%   loss {ev['loss']:.4f}")
    print("\nper-class accuracy:")
    width = max(len(c) for c in classes)
    for name, acc in zip(classes, ev["per_class"]):
        print(f"  {name:<{width}}  " + (f"{100 * acc:6.2f}%" if acc is not None else "   n/a (no images)"))
    out = Path(args.out) if args.out else path.parent / f"confusion-{args.split}.png"
    try:
        plot_confusion_matrix(confusion_matrix(ev["labels"], ev["predictions"], len(classes)), classes, out,
                              title=f"{cfg.dataset} {args.split}: top-1 {100 * ev['top1']:.2f}%")
    except OSError as exc:
        _warn(f"the confusion matrix could not be written to {out} ({exc.strerror or exc}); the results above "
              "are complete; give --out a writable path for the picture")
        return 0
    print(f"\nconfusion matrix: {out}")
    return 0


def _check_same_classes(data_classes, classes, cfg, path):
    if list(data_classes) != list(classes):
        raise UserError(
            f"the data in {cfg.data_dir or cfg.dataset} has the classes [{', '.join(data_classes)}] but the "
            f"model {path} was trained on [{', '.join(classes)}]; evaluate on data with the model's classes, "
            "or score only classes both have with --classes a,b")


def _predict(args):
    model, pipeline, classes, meta = load_trained(args.model)
    args.images = _image_files(args.images, classes)
    c, h, w = meta.get("image_shape") or (pipeline.mean_image.shape if pipeline.mean_image is not None
                                          else meta["input_shape"])
    images, bad = [], []
    for f in args.images:
        try:
            images.append(decode_image(f, grayscale=(c == 1), size=(h, w)).transpose(2, 0, 1))
        except decode_errors() as exc:
            bad.append(f"{f} ({_image_problem(exc)})")
    if bad:
        raise CorruptFileError("cannot read " + "; ".join(bad) + "; give image files (JPEG, PNG, ...)")
    probs = predict_proba(model, numpy.stack(images), pipeline, views=test_views(args, pipeline))
    k = min(args.top, len(classes))
    results = []
    for f, p in zip(args.images, probs):
        order = numpy.argsort(-p, kind="stable")[:k]
        results.append({"image": f, "top": [{"class": classes[i], "probability": float(p[i])} for i in order]})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(r["image"])
        for rank, t in enumerate(r["top"], 1):
            print(f"  {rank}. {t['class']:<20} {100 * t['probability']:6.2f}%")
    return 0


def _image_files(paths, classes):
    """``predict``'s arguments with each folder replaced by its image files (and those of its class
    folders, whose names must be the model's classes: else the folder is data of another model)."""
    files = []
    for arg in paths:
        folder = Path(arg)
        if not folder.is_dir():
            files.append(arg)
            continue
        own = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        foreign = [c for c in subfolders if c not in classes]
        if foreign:
            raise UserError(f"{folder} has the class folders [{', '.join(subfolders)}] but the model knows "
                            f"[{', '.join(classes)}]; give a folder of images, or of the model's class folders, "
                            "or score a shared subset with evaluate --data-dir DIR --classes a,b")
        in_classes = scan_files(folder, list_classes(folder, subfolders))[0] if subfolders else []
        if not own and not in_classes:
            raise UserError(f"{folder} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        files += own + in_classes
    return files


def _image_problem(exc):
    if isinstance(exc, Image.DecompressionBombError):
        return f"too many pixels to decode safely: {exc}"
    return str(exc) or type(exc).__name__


def _plot(args):
    run = Path(args.run)
    rows = read_metrics(run)
    written, failed = [], []
    out = Path(args.out) if args.out else run / "curves.png"
    try:
        plot_curves(rows, out, title=run.name)
        written.append(f"curves: {out} ({len(rows)} epochs)")
    except OSError as exc:
        failed.append(f"{out} ({exc.strerror or exc})")
    if args.filters:
        weights = resolve_model_file(run)
        W = read_npz(weights).state.get("conv1.W")
        if W is None:
            raise UserError(f"{weights}: the model has no conv1.W to draw; --filters draws AlexNet's first layer")
        try:
            plot_conv1_filters(W, towers=2 if W.shape[0] % 2 == 0 else 1, path=run / "conv1.png")
            written.append(f"conv1 kernels: {run / 'conv1.png'}")
        except OSError as exc:
            failed.append(f"{run / 'conv1.png'} ({exc.strerror or exc})")
    for line in written:
        print(line)
    if failed and not written:
        raise UserError(f"could not write {'; '.join(failed)}; give --out a writable path for the curves")
    if failed:
        _warn(f"could not write {'; '.join(failed)}")
    return 0
