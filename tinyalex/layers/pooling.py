"""Max pooling, overlapping (3x3, stride 2) as in section 3.4, or not (2x2/2)."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache, shape_error
from .conv import _pair, conv_output_size


class MaxPool2D(Layer):
    r"""Max pooling over kh x kw windows every s pixels, per channel.

    Forward: :math:`out[n, c, y, x] = \max_{i<k_h, j<k_w} x[n, c, y s + i, x s + j]`.
    With k=3, s=2 (the paper) the windows overlap; k=2, s=2 is the classic
    non-overlapping pool. Output size floor((H - k) / s) + 1.

    Backward: each window sends its whole gradient to one input, its first
    maximum in row-major order (as PyTorch and Caffe), and where windows
    overlap an input collects the sum from every window it won.

    The window view is a strided view of x (no copy); ``argmax`` over the
    flattened window records the winner, and the backward adds ``dout`` into
    ``dx`` one kernel offset at a time (k*k vectorized slice-adds).
    Shapes: x (N, C, H, W) -> out (N, C, Ho, Wo).

    A model built with ``fast=False`` runs this class; the default runs
    ``FastMaxPool2D`` (tinyalex/fast/pooling.py), the same numbers.
    """

    def __init__(self, kernel_size=3, stride=2, dtype=numpy.float32):
        super().__init__(dtype)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"MaxPool2D: kernel_size and stride must be >= 1, got {self.kernel_size}, {self.stride}")
        self.argmax = None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if H < kh or W < kw:
            raise shape_error(self, "input at least as large as the window", f"H >= {kh}, W >= {kw}", f"{H}x{W}")
        return (C, conv_output_size(H, kh, sh, 0), conv_output_size(W, kw, sw, 0))

    def forward(self, x):
        check_input(self, x, 4)
        xp = get_array_module(x)
        N = x.shape[0]
        C, Ho, Wo = self.output_shape(x.shape[1:])
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        sN, sC, sH, sW = x.strides
        # windows[n, c, y, x, i, j] = x[n, c, y*sh + i, x*sw + j]   (a view)
        windows = xp.lib.stride_tricks.as_strided(
            x, shape=(N, C, Ho, Wo, kh, kw), strides=(sN, sC, sH * sh, sW * sw, sH, sW))
        flat = windows.reshape(N, C, Ho, Wo, kh * kw)
        self.argmax = flat.argmax(axis=-1)          # first maximum in row-major order
        self.x_shape = x.shape
        return xp.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, dout):
        need_cache(self, "argmax")
        check_dout(self, dout, self.argmax.shape)
        xp = get_array_module(dout)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        Ho, Wo = dout.shape[2:]
        dx = xp.zeros(self.x_shape, dtype=dout.dtype)
        zero = xp.zeros((), dtype=dout.dtype)
        for i in range(kh):
            for j in range(kw):
                won = self.argmax == i * kw + j        # windows whose maximum sits at offset (i, j)
                dx[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += xp.where(won, dout, zero)
        return dx
