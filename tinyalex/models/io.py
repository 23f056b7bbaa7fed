"""Saving and loading a model's weights as .npz (one array per parameter, plus the config).

    model.save("alexnet.npz")                 # atomic: temp file, then os.replace
    model.load("alexnet.npz")                 # into an existing model (checks names and shapes)
    model = load_model("alexnet.npz")         # rebuild from the stored config, then load

The file is a plain NumPy archive: ``numpy.load(path)["conv1.W"]`` works
without tinyalex. The config is stored as JSON in the entry "__config__".
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict

import numpy

from ..backend import to_host
from ..fileio import read_npz

__all__ = ["save_npz", "load_npz", "load_model", "CONFIG_KEY"]

CONFIG_KEY = "__config__"


def save_npz(path, state, config=None):
    """Write ``state`` (name -> array) and ``config`` (a JSON-able dict) to ``path`` atomically.

    The archive is written to a temporary file in the same directory and
    moved over ``path`` with ``os.replace``, so an interrupted save never
    leaves a half-written file where the old one was.
    """
    path = os.fspath(path)
    arrays = OrderedDict((name, numpy.ascontiguousarray(to_host(v))) for name, v in state.items())
    if CONFIG_KEY in arrays:
        raise ValueError(f"a parameter may not be called {CONFIG_KEY!r}")
    if config is not None:
        arrays[CONFIG_KEY] = numpy.array(json.dumps(dict(config)))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path):
    """Read a file written by :func:`save_npz`: (state dict of host arrays, config dict or None)."""
    data = read_npz(path, what="weights file")       # the one .npz reader: a damaged file is one clear error
    state = OrderedDict((k, v) for k, v in data.items() if k != CONFIG_KEY)
    config = json.loads(str(data[CONFIG_KEY])) if CONFIG_KEY in data else None
    return state, config


def load_model(path, devices=None, backend=None):
    """Rebuild the model stored in ``path`` from its config and load its weights.

    ``devices`` / ``backend`` place it (as :class:`~tinyalex.models.AlexNet`);
    a checkpoint of a split model loads into a one-device model and back.
    """
    from .alexnet import build_model

    state, config = load_npz(path)
    if config is None:
        raise ValueError(f"{path!r} has no model config ({CONFIG_KEY}); build the model yourself and "
                         f"call model.load({path!r})")
    config = dict(config)
    name = config.pop("name")
    if config.get("input_shape") is not None:
        config["input_shape"] = tuple(config["input_shape"])
    model = build_model(name, devices=devices, backend=backend, **config)
    return model.load_state_dict(state)
