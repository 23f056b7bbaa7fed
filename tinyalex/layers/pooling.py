"""Max pooling, overlapping (3x3, stride 2) as in section 3.4, or not (2x2/2)."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache
from .conv import _pair, window_output_hw


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
        return (C,) + window_output_hw(self, H, W, self.kernel_size, self.stride)

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


class AvgPool2d(Layer):
    r"""Average pooling over kh x kw windows every s pixels, per channel (GoogLeNet's heads).

    Forward: :math:`out[n, c, y, x] = \frac{1}{k_h k_w} \sum_{i<k_h, j<k_w} x_{pad}[n, c, y s_h + i, x s_w + j]`,
    x_pad being x with ``padding`` zeros on each side; the zeros count in the
    average (PyTorch's default ``count_include_pad=True``). ``stride``
    defaults to the kernel size, as in PyTorch. Output size
    floor((H + 2p - k) / s) + 1.

    Backward: every input of a window receives :math:`dout / (k_h k_w)`; where
    windows overlap the shares add up (k*k vectorized slice-adds), and the
    padding's shares are dropped. Shapes: x (N, C, H, W) -> out (N, C, Ho, Wo).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dtype=numpy.float32):
        super().__init__(dtype)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"AvgPool2d: need kernel_size >= 1, stride >= 1, padding >= 0; got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        self.x_shape = None

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        return s + (f", padding={self.padding}" if self.padding != (0, 0) else "")

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C,) + window_output_hw(self, H, W, self.kernel_size, self.stride, self.padding)

    def forward(self, x):
        check_input(self, x, 4)
        xp = get_array_module(x)
        N = x.shape[0]
        C, Ho, Wo = self.output_shape(x.shape[1:])
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        sN, sC, sH, sW = x.strides
        # windows[n, c, y, x, i, j] = xpad[n, c, y*sh + i, x*sw + j]   (a view)
        windows = xp.lib.stride_tricks.as_strided(
            x, shape=(N, C, Ho, Wo, kh, kw), strides=(sN, sC, sH * sh, sW * sw, sH, sW))
        self.x_shape, self.out_shape = (N, C, x.shape[2] - 2 * ph, x.shape[3] - 2 * pw), (N, C, Ho, Wo)
        return windows.mean(axis=(4, 5))

    def backward(self, dout):
        need_cache(self, "x_shape")
        check_dout(self, dout, self.out_shape)
        xp = get_array_module(dout)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        N, C, H, W = self.x_shape
        Ho, Wo = dout.shape[2:]
        share = dout / (kh * kw)                           # each input's share of a window's gradient
        dxpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
        for i in range(kh):
            for j in range(kw):
                dxpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += share
        return dxpad[:, :, ph:ph + H, pw:pw + W]


class GlobalAvgPool2d(Layer):
    r"""The mean of each feature map (Lin et al.'s global average pooling; GoogLeNet, ResNet).

    Forward: :math:`out[n, c, 0, 0] = \frac{1}{HW} \sum_{y, x} x[n, c, y, x]`,
    the average pool whose window is the whole map, for any H x W (PyTorch's
    ``AdaptiveAvgPool2d(1)``). Backward: :math:`dx[n, c, y, x] = dout[n, c, 0, 0] / (HW)`.
    Shapes: x (N, C, H, W) -> out (N, C, 1, 1).
    """

    def __init__(self, dtype=numpy.float32):
        super().__init__(dtype)
        self.x_shape = None

    def output_shape(self, input_shape):
        return (input_shape[0], 1, 1)

    def forward(self, x):
        check_input(self, x, 4)
        self.x_shape = x.shape
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, dout):
        need_cache(self, "x_shape")
        N, C, H, W = self.x_shape
        check_dout(self, dout, (N, C, 1, 1))
        xp = get_array_module(dout)
        return xp.broadcast_to(dout / (H * W), self.x_shape).copy()
