"""Datasets from folders of image files: ``root/<class>/*.jpg`` and friends.

Two layouts are understood::

    root/<class>/<image>                      (one split: 'train'; split it
                                               yourself with train_val_split)
    root/train/<class>/<image>, root/test/<class>/<image>   (also root/val)

Class folders are sorted by name; label k is ``classes[k]``. Files are
decoded with Pillow, converted to RGB (or grayscale), and optionally resized
to a fixed size (needed when the images have mixed sizes).

Memory stays bounded for large folders: ``ImageFolderDataset`` keeps only
the file list and decodes the images of a batch when asked. For small
datasets (e.g. the 32x32 JPEG copy of CIFAR-10, about 180 MB decoded),
``in_memory=True`` decodes everything once into an ``ArrayDataset``.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .containers import ArrayDataset, as_indices
from .errors import CorruptDatasetError, DatasetNotFoundError
from .transforms import resize_and_center_crop, resize_image

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm",
                    ".tif", ".tiff", ".webp"}
RESIZE_MODES = ("crop", "stretch")
# in_memory="auto" loads into memory when the decoded images fit in this many bytes.
AUTO_IN_MEMORY_BYTES = 1 << 30
_WORKERS = min(4, os.cpu_count() or 1)


def decode_errors():
    """Exceptions that mean 'this file is not a readable image'."""
    return (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def decode_image(path, grayscale: bool = False, size=None, resize_mode: str = "crop") -> np.ndarray:
    """Decode one image file to a uint8 HWC array (C = 3, or 1 if ``grayscale``).

    ``size`` (int or (h, w)) resizes: ``resize_mode='crop'`` rescales so the
    image covers the size, then centre-crops (the paper's section 2 recipe:
    shorter side to 256, central 256x256); ``'stretch'`` resizes directly,
    ignoring the aspect ratio.
    """
    with Image.open(path) as im:
        im = im.convert("L" if grayscale else "RGB")
        if size is not None:
            im = resize_and_center_crop(im, size) if resize_mode == "crop" else resize_image(im, size)
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _warn_skipped(bad: list[str], where) -> None:
    """One warning for all unreadable files: their count and the first few names."""
    if not bad:
        return
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    warnings.warn(f"skipped {len(bad)} unreadable image file(s) in {where}: {shown}",
                  stacklevel=3)


# ---------------------------------------------------------------------------
# Finding the files
# ---------------------------------------------------------------------------
def _class_dirs(directory: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))


def split_dir(root, split: str = "train") -> Path:
    """The folder holding the class folders of ``split`` (see module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist or is not a directory")
    if (root / "train").is_dir():
        names = ("train",) if split == "train" else ("test", "val")
        for name in names:
            if (root / name).is_dir():
                return root / name
        raise DatasetNotFoundError(f"{root} has train/ but no {' or '.join(names)}/ folder")
    if split == "train":
        return root
    raise DatasetNotFoundError(
        f"{root} has no train/ and test/ subfolders, so no {split} split: load split='train' "
        "and divide it with tinyalex.data.train_val_split")


def list_classes(root, classes=None) -> list[str]:
    """Class names of the folder (from the train split), optionally filtered.

    ``classes=['cat', 'dog']`` keeps only those, in that order (label 0 = cat).
    A requested class that does not exist raises ValueError naming it and
    the available ones.
    """
    directory = split_dir(root, "train")
    available = _class_dirs(directory)
    if classes is None:
        if not available:
            raise DatasetNotFoundError(f"{directory} has no class subfolders")
        return available
    classes = list(classes)
    missing = [c for c in classes if c not in available]
    if missing:
        raise ValueError(f"class(es) {missing} not found in {directory}; "
                         f"available: {', '.join(available) or '(none)'}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate class names in {classes}")
    return classes


def scan_files(directory, classes, limit_per_class=None) -> tuple[list[str], np.ndarray]:
    """Image files under ``directory/<class>/`` (not recursive), sorted by name.

    Returns (paths, labels int64). Files with other extensions and hidden
    files are ignored; a missing class folder just contributes no files.
    ``limit_per_class`` keeps the first k files of each class.
    """
    files, labels = [], []
    for label, name in enumerate(classes):
        class_dir = Path(directory) / name
        if not class_dir.is_dir():
            continue
        names = sorted(e.name for e in os.scandir(class_dir) if e.is_file()
                       and not e.name.startswith(".")
                       and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
        names = names[:limit_per_class] if limit_per_class is not None else names
        files += [str(class_dir / n) for n in names]
        labels += [label] * len(names)
    return files, np.asarray(labels, dtype=np.int64)


def _readable_header(path) -> bool:
    """True if Pillow can identify the file (reads the header only, fast)."""
    try:
        with Image.open(path) as im:
            im.size
        return True
    except decode_errors():
        return False


# ---------------------------------------------------------------------------
# The lazy dataset
# ---------------------------------------------------------------------------
class ImageFolderDataset:
    """Images decoded from files on demand; keeps only paths and labels in memory.

    ``get_batch(indices)`` decodes exactly the files at ``indices`` (in a
    few threads) and returns (uint8 (n, C, H, W), int64 (n,)). All images of
    a batch must have the same size: pass ``image_size`` for folders of
    mixed sizes. A file that fails to decode here raises CorruptDatasetError.
    """

    def __init__(self, files, labels, classes, image_size=None, grayscale=False,
                 resize_mode="crop", root=None):
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        self.files = list(files)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)
        self.image_size = None if image_size is None else (
            (int(image_size),) * 2 if np.isscalar(image_size) else tuple(map(int, image_size)))
        self.grayscale = grayscale
        self.resize_mode = resize_mode
        self.root = root
        self._shape = None
        if len(self.labels) != len(self.files):
            raise ValueError("files and labels must have the same length")

    def __len__(self) -> int:
        return len(self.files)

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    @property
    def image_shape(self) -> tuple:
        """(C, H, W): from image_size, else from the first file's header."""
        if self._shape is None:
            if self.image_size is not None:
                self._shape = (self.channels,) + self.image_size
            elif not self.files:
                raise ValueError("empty dataset has no image shape")
            else:
                with Image.open(self.files[0]) as im:
                    w, h = im.size
                self._shape = (self.channels, h, w)
        return self._shape

    def _decode(self, path):
        try:
            return decode_image(path, self.grayscale, self.image_size, self.resize_mode)
        except decode_errors() as e:
            raise CorruptDatasetError(f"{path}: cannot decode image ({e})") from e

    def get_batch(self, indices):
        idx = as_indices(indices, len(self))
        paths = [self.files[i] for i in idx]
        with ThreadPoolExecutor(_WORKERS) as pool:
            arrays = list(pool.map(self._decode, paths))
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"images of different sizes {sorted(shapes)} in one batch; "
                             "pass image_size=... to resize them")
        images = np.stack(arrays) if arrays else np.zeros((0,) + self.image_shape[1:] + (self.channels,), np.uint8)
        return images.transpose(0, 3, 1, 2).copy(), self.labels[idx]

    __getitem__ = get_batch

    def load_all(self, skip_unreadable: bool = True) -> ArrayDataset:
        """Decode every image into an ArrayDataset (unreadable ones skipped with one warning)."""
        def try_decode(path):
            try:
                return decode_image(path, self.grayscale, self.image_size, self.resize_mode)
            except decode_errors():
                return None

        n = len(self.files)
        images, keep, bad = None, np.zeros(n, dtype=bool), []
        with ThreadPoolExecutor(_WORKERS) as pool:
            for i, arr in enumerate(pool.map(try_decode, self.files)):
                if arr is None:
                    if not skip_unreadable:
                        raise CorruptDatasetError(f"{self.files[i]}: cannot decode image")
                    bad.append(self._relative(self.files[i]))
                    continue
                if images is None:  # allocate once, from the first good image's shape
                    images = np.empty((n, arr.shape[2]) + arr.shape[:2], dtype=np.uint8)
                if arr.shape[:2] != images.shape[2:]:
                    raise ValueError(f"{self.files[i]} is {arr.shape[:2]}, other images are "
                                     f"{images.shape[2:]}; pass image_size=... to resize them")
                images[i] = arr.transpose(2, 0, 1)
                keep[i] = True
        _warn_skipped(bad, self.root)
        if images is None:
            raise DatasetNotFoundError(f"no readable images in {self.root}")
        return ArrayDataset(images[keep], self.labels[keep], self.classes)

    def _relative(self, path) -> str:
        return os.path.relpath(path, self.root) if self.root else str(path)

    def __repr__(self) -> str:
        return f"ImageFolderDataset(n={len(self)}, classes={len(self.classes)}, root={self.root!r})"


