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

from .. import backend as B
from .alexnet import AlexNet, alexnet, alexnet_cifar, alexnet_small
from .io import read_npz
from .successors import SUCCESSORS

__all__ = ["MODELS", "build_model", "model_names", "model_options", "load_model", "default_input_shape"]

MODELS = {
    "alexnet": alexnet,                 # the paper's net, 3x227x227, 1000 classes
    "alexnet-small": alexnet_small,     # 1x28x28 (Fashion-MNIST), 10 classes
    "alexnet-fmnist": alexnet_small,    # another name for it
    "alexnet-cifar": alexnet_cifar,     # 3x32x32 (CIFAR-10), 10 classes
}
MODELS.update(SUCCESSORS)               # zfnet, vgg11, vgg16, googlenet, resnet18/50/20 and their small variants

PLACEMENT = ("devices", "backend")      # where a model goes: every builder takes these (see build_model)


def model_names():
    """The names :func:`build_model` accepts."""
    return list(MODELS)


def _builder(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return MODELS[name]


def model_options(name):
    """The keyword options the named model's builder takes (AlexNet's: every AlexNet argument),
    plus ``devices`` and ``backend``, which every model takes."""
    builder = _builder(name)
    params = inspect.signature(builder).parameters
    names = {k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):     # alexnet(..., **options)
        names |= set(inspect.signature(AlexNet).parameters)
    return names | set(PLACEMENT)


def build_model(name="alexnet", num_classes=None, **options):
    """Build a model by name (see :data:`MODELS`); ``options`` are the builder's (width, devices,
    init, dtype, fast, ...). An option given as None means the model's own value (``seed=None``
    still means fresh entropy). ``build_model(**model.config)`` rebuilds a model.

    An option the model does not take is a ValueError naming the ones it
    does. The networks after AlexNet (:mod:`~tinyalex.models.successors`)
    run on one device: they are built with the backend's layer classes and
    moved there (``model.to(device, backend)``).
    """
    options = {k: v for k, v in dict(options, num_classes=num_classes).items() if v is not None or k == "seed"}
    builder = _builder(name)
    unknown = sorted(set(options) - model_options(name))
    if unknown:
        takes = sorted(model_options(name) - {"num_classes"})
        raise ValueError(f"model {name!r} takes no option {', '.join(unknown)}; its options: {', '.join(takes)}")
    if name not in SUCCESSORS:
        return builder(**options)
    devices, backend = options.pop("devices", None), options.pop("backend", None)
    if isinstance(devices, (tuple, list)):
        if len(devices) != 1:
            raise ValueError(f"model {name!r} runs on one device, got devices={tuple(devices)}; the two-tower "
                             "split (devices=(d0, d1)) is AlexNet's")
        devices = devices[0]
    if backend is None and devices is None:
        return builder(**options)
    backend = backend or B.get_backend()
    with B.use_backend(backend, 0 if devices is None else int(devices)):   # the backend's layer classes
        model = builder(**options)
    return model if backend == "numpy" else model.to(devices, backend)


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
