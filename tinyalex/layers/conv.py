"""2-D convolution by im2col, with groups (the paper's two towers on one device)."""
from __future__ import annotations

import math
import numbers

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache, shape_error


def _pair(v, name):
    """An int or an (h, w) pair of ints (NumPy integers too) -> (h, w)."""
    if isinstance(v, numbers.Integral):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(a, numbers.Integral) for a in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} must be an int or a pair (h, w) of ints, got {v!r}")


def conv_output_size(size, kernel, stride, padding):
    """floor((size + 2*padding - kernel) / stride) + 1, the rule for every conv and pool here."""
    return (size + 2 * padding - kernel) // stride + 1


def window_output_hw(layer, H, W, kernel_size, stride, padding=None, window="window"):
    """(Ho, Wo) of a kh x kw ``window`` sliding by ``stride`` over an H x W input (zero-``padding``ed on
    each side when given), as :func:`conv_output_size` counts; a shape error naming ``layer`` when the
    (padded) input is smaller than the window."""
    (kh, kw), (sh, sw) = kernel_size, stride
    ph, pw = padding or (0, 0)
    if H + 2 * ph < kh or W + 2 * pw < kw:
        if padding is None:
            raise shape_error(layer, f"input at least as large as the {window}", f"H >= {kh}, W >= {kw}", f"{H}x{W}")
        raise shape_error(layer, f"padded input at least as large as the {window}",
                          f"H+2p >= {kh}, W+2p >= {kw}", f"{H + 2 * ph}x{W + 2 * pw}")
    return conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)


