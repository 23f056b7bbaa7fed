"""Checkpoints: one ``.npz`` file, written atomically, enough to resume exactly.

A checkpoint is a NumPy ``.npz`` archive (no pickle: it loads with
``allow_pickle=False``) holding arrays under prefixed names and one JSON
document::

    meta                   0-d string: JSON (format, kind, epoch, step, configs,
                           class names, optimizer hyperparameters, schedule state,
                           loader position, metrics so far, ...)
    model/<name>           parameters, e.g. model/conv1.W (host copies)
    velocity/<name>        SGD velocities
    pipeline/<key>         Pipeline.state_dict(): config, mean image, PCA
    rng/<backend:device>   the dropout generators' states (backend.DeviceGenerators)

Atomic writing
--------------
The file is first written to a temporary file in the same folder, flushed
and fsync'ed, then renamed over the old one with ``os.replace`` (atomic on
POSIX and Windows). A crash or Ctrl-C while writing leaves the previous
checkpoint untouched and at most a stray ``.*.tmp`` file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy

from ..fileio import CorruptFileError, atomic_write, read_npz

FORMAT = "tinyalex-checkpoint"
VERSION = 1
PREFIXES = ("model", "velocity", "pipeline", "rng")


def save_checkpoint(path, meta: dict, model=None, velocity=None, pipeline=None, rng=None):
    """Write a checkpoint atomically.

    ``meta`` is JSON-serialisable; ``model``, ``velocity``, ``pipeline``, ``rng``
    are dicts of host arrays (``model.state_dict()``, the optimizer's velocities,
    ``pipeline.state_dict()``, ``DeviceGenerators.state_dict()``).
    """
    arrays = {"meta": numpy.array(json.dumps(dict(meta, format=FORMAT, version=VERSION)))}
    for prefix, group in zip(PREFIXES, (model, velocity, pipeline, rng)):
        for name, value in (group or {}).items():
            arrays[f"{prefix}/{name}"] = numpy.asarray(value)
    return atomic_write(path, lambda f: numpy.savez(f, **arrays))


class Checkpoint:
    """A loaded checkpoint: ``meta`` (dict) and ``model``, ``velocity``, ``pipeline``, ``rng`` (dicts of arrays)."""

    def __init__(self, meta, groups, path):
        self.meta = meta
        self.model = groups["model"]
        self.velocity = groups["velocity"]
        self.pipeline = groups["pipeline"]
        self.rng = groups["rng"]
        self.path = Path(path)

    def __repr__(self):
        return (f"Checkpoint({self.path}, kind={self.meta.get('kind')}, epoch={self.meta.get('epoch')}, "
                f"{len(self.model)} parameters)")


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle).

    A damaged file raises :class:`~tinyalex.fileio.CorruptFileError` (a
    ValueError) naming it; a readable archive that is not a tinyalex
    checkpoint raises ValueError.
    """
    path = Path(path)
    arrays = read_npz(path, what="tinyalex checkpoint")
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a tinyalex checkpoint (no 'meta' entry); give a checkpoint.npz, "
                         "model.npz or best.npz written by tinyalex")
    try:
        meta = json.loads(str(arrays["meta"][()]))
    except ValueError as exc:
        raise CorruptFileError(f"{path}: not a readable tinyalex checkpoint (its 'meta' entry is damaged: "
                               f"{exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tinyalex checkpoint (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    groups = {p: {} for p in PREFIXES}
    for key, value in arrays.items():
        prefix, _, name = key.partition("/")
        if prefix in groups and name:
            groups[prefix][name] = value
    return Checkpoint(meta, groups, path)
