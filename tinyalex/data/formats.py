"""Readers for the on-disk formats of Fashion-MNIST (IDX) and CIFAR-10 (pickle).

Both readers validate everything they can and raise CorruptDatasetError
(naming the file and the problem) instead of returning wrong data.
"""

from __future__ import annotations

import gzip
import importlib
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import CorruptDatasetError

# ---------------------------------------------------------------------------
# IDX (LeCun's MNIST format, also used by Fashion-MNIST)
#
#   bytes 0-1  zero
#   byte  2    element type, 0x08 = unsigned byte
#   byte  3    number of dimensions d
#   then d big-endian uint32 sizes, then prod(sizes) bytes of data (row-major)
#
# So the 32-bit big-endian "magic number" is 0x0803 = 2051 for a 3-D uint8
# array (images: N x rows x cols) and 0x0801 = 2049 for a 1-D one (labels).
# ---------------------------------------------------------------------------
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
_GZIP_MAGIC = b"\x1f\x8b"


def read_maybe_gzip(path) -> bytes:
    """All bytes of ``path``, gunzipped if the file is gzip-compressed.

    Compression is detected from the content (gzip magic bytes), not the file
    name, so both ``x-idx3-ubyte.gz`` and an un-gzipped ``x-idx3-ubyte`` work.
    """
    raw = Path(path).read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise CorruptDatasetError(f"{path}: corrupt or truncated gzip data ({e})") from e


def parse_idx(data: bytes, path, expected_magic: int) -> np.ndarray:
    """Decode an IDX byte string into a uint8 array of the shape in its header.

    Checks the magic number and that the data length equals the header's
    promise exactly (a short file is truncated, a long one is not IDX).
    """
    if len(data) < 4:
        raise CorruptDatasetError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
        raise CorruptDatasetError(
            f"{path}: bad IDX magic number {magic} (expected {expected_magic} for {kind}); "
            "wrong or damaged file")
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise CorruptDatasetError(f"{path}: truncated IDX header ({len(data)} of {header_len} bytes)")
    dims = struct.unpack(">" + "I" * ndim, data[4:header_len])
    n_expected = int(np.prod(dims, dtype=np.int64))
    n_actual = len(data) - header_len
    if n_actual != n_expected:
        what = "truncated" if n_actual < n_expected else "has trailing bytes"
        raise CorruptDatasetError(
            f"{path}: {what}: header says shape {dims} = {n_expected} bytes of data, "
            f"file has {n_actual}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def read_idx(path, expected_magic: int) -> np.ndarray:
    """Read an IDX file (gzipped or not); see ``parse_idx``."""
    return parse_idx(read_maybe_gzip(path), path, expected_magic)


# ---------------------------------------------------------------------------
# CIFAR-10 "python version": pickled dicts, one per batch file
#   data_batch_1..5, test_batch: {b"data": uint8 (n, 3072), b"labels": [int]*n, ...}
#   batches.meta:                {b"label_names": [b"airplane", ...], ...}
# A row of ``data`` is the 1024 red, then 1024 green, then 1024 blue values
# of a 32x32 image, each plane row-major: reshape(n, 3, 32, 32) gives NCHW.
# ---------------------------------------------------------------------------
CIFAR_SHAPE = (3, 32, 32)

# The only globals a CIFAR batch needs to unpickle: a numpy array (and, in
# protocol-2 pickles written by Python 3, _codecs.encode for bytes objects).
# Anything else is refused, because unpickling can run arbitrary code.
_PICKLE_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that only resolves numpy array constructors."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core"):  # renamed numpy._core in NumPy 2
            try:
                return getattr(importlib.import_module("numpy._core" + module[10:]), name)
            except ImportError:
                pass
        return super().find_class(module, name)


def unpickle(fileobj, name) -> dict:
    """Load one CIFAR pickle (keys come back as bytes, as ``encoding="bytes"``)."""
    try:
        obj = _NumpyOnlyUnpickler(fileobj, encoding="bytes").load()
    except Exception as e:  # pickle raises many types on garbage input
        raise CorruptDatasetError(f"{name}: cannot unpickle CIFAR batch ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise CorruptDatasetError(f"{name}: expected a pickled dict, got {type(obj).__name__}")
    # Python-2 pickles give bytes keys; accept str keys too.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def parse_cifar_batch(obj: dict, name, num_classes: int = 10):
    """Validate an unpickled CIFAR batch; return (images (n,3,32,32) uint8, labels (n,) int64)."""
    if "data" not in obj or "labels" not in obj:
        raise CorruptDatasetError(f"{name}: CIFAR batch lacks 'data' or 'labels' (keys: {sorted(obj)})")
    data = np.asarray(obj["data"])
    row = int(np.prod(CIFAR_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row:
        raise CorruptDatasetError(
            f"{name}: 'data' must be uint8 of shape (n, {row}), got {data.dtype} {data.shape}")
    try:
        labels = np.asarray(obj["labels"], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise CorruptDatasetError(f"{name}: 'labels' are not integers ({e})") from e
    if labels.shape != (data.shape[0],):
        raise CorruptDatasetError(
            f"{name}: {data.shape[0]} images but labels have shape {labels.shape}")
    check_labels(labels, num_classes, name)
    return data.reshape((-1,) + CIFAR_SHAPE).copy(), labels


def parse_cifar_meta(obj: dict, name, num_classes: int = 10) -> list[str]:
    """Class names from an unpickled ``batches.meta``."""
    names = obj.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != num_classes:
        raise CorruptDatasetError(f"{name}: expected {num_classes} 'label_names', got {names!r:.80}")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def check_labels(labels: np.ndarray, num_classes: int, name) -> None:
    """Raise CorruptDatasetError unless every label is in 0..num_classes-1."""
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise CorruptDatasetError(
            f"{name}: {bad.size} labels out of range 0..{num_classes - 1} (e.g. {int(bad[0])})")
