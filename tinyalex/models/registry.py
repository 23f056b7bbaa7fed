"""Every network by name: the one entry point that training, the CLI, the bench and the notebooks use.

    build_model("alexnet-small", width=0.5, fast=False)     # MODELS["alexnet-small"](width=0.5, fast=False)
    load_model("runs/fmnist/model.npz")                    # rebuilt from the file's config, weights loaded

A network registers by adding its builder to :data:`MODELS`: a function
whose signature states the network's own numbers (``num_classes``,
``input_shape``, ...), taking the common options (``fast``, ``dtype``,
``seed``, ``devices``, ``backend``, ...) and returning the model, whose
``config`` holds ``name`` and every option, so that
``build_model(**model.config)`` builds it again.
"""
from __future__ import annotations

import inspect

from .alexnet import alexnet, alexnet_cifar, alexnet_small
from .io import read_npz

__all__ = ["MODELS", "build_model", "model_names", "load_model", "default_input_shape"]

MODELS = {
    "alexnet": alexnet,                 # the paper's net, 3x227x227, 1000 classes
    "alexnet-small": alexnet_small,     # 1x28x28 (Fashion-MNIST), 10 classes
    "alexnet-fmnist": alexnet_small,    # another name for it
    "alexnet-cifar": alexnet_cifar,     # 3x32x32 (CIFAR-10), 10 classes
}


def model_names():
    """The names :func:`build_model` accepts."""
    return list(MODELS)


def _builder(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return MODELS[name]


def build_model(name="alexnet", num_classes=None, **options):
    """Build a model by name (see :data:`MODELS`); ``options`` are the builder's (width, devices,
    init, dtype, fast, ...). An option given as None means the model's own value (``seed=None``
    still means fresh entropy). ``build_model(**model.config)`` rebuilds a model."""
    options = {k: v for k, v in dict(options, num_classes=num_classes).items() if v is not None or k == "seed"}
    return _builder(name)(**options)


def default_input_shape(name):
    """(C, H, W) the named model takes by default, without building it (from its builder or class)."""
    shape = inspect.signature(_builder(name)).parameters.get("input_shape")
    if shape is not None and shape.default is not inspect.Parameter.empty:
        return tuple(shape.default)
    raise ValueError(f"model {name!r} does not declare a default input_shape")


def load_model(path, devices=None, backend=None, fast=True):
    """Rebuild the model stored in ``path`` from its config and load its weights.

    ``path``: a file written by ``model.save`` or by training (model.npz,
    best.npz, checkpoint.npz). ``devices`` / ``backend`` / ``fast`` place it
    and choose its implementations; weights of a split model load into a
    one-device model and back.
    """
    f = read_npz(path)
    if not f.config:
        raise ValueError(f"{path!r} has no model config; build the model yourself and call model.load({path!r})")
    return model_from_weights(f, devices=devices, backend=backend, fast=fast)


def model_from_weights(f, devices=None, backend=None, fast=True):
    """The model described by a read weights file (:func:`~tinyalex.models.io.read_npz`), weights loaded."""
    config = dict(f.config)
    if config.get("input_shape") is not None:
        config["input_shape"] = tuple(config["input_shape"])
    config.update(devices=devices, backend=backend, fast=fast)
    model = build_model(**config)
    return model.load_state_dict(f.state)
