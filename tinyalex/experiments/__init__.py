"""The paper's claims, re-run at small scale: one module per claim.

    python -m tinyalex experiment --list
    python -m tinyalex experiment relu_vs_tanh --quick

In Python::

    from tinyalex.experiments import get_experiment, run_experiment, resolve_settings
    mod = get_experiment("lrn")
    folder = run_experiment(mod, resolve_settings(mod, quick=True), "runs")

Each module states the paper's claim (``PAPER``), its real-run and quick-run
sizes (``FULL``, ``QUICK``) and ``run(settings, out, log)``; ``common.py``
holds the shared network, the call into the one training loop
(``tinyalex.train.Trainer``), statistics over seeds and the run folder (results.json, results.md, plots). Measured results: docs/results.md.
"""
from __future__ import annotations

import importlib
import shlex
import sys

from ..data import DatasetNotFoundError
from .common import Settings, describe, resolve_settings, run_experiment

# Registry: experiment name -> module, in the paper's order of the issue.
EXPERIMENTS = (
    "relu_vs_tanh",    # 1. section 3.1, Figure 1
    "lrn",             # 2. section 3.3
    "pooling",         # 3. section 3.4
    "dropout",         # 4. section 4.2
    "augmentation",    # 5. section 4.1
    "towers",          # 6. section 3.2
    "tower_filters",   # 7. section 6.1, Figure 3
    "retrieval",       # 8. section 6.1, Figure 4
    "normalization",   # 9. after AlexNet: LRN vs BatchNorm vs neither (Ioffe and Szegedy 2015)
    "residual",        # 10. after AlexNet: plain vs residual nets of the same depth (He et al. 2015, Figure 1)
    "complexity",      # 11. after AlexNet: parameters and multiply-adds, AlexNet to ResNet-50
)


def get_experiment(name: str):
    """The module of experiment ``name`` (ValueError naming the choices if unknown)."""
    key = name.strip().lower().replace("-", "_")
    if key not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)} (or 'all')")
    return importlib.import_module(f"{__name__}.{key}")


def list_experiments() -> list[tuple[str, str]]:
    """(name, title) of every experiment, in order."""
    return [(n, get_experiment(n).TITLE) for n in EXPERIMENTS]


def _cli(args) -> int:
    if args.list or not args.name:
        for name, title in list_experiments():
            m = get_experiment(name)
            print(f"{name:14s} {title}\n{'':14s} default: {describe(m, m.FULL)}")
        if not args.list:
            print("give an experiment NAME (or 'all') to run one", file=sys.stderr)
            return 2
        return 0
    names = EXPERIMENTS if args.name == "all" else [args.name]
    try:
        modules = [get_experiment(n) for n in names]
    except ValueError as e:
        print(f"error: NAME: {e}", file=sys.stderr)
        return 2
    if args.seeds is not None and args.seeds < 1:
        print(f"error: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    if args.epochs is not None and args.epochs < 1:
        print(f"error: --epochs must be >= 1, got {args.epochs}", file=sys.stderr)
        return 2
    options = [("--quick", args.quick), ("--seeds", args.seeds), ("--dataset", args.dataset),
               ("--data-dir", args.data_dir), ("--epochs", args.epochs),
               ("--train-size", args.train_size), ("--out", args.out)]
    command = " ".join(["python -m tinyalex experiment", shlex.quote(args.name)]
                       + [flag if value is True else f"{flag} {shlex.quote(str(value))}"
                          for flag, value in options if value not in (None, False)])

    for m in modules:
        settings = resolve_settings(m, quick=args.quick, seeds=args.seeds, dataset=args.dataset,
                                    data_dir=args.data_dir, epochs=args.epochs,
                                    train_size=args.train_size)
        try:
            run_experiment(m, settings, args.out, command=command)
        except DatasetNotFoundError as e:
            print(f"error: {m.NAME} needs the {settings.dataset} data: {e}\n"
                  "(pass --data-dir DIR, or run with --quick, which needs no data)", file=sys.stderr)
            return 1
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "experiment", help="re-run one of the paper's claims at small scale",
        description="Run one of the paper's claims at small scale over several seeds; writes "
                    "results.json, results.md and plots into a new folder under --out. "
                    "Experiments: " + ", ".join(EXPERIMENTS) + ".")
    p.add_argument("name", nargs="?", metavar="NAME", help="experiment to run, or 'all'")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--quick", action="store_true",
                   help="tiny synthetic data, one seed: checks the code path in seconds")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the experiment's)")
    p.add_argument("--dataset", choices=("fashion-mnist", "cifar10"), default=None,
                   help="dataset (default: the experiment's; CIFAR-10 for augmentation, "
                        "tower_filters, retrieval)")
    p.add_argument("--data-dir", default=None,
                   help="where the dataset is (for CIFAR-10 also a folder with train/<class>/ and "
                        "test/<class>/ images)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the experiment's)")
    p.add_argument("--train-size", type=int, default=None,
                   help="training images used (default: the experiment's)")
    p.add_argument("--out", default="runs", help="parent folder of the run folders")
    p.set_defaults(func=_cli)


__all__ = ["EXPERIMENTS", "get_experiment", "list_experiments", "run_experiment",
           "resolve_settings", "Settings", "register_cli"]
