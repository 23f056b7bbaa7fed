"""The one weights file: a model's parameters and config in a plain .npz.

    model.save("alexnet.npz")                 # atomic (tinyalex.fileio.atomic_write)
    model.load("alexnet.npz")                 # into an existing model (checks names and shapes)
    model = load_model("alexnet.npz")         # rebuild from the stored config, then load

Entries of the archive::

    conv1.W, conv1.b, ..., fc8.b    the weights, by state-dict name
    __config__                      JSON: the model's config (build_model(**config) rebuilds it)
    __meta__                        JSON, optional: what the writer adds (training: classes, epoch, ...)
    <group>/<name>                  optional arrays the writer adds (training: pipeline/mean, ...)

``numpy.load(path)["conv1.W"]`` works without tinyalex. Training writes its
``model.npz`` and ``best.npz`` in this format; :func:`read_npz` also reads
training checkpoints (``checkpoint.npz``, and ``model.npz`` files written
before this format was shared), whose weights are stored as ``model/<name>``.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import NamedTuple

import numpy

from ..backend import to_host
from ..fileio import atomic_write
from ..fileio import read_npz as read_archive

__all__ = ["save_npz", "load_npz", "read_npz", "WeightsFile", "CONFIG_KEY", "META_KEY"]

CONFIG_KEY = "__config__"
META_KEY = "__meta__"
CHECKPOINT_FORMAT = "tinyalex-checkpoint"     # train/checkpoint.py's files: "meta" + "model/<name>"


class WeightsFile(NamedTuple):
    """What a weights file holds: ``state`` (name -> host array), ``config`` (dict or None),
    ``meta`` (dict, empty if none), ``extras`` (group -> {name: array})."""

    state: "OrderedDict[str, numpy.ndarray]"
    config: dict | None
    meta: dict
    extras: dict


def save_npz(path, state, config=None, meta=None, extras=None):
    """Write ``state`` (name -> array) with ``config``, ``meta`` (JSON-able dicts) and
    ``extras`` (group -> {name: array}) to ``path``, atomically: an interrupted save
    leaves the old file intact and no temporary file behind."""
    arrays = OrderedDict((name, numpy.ascontiguousarray(to_host(v))) for name, v in state.items())
    bad = [name for name in arrays if "/" in name or name in (CONFIG_KEY, META_KEY)]
    if bad:
        raise ValueError(f"parameter names may not contain '/' or be {CONFIG_KEY!r}/{META_KEY!r}: {bad}")
    if config is not None:
        arrays[CONFIG_KEY] = numpy.array(json.dumps(dict(config)))
    if meta is not None:
        arrays[META_KEY] = numpy.array(json.dumps(dict(meta)))
    for group, group_arrays in (extras or {}).items():
        for name, value in group_arrays.items():
            arrays[f"{group}/{name}"] = numpy.asarray(to_host(value))
    atomic_write(os.fspath(path), lambda f: numpy.savez(f, **arrays))


def read_npz(path) -> WeightsFile:
    """Read a weights file written by :func:`save_npz` (or a training checkpoint)."""
    entries = read_archive(path, what="weights file")   # the one .npz reader: a damaged file is one clear error
    if "meta" in entries:                                   # a training checkpoint: meta + model/<name>
        meta = json.loads(str(entries.pop("meta")[()]))
        if meta.get("format") == CHECKPOINT_FORMAT:
            groups = _groups(entries)
            return WeightsFile(groups.pop("model", OrderedDict()), meta.get("model_config") or None, meta, groups)
        entries["meta"] = numpy.array(json.dumps(meta))
    config = json.loads(str(entries.pop(CONFIG_KEY)[()])) if CONFIG_KEY in entries else None
    meta = json.loads(str(entries.pop(META_KEY)[()])) if META_KEY in entries else {}
    state = OrderedDict((k, v) for k, v in entries.items() if "/" not in k)
    return WeightsFile(state, config, meta, _groups(entries))


def load_npz(path):
    """(state dict of host arrays, config dict or None) of a weights file."""
    f = read_npz(path)
    return f.state, f.config


def _groups(entries):
    groups = {}
    for key, value in entries.items():
        group, _, name = key.partition("/")
        if name:
            groups.setdefault(group, OrderedDict())[name] = value
    return groups