def im2col(x, kernel_size, stride, padding, groups=1):
    """Lay out every receptive field of ``x`` as a column.

    x: (N, C, H, W). Returns cols of shape (G, Cg*kh*kw, N*Ho*Wo), G = groups,
    Cg = C/G, with

        cols[g, (c, i, j), (n, y, x)] = xpad[n, g*Cg + c, y*sh + i, x*sw + j]

    xpad is x padded with zeros. The receptive fields are first taken as a
    strided *view* of xpad (no copy), shape (N, C, kh, kw, Ho, Wo); the only
    copy is the final reshape into the matrix the product needs.
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    N, C, H, W = x.shape
    G = groups
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho = conv_output_size(H, kh, sh, ph)
    Wo = conv_output_size(W, kw, sw, pw)
    sN, sC, sH, sW = x.strides
    # view[n, c, i, j, y, x] = xpad[n, c, y*sh + i, x*sw + j]
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, kh, kw, Ho, Wo), strides=(sN, sC, sH, sW, sH * sh, sW * sw)
    )
    view = view.reshape(N, G, C // G, kh, kw, Ho, Wo)
    # (G, Cg, kh, kw, N, Ho, Wo) -> one matrix per group: the copy happens here.
    cols = view.transpose(1, 2, 3, 4, 0, 5, 6).reshape(G, (C // G) * kh * kw, N * Ho * Wo)
    return cols


def col2im(cols, x_shape, kernel_size, stride, padding, groups=1):
    """The adjoint of :func:`im2col`: add every column entry back where it came from.

    cols: (G, Cg*kh*kw, N*Ho*Wo) -> dx: (N, C, H, W). Overlapping receptive
    fields *add up*. One vectorized slice-add per kernel offset (i, j): for
    each offset, the entries form a strided grid of xpad.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    N, C, H, W = x_shape
    G = groups
    Ho = conv_output_size(H, kh, sh, ph)
    Wo = conv_output_size(W, kw, sw, pw)
    d = cols.reshape(G, C // G, kh, kw, N, Ho, Wo)
    dxpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    dxg = dxpad.reshape(N, G, C // G, H + 2 * ph, W + 2 * pw)  # a view
    for i in range(kh):
        for j in range(kw):
            # entries (g, c, i, j, n, y, x) go to xpad[n, g*Cg + c, y*sh + i, x*sw + j]
            dxg[:, :, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += d[:, :, i, j].transpose(2, 0, 1, 3, 4)
    return dxpad[:, :, ph:ph + H, pw:pw + W]


class Conv2D(Layer):
    r"""2-D convolution (cross-correlation, as in every deep-learning library).

    Shapes: x (N, C, H, W), W (F, C/G, kh, kw), b (F,), out (N, F, Ho, Wo)
    with Ho = floor((H + 2 ph - kh) / sh) + 1 (same for Wo), G = groups.

    Forward, for output channel f in group g = f // (F/G):

    .. math::
        out[n, f, y, x] = b[f] + \sum_{c, i, j} W[f, c, i, j]\;
                          x_{pad}[n, g C_g + c, y s_h + i, x s_w + j]

    By im2col this is one matrix product per group:
    ``out_g (F/G, N*Ho*Wo) = W_g (F/G, K) @ cols_g (K, N*Ho*Wo)``, K = C/G*kh*kw.

    Backward, with ``dout_g`` the upstream gradient laid out the same way:

    * dW_g = dout_g @ cols_g^T          (F/G, K)
    * db[f] = sum over n, y, x of dout[n, f, y, x]
    * dcols_g = W_g^T @ dout_g          (K, N*Ho*Wo), and dx = col2im(dcols)

    ``groups=2`` is the paper's two-GPU net on one device: the first half of
    the filters sees only the first half of the input channels.

    A model built with ``fast=False`` runs this class; the default runs the
    same numbers faster with a class of tinyalex/fast/conv.py (im2col into
    reused buffers, or an algorithm with fewer multiplications; docs/layers.md
    says which layer gets which).
    """

    compute_input_grad = True   # False: backward returns None (a first layer, whose input is data)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 weight_std=None, bias_init=0.0, rng=None, dtype=numpy.float32):
        super().__init__(dtype)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(in_channels, out_channels) < 1:
            raise ValueError(f"Conv2D: in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2D: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )
        if min(self.stride) < 1 or min(self.kernel_size) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2D: need kernel_size >= 1, stride >= 1, padding >= 0; got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        # He initialisation by default; AlexNet passes the paper's 0.01.
        std = math.sqrt(2.0 / fan_in) if weight_std is None else weight_std
        rng = rng if rng is not None else numpy.random.default_rng()
        self.params["W"] = (rng.standard_normal((out_channels, in_channels // groups, kh, kw)) * std).astype(self.dtype)
        self.params["b"] = numpy.full(out_channels, bias_init, dtype=self.dtype)
        self.cols = None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s

    def output_shape(self, input_shape):
        """(C, H, W) -> (F, Ho, Wo), raising if the kernel does not fit."""
        C, H, W = input_shape
        return (self.out_channels,) + window_output_hw(self, H, W, self.kernel_size, self.stride, self.padding,
                                                       "kernel")

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        N = x.shape[0]
        F, Ho, Wo = self.output_shape(x.shape[1:])
        G = self.groups
        W, b = self.params["W"], self.params["b"]
        xp = get_array_module(x, W)
        cols = im2col(x, self.kernel_size, self.stride, self.padding, G)   # (G, K, N*Ho*Wo)
        out = xp.matmul(W.reshape(G, F // G, -1), cols)                     # (G, F/G, N*Ho*Wo)
        out = out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)               # (N, F, Ho, Wo)
        out = out + b.reshape(1, F, 1, 1)
        self.x_shape, self.out_shape, self.cols = x.shape, out.shape, cols
        return out

    def backward(self, dout):
        need_cache(self, "cols")
        N, C, H, W_ = self.x_shape
        F, G = self.out_channels, self.groups
        check_dout(self, dout, self.out_shape)
        xp = get_array_module(dout)
        W = self.params["W"]
        dout_g = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)          # (G, F/G, N*Ho*Wo)
        self.grads["W"] = xp.matmul(dout_g, self.cols.transpose(0, 2, 1)).reshape(W.shape)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        if not self.compute_input_grad:
            return None
        dcols = xp.matmul(W.reshape(G, F // G, -1).transpose(0, 2, 1), dout_g)  # (G, K, N*Ho*Wo)
        return col2im(dcols, self.x_shape, self.kernel_size, self.stride, self.padding, G)
