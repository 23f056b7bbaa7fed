"""The one atomic file writer: every file tinyalex saves goes through :func:`atomic_write`.

A file is first written to a temporary file in the same folder, flushed and
fsync'ed, then renamed over the target with ``os.replace`` (atomic on POSIX
and Windows). A crash, Ctrl-C or a full disk while writing leaves the
previous file untouched and no half-written file where it was.

Every ``.npz`` tinyalex reads (checkpoints, weights, evaluate, predict, plot)
goes through :func:`read_npz`, which turns a damaged file into one clear
:class:`CorruptFileError`.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy

__all__ = ["atomic_write", "atomic_write_text", "read_npz", "CorruptFileError", "WriteError"]


class WriteError(OSError):
    """Writing a file failed (disk full, read-only folder, ...); the previous file is unchanged.

    ``errno`` is the underlying error's (``errno.ENOSPC`` for a full disk).
    """

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


def atomic_write(path, write, mode="wb"):
    """Write a file atomically: ``write(fileobj)`` fills a temp file, then rename.

    On any exception the temporary file is removed and ``path`` keeps its
    previous content. An ``OSError`` comes back as a :class:`WriteError`
    naming ``path`` and saying that its previous content survived.
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}", exc.errno) from exc
    try:
        os.chmod(tmp, 0o666 & ~_umask())      # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}; its previous version "
                             "(if any) is unchanged", exc.errno) from exc
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    """Atomically replace a text file (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


class CorruptFileError(ValueError):
    """A file tinyalex should read exists but is damaged (truncated, bit-flipped, not the right format)."""


def read_npz(path, what="file"):
    """Every array of a ``.npz`` archive as a dict: the one ``.npz`` reader of tinyalex.

    Loads with ``allow_pickle=False`` (a weights file can never run code) and
    reads every entry at once, so a truncated or bit-flipped archive fails
    here, with a :class:`CorruptFileError` naming the file, what is wrong and
    what to do, instead of a ``zipfile.BadZipFile`` traceback later. ``what``
    names the file's role in the message ("checkpoint", "model file").
    A missing file raises :class:`FileNotFoundError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise CorruptFileError(
            f"{path}: not a readable {what}: the .npz archive is truncated or damaged "
            f"({type(exc).__name__}: {exc}); use another copy, or the run's other .npz files "
            "(checkpoint.npz, best.npz, model.npz)") from exc
