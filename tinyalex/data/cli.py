"""``python -m tinyalex data``: find or fetch a dataset before training.

``data get fashion-mnist`` tries, in order: the usual search (``--data-dir``,
``$TINYALEX_DATA``, the user cache, ``/usr/share/datasets``), a download into
the user cache, and, on Debian or Ubuntu when run as root (or with
``--apt``), Debian's package ``dataset-fashion-mnist``. It prints where the
files are, so the README's first command works on a fresh machine with or
without internet access.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .datasets import find_cifar10, find_fashion_mnist, load_cifar10, load_fashion_mnist
from .errors import CorruptDatasetError, DatasetNotFoundError

# Debian packages that ship a dataset in the layout tinyalex reads.
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}
FINDERS = {"fashion-mnist": find_fashion_mnist, "cifar10": find_cifar10}
LOADERS = {"fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}
# The official split sizes: a copy with other counts is reported (it may be a deliberate subset).
SIZES = {"fashion-mnist": {"train": 60000, "test": 10000}, "cifar10": {"train": 50000, "test": 10000}}


def verify_dataset(name, path):
    """Read every file of dataset ``name`` found at ``path``: magic numbers, header sizes, exact lengths,
    label ranges (the loaders' checks). Returns {split: number of images}; raises CorruptDatasetError."""
    root = path.parent if path.is_file() else path
    return {split: len(LOADERS[name](root, split=split, download=False)) for split in ("train", "test")}


def _apt_install(package):
    """Install a Debian package with apt-get (refresh the lists first). True if it worked."""
    apt = shutil.which("apt-get")
    if apt is None:
        return False
    cmds = [[apt, "update", "-qq"], [apt, "install", "-y", "-qq", package]]
    for cmd in cmds:
        print("tinyalex: running " + " ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            return False
    return True


def get_dataset(name, root=None, download=True, apt=None):
    """Find (or fetch) dataset ``name`` and return its path.

    ``apt``: None = use Debian's package when apt-get exists and we are root;
    True = always try it; False = never.
    """
    find = FINDERS[name]
    try:
        return find(root, download=download)
    except DatasetNotFoundError:
        package = DEBIAN_PACKAGES.get(name)
        use_apt = apt if apt is not None else (shutil.which("apt-get") is not None and os.geteuid() == 0)
        if root is not None or package is None or not use_apt:
            raise
        print(f"tinyalex: {name} not found and not downloadable; installing Debian's package {package}",
              file=sys.stderr)
        if not _apt_install(package):
            raise
        return find(root, download=False)


def register_cli(subparsers):
    p = subparsers.add_parser(
        "data", help="find or fetch a dataset (Fashion-MNIST, CIFAR-10)",
        description=__doc__)
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    g = sub.add_parser("get", help="find the dataset, downloading it (or installing Debian's package) if missing")
    g.add_argument("name", choices=sorted(FINDERS), help="which dataset")
    g.add_argument("--data-dir", default=None, help="look only in this directory (default: the usual search)")
    g.add_argument("--no-download", action="store_true", help="never download")
    apt = g.add_mutually_exclusive_group()
    apt.add_argument("--apt", dest="apt", action="store_true", default=None,
                     help="install Debian's package if needed (default: only when root on Debian)")
    apt.add_argument("--no-apt", dest="apt", action="store_false", help="never install Debian's package")
    g.set_defaults(func=_cmd_get)


def _cmd_get(args):
    try:
        path = get_dataset(args.name, args.data_dir, download=not args.no_download, apt=args.apt)
    except DatasetNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        sizes = verify_dataset(args.name, path)
    except CorruptDatasetError as e:
        print(f"tinyalex: error: {args.name} was found in {path} but is damaged: {e}. Delete that copy and run "
              f"`python -m tinyalex data get {args.name}` again, or give --data-dir a good copy", file=sys.stderr)
        return 1
    official = SIZES[args.name]
    if sizes != official:
        print(f"tinyalex: warning: {path} holds {sizes['train']} training and {sizes['test']} test images; the "
              f"official {args.name} has {official['train']} and {official['test']} (a subset?)", file=sys.stderr)
    print(f"{args.name}: {path} ({sizes['train']} train + {sizes['test']} test images, every file checked)")
    return 0
