"""Nonlinearities: ReLU (the paper's, section 3.1) and tanh (its baseline)."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache


class ReLU(Layer):
    r"""Rectified linear unit, :math:`f(x) = \max(0, x)` (section 3.1).

    Backward: :math:`dx = dout \cdot [x > 0]`: the gradient passes where the
    input was positive and is zero elsewhere (at exactly 0 we take 0).
    Shapes: any; out and dx have the shape of x.

    A model built with ``fast=False`` runs this class; the default runs
    ``FastReLU`` (tinyalex/fast/activation.py), the same numbers.
    """

    def __init__(self, dtype=numpy.float32):
        super().__init__(dtype)
        self.mask = None

    def forward(self, x):
        check_input(self, x, None)
        xp = get_array_module(x)
        self.mask = x > 0
        return xp.where(self.mask, x, xp.zeros((), dtype=x.dtype))

    def backward(self, dout):
        need_cache(self, "mask")
        check_dout(self, dout, self.mask.shape)
        xp = get_array_module(dout)
        return xp.where(self.mask, dout, xp.zeros((), dtype=dout.dtype))   # a new array: dout is untouched


class Tanh(Layer):
    r"""Hyperbolic tangent, the saturating baseline of Figure 1.

    Forward :math:`y = \tanh(x)`; backward :math:`dx = dout \cdot (1 - y^2)`.
    """

    def __init__(self, dtype=numpy.float32):
        super().__init__(dtype)
        self.y = None

    def forward(self, x):
        check_input(self, x, None)
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, dout):
        need_cache(self, "y")
        check_dout(self, dout, self.y.shape)
        return dout * (1 - self.y * self.y)