def load_image_folder(root, split: str = "train", classes=None, image_size=None,
                      grayscale: bool = False, resize_mode: str = "crop", in_memory="auto",
                      limit_per_class=None, verify: bool = True):
    """Load an image-folder dataset (see the module docstring for the layouts).

    Parameters
    ----------
    classes : keep only these classes, label k = classes[k] (default: all, sorted)
    image_size : int or (h, w); resize every image (needed for mixed sizes).
        ``resize_mode='crop'`` (default): scale to cover, centre-crop (paper
        sec. 2, e.g. image_size=256 for ImageNet); ``'stretch'``: plain resize.
    grayscale : decode to 1 channel instead of RGB
    in_memory : True -> decode everything now, return an ArrayDataset;
        False -> lazy ImageFolderDataset; 'auto' (default) -> in memory if the
        decoded images take at most 1 GiB.
    limit_per_class : keep only the first k files of each class (quick tests)
    verify : for lazy datasets, open every file's header now so that
        unreadable files are skipped up front (one warning) instead of
        failing in the middle of training.

    Unreadable files are skipped with ONE warning counting and naming them.
    """
    if in_memory not in (True, False, "auto"):
        raise ValueError(f"in_memory must be True, False or 'auto', got {in_memory!r}")
    class_names = list_classes(root, classes)
    directory = split_dir(root, split)
    files, labels = scan_files(directory, class_names, limit_per_class)
    if not files:
        raise DatasetNotFoundError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) "
                                   f"in the class folders of {directory}")
    ds = ImageFolderDataset(files, labels, class_names, image_size, grayscale, resize_mode,
                            root=str(directory))
    if in_memory == "auto":
        in_memory = _fits_in_memory(ds)
    if in_memory:
        return ds.load_all()
    if verify:
        with ThreadPoolExecutor(_WORKERS) as pool:
            ok = np.fromiter(pool.map(_readable_header, files), dtype=bool, count=len(files))
        _warn_skipped([ds._relative(f) for f, good in zip(files, ok) if not good], directory)
        ds = ImageFolderDataset([f for f, good in zip(files, ok) if good], labels[ok], class_names,
                                image_size, grayscale, resize_mode, root=str(directory))
    return ds


def _fits_in_memory(ds: ImageFolderDataset) -> bool:
    """Does the decoded dataset fit in AUTO_IN_MEMORY_BYTES? (size from image_size or a header)"""
    if ds.image_size is not None:
        h, w = ds.image_size
    else:
        for path in ds.files[:20]:  # the first file whose header Pillow can read
            try:
                with Image.open(path) as im:
                    w, h = im.size
                break
            except decode_errors():
                continue
        else:
            return False  # cannot tell: stay lazy (bounded memory)
    return len(ds) * ds.channels * h * w <= AUTO_IN_MEMORY_BYTES
