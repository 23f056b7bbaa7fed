"""Choosing implementations, once, when a model is built.

    L = implementations(fast=True)          # or fast=False: the reference classes of tinyalex/layers
    conv1 = L.Conv2D(3, 96, 11, stride=4)   # the class that runs depends on fast (and on the shape)

The namespace has Conv2D, LRN, MaxPool2D, ReLU and Linear, each called with
the reference class's arguments. (Transitional: until the fast classes move
here, these set the reference layer's ``impl`` on the instance.)
"""
from __future__ import annotations

from types import SimpleNamespace

from ..layers import LRN, Conv2D, Linear, MaxPool2D, ReLU

__all__ = ["implementations"]


def _with_impl(cls, impl):
    def make(*args, **kwargs):
        layer = cls(*args, **kwargs)
        layer.impl = impl
        return layer
    make.__name__ = cls.__name__
    return make


def implementations(fast=True, backend=None):
    """The layer classes (or factories) a model is built from: fast ones, or the reference ones."""
    impl = "fast" if fast else "reference"
    return SimpleNamespace(**{c.__name__: _with_impl(c, impl) for c in (Conv2D, LRN, MaxPool2D, ReLU, Linear)})
