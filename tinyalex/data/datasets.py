"""The datasets tinyalex trains on, and ``load_dataset`` used by the CLI.

=================  ==========================  =====================
name               images                      where from
=================  ==========================  =====================
``fashion-mnist``  (N, 1, 28, 28) uint8, 10 cl  IDX files (default)
``cifar10``        (N, 3, 32, 32) uint8, 10 cl  python pickle batches
``imagefolder``    (N, C, H, W) uint8           root/<class>/*.jpg ...
``synthetic``      any shape, any classes       generated, for tests
=================  ==========================  =====================

File-based datasets are searched as described in ``sources.py``: explicit
root, ``$TINYALEX_DATA``, user cache, system path, download.
"""

from __future__ import annotations

import tarfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import sources
from .containers import ArrayDataset, Subset, as_indices, train_val_split
from .errors import CorruptDatasetError, DatasetNotFoundError
from .formats import (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, check_labels, parse_cifar_batch,
                      parse_cifar_meta, read_idx, unpickle)
from .imagefolder import load_image_folder

__all__ = [
    "ArrayDataset", "Subset", "as_indices", "train_val_split",
    "FASHION_MNIST_CLASSES", "find_fashion_mnist", "load_fashion_mnist",
    "find_cifar10", "load_cifar10", "make_synthetic", "load_dataset", "DATASET_NAMES",
]

SPLITS = ("train", "test")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


