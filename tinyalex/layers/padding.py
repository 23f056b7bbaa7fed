"""Pad2D: a border of constant values (zeros, or -inf in front of a max pool that pads)."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache
from .conv import _pair


class Pad2D(Layer):
    r"""Surround each feature map with ``padding`` rows and columns of ``value``.

    Forward: :math:`out[n, c, y + p_h, x + p_w] = x[n, c, y, x]`, ``value``
    elsewhere. Backward: the border was a constant, so its gradient is
    dropped: :math:`dx = dout[:, :, p_h : p_h + H, p_w : p_w + W]`.

    ``value=-inf`` in front of :class:`MaxPool2D` is the padding of a max pool
    (PyTorch's ``MaxPool2d(padding=1)``, Caffe's): a border pixel never wins,
    so no window's maximum changes. Shapes: (N, C, H, W) -> (N, C, H + 2 p_h, W + 2 p_w).
    """

    def __init__(self, padding, value=0.0, dtype=numpy.float32):
        super().__init__(dtype)
        self.padding = _pair(padding, "padding")
        if min(self.padding) < 0:
            raise ValueError(f"Pad2D: padding must be >= 0, got {self.padding}")
        self.value = float(value)
        self.x_shape = None

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"

    def output_shape(self, input_shape):
        C, H, W = input_shape
        ph, pw = self.padding
        return (C, H + 2 * ph, W + 2 * pw)

    def forward(self, x):
        check_input(self, x, 4)
        xp = get_array_module(x)
        ph, pw = self.padding
        self.x_shape = x.shape
        return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=self.value)

    def backward(self, dout):
        need_cache(self, "x_shape")
        N, C, H, W = self.x_shape
        ph, pw = self.padding
        check_dout(self, dout, (N, C, H + 2 * ph, W + 2 * pw))
        return dout[:, :, ph:ph + H, pw:pw + W].copy()
