"""The one atomic file writer: every file tinyalex saves goes through :func:`atomic_write`.

A file is first written to a temporary file in the same folder, flushed and
fsync'ed, then renamed over the target with ``os.replace`` (atomic on POSIX
and Windows). A crash, Ctrl-C or a full disk while writing leaves the
previous file untouched and no half-written file where it was.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path, write, mode="wb"):
    """Write a file atomically: ``write(fileobj)`` fills a temp file, then rename.

    On any exception the temporary file is removed and ``path`` keeps its
    previous content. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())      # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    """Atomically replace a text file (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