# ---------------------------------------------------------------------------
# Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60k train + 10k test, 28x28 gray
# ---------------------------------------------------------------------------
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# (images, labels) file stems per split; on disk with or without ".gz".
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of the official .gz files, checked after a download. (Debian recompresses
# its copies, so these are NOT checked for files found on disk; the IDX
# structure checks apply to every file.)
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def _idx_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem.gz`` or ``directory/stem``, whichever exists (gz first)."""
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _has_fashion_mnist(directory: Path) -> bool:
    stems = [s for pair in FASHION_MNIST_FILES.values() for s in pair]
    return all(_idx_file(directory, s) is not None for s in stems)


def _fashion_mnist_ways() -> list[str]:
    return [
        "pass the directory holding the four IDX files: --data-dir DIR (root=DIR in Python)",
        f"set {sources.ENV_VAR}=DIR, with the files in DIR/fashion-mnist or DIR",
        f"put the files in the user cache {sources.user_cache_dir('fashion-mnist')}",
        "install the Debian package (as root): apt-get install dataset-fashion-mnist "
        f"(files land in {sources.SYSTEM_DATA_DIR / 'fashion-mnist'})",
        f"download them (download=True, needs network) from {FASHION_MNIST_URL} : "
        + ", ".join(FASHION_MNIST_MD5),
    ]


def find_fashion_mnist(root=None, download: bool = True) -> Path:
    """The directory holding all four Fashion-MNIST IDX files.

    Searches ``root`` (only), else ``$TINYALEX_DATA[/fashion-mnist]``, the user
    cache, ``/usr/share/datasets/fashion-mnist``; then downloads into the cache
    if ``download`` (and no explicit root). Raises DatasetNotFoundError listing
    every way to get the data.
    """
    candidates = sources.candidate_dirs("fashion-mnist", root)
    for _, directory in candidates:
        if _has_fashion_mnist(directory):
            return directory
    error = None
    if download and root is None:
        cache = sources.user_cache_dir("fashion-mnist")
        try:
            for name, md5 in FASHION_MNIST_MD5.items():
                if _idx_file(cache, name[:-3]) is None:
                    sources.download_url(FASHION_MNIST_URL + name, cache / name, md5=md5)
            return cache
        except OSError as e:  # URLError, timeouts, checksum mismatch, disk full...
            error = e
    raise DatasetNotFoundError(sources.not_found_message(
        "Fashion-MNIST", [d for _, d in candidates], _fashion_mnist_ways(), error))


def load_fashion_mnist(root=None, split: str = "train", download: bool = True) -> ArrayDataset:
    """Fashion-MNIST ``split`` as an ArrayDataset: images (N, 1, 28, 28) uint8.

    Every file is validated (gzip stream, IDX magic 2051/2049, 28x28 size,
    exact length, equal image and label counts, labels 0..9); any problem
    raises CorruptDatasetError naming the file.
    """
    directory = find_fashion_mnist(root, download)
    image_stem, label_stem = FASHION_MNIST_FILES[_check_split(split)]
    image_path, label_path = _idx_file(directory, image_stem), _idx_file(directory, label_stem)
    images = read_idx(image_path, IDX_IMAGES_MAGIC)
    labels = read_idx(label_path, IDX_LABELS_MAGIC).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise CorruptDatasetError(f"{image_path}: images are {images.shape[1:]}, expected (28, 28)")
    if len(images) != len(labels):
        raise CorruptDatasetError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    check_labels(labels, len(FASHION_MNIST_CLASSES), label_path)
    return ArrayDataset(images[:, None], labels, FASHION_MNIST_CLASSES)


# ---------------------------------------------------------------------------
# CIFAR-10 (Krizhevsky 2009): 50k train + 10k test, 32x32 RGB
# ---------------------------------------------------------------------------
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR10_META = "batches.meta"


def _has_cifar10_dir(directory: Path) -> bool:
    names = CIFAR10_BATCHES["train"] + CIFAR10_BATCHES["test"] + [CIFAR10_META]
    return all((directory / n).is_file() for n in names)


def _cifar10_ways() -> list[str]:
    return [
        f"pass the directory holding {CIFAR10_DIRNAME}/ or {CIFAR10_ARCHIVE}: "
        "--data-dir DIR (root=DIR in Python)",
        f"set {sources.ENV_VAR}=DIR, with them in DIR/cifar10 or DIR",
        f"put them in the user cache {sources.user_cache_dir('cifar10')}",
        f"download (download=True, needs network): {CIFAR10_URL}",
        "or use a folder of images (e.g. a JPEG copy of CIFAR-10) with the "
        "'imagefolder' dataset and --data-dir",
    ]


def find_cifar10(root=None, download: bool = True) -> Path:
    """A CIFAR-10 batches directory or ``cifar-10-python.tar.gz`` archive.

    In each searched directory B (same order as Fashion-MNIST, without a
    system path): ``B/cifar-10-batches-py/``, ``B`` itself, then
    ``B/cifar-10-python.tar.gz``. Downloads the archive into the user cache
    if nothing is found and ``download`` (and no explicit root).
    """
    candidates = sources.candidate_dirs("cifar10", root, system=False)
    for _, base in candidates:
        for directory in (base / CIFAR10_DIRNAME, base):
            if _has_cifar10_dir(directory):
                return directory
        if (base / CIFAR10_ARCHIVE).is_file():
            return base / CIFAR10_ARCHIVE
    error = None
    if download and root is None:
        dest = sources.user_cache_dir("cifar10") / CIFAR10_ARCHIVE
        try:
            return sources.download_url(CIFAR10_URL, dest, md5=CIFAR10_MD5)
        except OSError as e:
            error = e
    raise DatasetNotFoundError(sources.not_found_message(
        "CIFAR-10", [d for _, d in candidates], _cifar10_ways(), error))


@contextmanager
def _cifar10_members(path: Path):
    """Yield ``open_member(name) -> binary file`` for a batches dir or a tar.gz archive.

    Archive members are read straight from the tar (no extraction to disk).
    """
    if path.is_dir():
        yield lambda name: open(path / name, "rb")
        return
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise CorruptDatasetError(f"{path}: not a readable tar archive ({e})") from e
    with archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}

        def open_member(name):
            if name not in members:
                raise CorruptDatasetError(f"{path}: archive has no member {name}")
            return archive.extractfile(members[name])

        yield open_member


def load_cifar10(root=None, split: str = "train", download: bool = True) -> ArrayDataset:
    """CIFAR-10 ``split`` as an ArrayDataset: images (N, 3, 32, 32) uint8.

    Class names come from ``batches.meta``. Each batch is validated (uint8
    (n, 3072) data, n labels in 0..9); problems raise CorruptDatasetError.
    """
    path = find_cifar10(root, download)
    images, labels = [], []
    try:
        with _cifar10_members(path) as open_member:
            with open_member(CIFAR10_META) as f:
                classes = parse_cifar_meta(unpickle(f, f"{path}/{CIFAR10_META}"), CIFAR10_META)
            for name in CIFAR10_BATCHES[_check_split(split)]:
                with open_member(name) as f:
                    x, y = parse_cifar_batch(unpickle(f, f"{path}/{name}"), f"{path}/{name}")
                images.append(x)
                labels.append(y)
    except (tarfile.TarError, EOFError, zlib.error) as e:  # damaged archive body
        raise CorruptDatasetError(f"{path}: damaged archive ({e})") from e
    return ArrayDataset(np.concatenate(images), np.concatenate(labels), classes)


# ---------------------------------------------------------------------------
# Synthetic data for smoke tests and CI (no files needed)
# ---------------------------------------------------------------------------
def make_synthetic(n: int = 512, image_shape=(3, 32, 32), num_classes: int = 10,
                   seed: int = 0, split: str = "train", noise: float = 0.5) -> ArrayDataset:
    """Deterministic random images with a learnable class-dependent pattern.

    Class c has a fixed prototype P_c: a random 4x4 (per channel) pattern in
    [-1, 1] blown up to H x W (depends on ``seed`` only, so train and test
    share it). An image of class c is
        x = clip(128 + 127 * ((1 - noise) * P_c + noise * z), 0, 255),  z ~ N(0, 1)
    with z drawn from ``default_rng([seed, split])``: train and test differ
    but each is reproducible. Labels are balanced and shuffled.
    """
    if n < 1 or num_classes < 1:
        raise ValueError("n and num_classes must be >= 1")
    c, h, w = image_shape
    proto_rng = np.random.default_rng([seed, 0])
    small = proto_rng.uniform(-1, 1, size=(num_classes, c, 4, 4))
    rows, cols = (np.arange(h) * 4) // h, (np.arange(w) * 4) // w
    prototypes = small[:, :, rows][:, :, :, cols]                      # (K, C, H, W)
    rng = np.random.default_rng([seed, 1 + SPLITS.index(_check_split(split))])
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    z = rng.standard_normal((n, c, h, w))
    x = 128 + 127 * ((1 - noise) * prototypes[labels] + noise * z)
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return ArrayDataset(images, labels, [f"class{k}" for k in range(num_classes)])


def _load_synthetic(root=None, split="train", **kwargs):
    kwargs.pop("download", None)
    kwargs.setdefault("n", 512 if split == "train" else 128)
    return make_synthetic(split=split, **kwargs)


def _load_imagefolder(root=None, split="train", **kwargs):
    if root is None:
        raise ValueError("the 'imagefolder' dataset needs root=DIR (--data-dir DIR)")
    kwargs.pop("download", None)
    return load_image_folder(root, split=split, **kwargs)


_LOADERS = {
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "imagefolder": _load_imagefolder,
    "synthetic": _load_synthetic,
}
DATASET_NAMES = tuple(_LOADERS)
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
            "cifar-10": "cifar10", "cifar_10": "cifar10", "image-folder": "imagefolder",
            "folder": "imagefolder"}


def load_dataset(name: str, root=None, split: str = "train", **kwargs):
    """Load dataset ``name`` (one of DATASET_NAMES) for ``split`` ('train' or 'test').

    ``kwargs`` go to the specific loader: ``download`` (fashion-mnist,
    cifar10); ``classes``, ``image_size``, ``grayscale``, ``resize_mode``,
    ``in_memory``, ``limit_per_class`` (imagefolder, see
    ``load_image_folder``); ``n``, ``image_shape``, ``num_classes``, ``seed``
    (synthetic). Returns an object with the dataset interface (containers.py).
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    return _LOADERS[key](root=root, split=_check_split(split), **kwargs)
