"""One small instance of every layer, shared by the cross-layer tests.

Used by tests/test_every_layer.py (float32 vs float64, dout never
modified) and tests/test_layers_every_backend.py (NumPy, the device stand-in,
CuPy). ``Case.build(dtype, fast)`` makes a fresh layer whose weights are the
same numbers for every dtype (drawn in float64 from a fixed seed, then cast),
built from the reference classes (``fast=False``) or the fast ones
(``fast=True``, as :func:`tinyalex.fast.implementations` gives them); and
``Case.inputs(dtype)`` the forward arguments (float arrays cast, labels kept
as integers), so float32 and float64 runs are comparable.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

from tinyalex import layers
from tinyalex.fast import implementations


def layer_classes(fast):
    """tinyalex.layers, with Conv2D, LRN, MaxPool2D, ReLU and Linear as implementations(fast) gives them."""
    return SimpleNamespace(**{**{n: getattr(layers, n) for n in layers.__all__}, **vars(implementations(fast))})


@dataclass
class Case:
    name: str
    make_layer: Callable          # (dtype, rng, L) -> Layer, L: the layer classes (see layer_classes)
    make_inputs: Callable         # (rng) -> tuple of host arrays (float64 or int)

    def build(self, dtype, fast=False):
        return self.make_layer(dtype, np.random.default_rng(7), layer_classes(fast))

    def inputs(self, dtype):
        args = self.make_inputs(np.random.default_rng(11))
        return tuple(a.astype(dtype) if a.dtype.kind == "f" else a for a in args)

    def __repr__(self):
        return self.name


def _image(rng, shape=(2, 4, 7, 6)):
    return (rng.standard_normal(shape),)


def _dropout(mode, training=True):
    def make(dtype, rng, L):
        layer = L.Dropout(0.5, mode=mode, dtype=dtype)
        layer.set_mask(rng.random((2, 4, 7, 6)) >= 0.5)
        return layer.train(training)
    return make


def _sequential(dtype, rng, L):
    return L.Sequential(
        ("conv", L.Conv2D(4, 6, 3, padding=1, rng=rng, dtype=dtype)),
        ("relu", L.ReLU(dtype)),
        ("lrn", L.LRN(alpha=0.1, dtype=dtype)),
        ("pool", L.MaxPool2D(3, 2, dtype=dtype)),
        ("flatten", L.Flatten(dtype)),
        ("fc", L.Linear(6 * 3 * 2, 5, rng=rng, dtype=dtype)),
    )


CASES = [
    Case("Conv2D 3x3 pad 1", lambda dt, rng, L: L.Conv2D(4, 6, 3, padding=1, rng=rng, dtype=dt), _image),
    Case("Conv2D 3x2 stride 2 pad 1 groups 2",
         lambda dt, rng, L: L.Conv2D(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=rng, dtype=dt), _image),
    Case("ReLU", lambda dt, rng, L: L.ReLU(dt), _image),
    Case("Tanh", lambda dt, rng, L: L.Tanh(dt), _image),
    Case("LRN paper alpha=0.5", lambda dt, rng, L: L.LRN(alpha=0.5, dtype=dt), _image),
    Case("LRN caffe alpha=0.5", lambda dt, rng, L: L.LRN(alpha=0.5, convention="caffe", dtype=dt), _image),
    Case("MaxPool2D 3/2", lambda dt, rng, L: L.MaxPool2D(3, 2, dtype=dt), _image),
    Case("MaxPool2D 2/2", lambda dt, rng, L: L.MaxPool2D(2, 2, dtype=dt), _image),
    Case("Dropout inverted, train", _dropout("inverted"), _image),
    Case("Dropout paper, train", _dropout("paper"), _image),
    Case("Dropout paper, eval", _dropout("paper", training=False), _image),
    Case("Linear", lambda dt, rng, L: L.Linear(7, 5, rng=rng, dtype=dt), lambda rng: (rng.standard_normal((3, 7)),)),
    Case("Flatten", lambda dt, rng, L: L.Flatten(dt), _image),
    Case("SoftmaxCrossEntropy", lambda dt, rng, L: L.SoftmaxCrossEntropy(dt),
         lambda rng: (rng.standard_normal((4, 10)) * 3, rng.integers(0, 10, 4))),
    Case("Sequential conv-relu-lrn-pool-flatten-linear", _sequential, _image),
]
