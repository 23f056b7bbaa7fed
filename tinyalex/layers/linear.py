"""Fully connected layers (fc6, fc7, fc8) and Flatten."""
from __future__ import annotations

import math

import numpy

from .base import Layer, check_dout, check_input, need_cache


class Linear(Layer):
    r"""Fully connected layer, :math:`y = x W^T + b` (PyTorch's layout).

    Shapes: x (N, in_features), W (out_features, in_features), b (out_features,),
    y (N, out_features).

    Backward: :math:`dx = dout\, W`, :math:`dW = dout^T x`,
    :math:`db = \sum_n dout_n`.

    A model built with ``fast=False`` runs this class; the default runs
    ``FastLinear`` (tinyalex/fast/linear.py), the same numbers.
    """

    def __init__(self, in_features, out_features, weight_std=None, bias_init=0.0, rng=None, dtype=numpy.float32):
        super().__init__(dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        if min(self.in_features, self.out_features) < 1:
            raise ValueError(f"Linear: in_features and out_features must be >= 1, got {in_features}, {out_features}")
        std = math.sqrt(2.0 / in_features) if weight_std is None else weight_std
        rng = rng if rng is not None else numpy.random.default_rng()
        self.params["W"] = (rng.standard_normal((out_features, in_features)) * std).astype(self.dtype)
        self.params["b"] = numpy.full(out_features, bias_init, dtype=self.dtype)
        self.x = None

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, x):
        check_input(self, x, 2, self.in_features)
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dout):
        need_cache(self, "x")
        check_dout(self, dout, (self.x.shape[0], self.out_features))
        self.grads["W"] = dout.T @ self.x
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"]


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), and back in backward."""

    def __init__(self, dtype=numpy.float32):
        super().__init__(dtype)
        self.x_shape = None

    def forward(self, x):
        check_input(self, x, None)
        if x.ndim < 2:
            raise ValueError(f"{self}: input of rank >= 2 (N, ...): expected rank >= 2, got shape {tuple(x.shape)}")
        out = x.reshape(x.shape[0], -1)
        self.x_shape, self.out_shape = x.shape, out.shape
        return out

    def backward(self, dout):
        need_cache(self, "x_shape")
        check_dout(self, dout, self.out_shape)
        return dout.reshape(self.x_shape)
