"""Containers for networks that branch: Concat (GoogLeNet's inception module) and Residual (ResNet).

Both hold sub-layers and differentiate through them with the two rules of
backpropagation at a fork and a join: where one tensor feeds several
branches, their input gradients *add*; where branches are joined, each gets
its own part of the upstream gradient (Concat: its channels; a sum: all of it).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache, shape_error
from .linear import Flatten, Linear
from .sequential import Sequential


def infer_shape(layer, input_shape):
    """The output shape (per image) of ``layer`` for ``input_shape`` (per image), computing nothing.

    Layers with ``output_shape`` use it; a Sequential chains its layers;
    Linear gives (out_features,) and Flatten the product; the elementwise
    layers (ReLU, Tanh, LRN, Dropout) keep the shape. Raises where a layer
    cannot take the shape (a kernel larger than its input, a Linear of the
    wrong width), naming the layer.
    """
    shape = tuple(int(v) for v in input_shape)
    if hasattr(layer, "output_shape"):
        return tuple(layer.output_shape(shape))
    if isinstance(layer, Sequential):
        for sub in layer.layers.values():
            shape = infer_shape(sub, shape)
        return shape
    if isinstance(layer, Linear):
        if math.prod(shape) != layer.in_features or len(shape) != 1:
            raise shape_error(layer, "input features", f"({layer.in_features},)", shape)
        return (layer.out_features,)
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    return shape


def _named(layers):
    """(name, layer) pairs from layers, (name, layer) tuples or a dict (as Sequential takes them)."""
    if len(layers) == 1 and isinstance(layers[0], dict):
        return OrderedDict(layers[0])
    if layers and all(isinstance(l, tuple) for l in layers):
        return OrderedDict(layers)
    return OrderedDict((str(i), l) for i, l in enumerate(layers))


class Concat(Layer):
    r"""Parallel branches on the same input, outputs stacked along channels ("filter concatenation").

    Forward: :math:`y = [f_1(x), f_2(x), \dots]` along axis 1; every branch
    must give the same H x W. Shapes: x (N, C, H, W) -> y (N, C_1 + C_2 + ..., H, W).

    Backward: branch k gets its own channels of the gradient,
    :math:`dy_k = dy[:, o_k : o_k + C_k]`, and since x fed every branch
    :math:`dx = \sum_k f_k'^T(dy_k)`.
    """

    def __init__(self, *branches, dtype=numpy.float32):
        super().__init__(dtype)
        self.branches = _named(branches)
        if not self.branches:
            raise ValueError("Concat: needs at least one branch")
        self.channels = None

    def children(self):
        return self.branches

    def output_shape(self, input_shape):
        shapes = OrderedDict((n, infer_shape(b, input_shape)) for n, b in self.branches.items())
        sizes = {s[1:] for s in shapes.values()}
        if len(sizes) != 1:
            raise shape_error(self, "branch outputs of one size to concatenate",
                              "equal H x W", ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in shapes.items()))
        _, H, W = next(iter(shapes.values()))
        return (sum(s[0] for s in shapes.values()), H, W)

    def forward(self, x):
        check_input(self, x, 4)
        outs = [b.forward(x) for b in self.branches.values()]
        if len({o.shape[2:] for o in outs}) != 1:
            raise shape_error(self, "branch outputs of one size to concatenate", "equal H x W",
                              ", ".join(f"{n} {tuple(o.shape)}" for n, o in zip(self.branches, outs)))
        self.channels = [o.shape[1] for o in outs]
        out = get_array_module(x).concatenate(outs, axis=1)
        self.out_shape = out.shape
        return out

    def backward(self, dout):
        need_cache(self, "channels")
        check_dout(self, dout, self.out_shape)
        dx, lo = None, 0
        for branch, c in zip(self.branches.values(), self.channels):
            d = branch.backward(dout[:, lo:lo + c].copy())                   # its own channels
            dx = d if dx is None else dx + d                                 # x fed every branch: add
            lo += c
        return dx


class Residual(Layer):
    r"""A residual block: :math:`y = \sigma(F(x) + S(x))` (He et al. 2015, eq. 1 and 2).

    ``body`` is F (e.g. conv-BN-ReLU-conv-BN); ``shortcut`` is S: None for
    the identity :math:`S(x) = x` (no parameters), or a layer, such as the 1x1
    convolution (with BatchNorm) that projects x to F's shape when the block
    changes the number of channels or the stride (eq. 2, option B).
    ``relu``, if given, is applied after the sum (the paper's second
    nonlinearity). Shapes: x (N, C, H, W); F(x) and S(x) must have one shape.

    Backward, with :math:`g = \sigma'(\cdot)^T dy` (or dy without ``relu``):
    the sum copies g to both paths, and the paths join again at x, so

    .. math:: dx = F'^T(g) + S'^T(g) \quad (\text{identity: } dx = F'^T(g) + g)

    The "+ g" is why a deep residual net still trains: the gradient reaches
    early layers unchanged through every identity shortcut.
    """

    def __init__(self, body, shortcut=None, relu=None, dtype=numpy.float32):
        super().__init__(dtype)
        self.body, self.shortcut, self.relu = body, shortcut, relu
        self.x_shape = None

    def children(self):
        kids = OrderedDict(body=self.body)
        if self.shortcut is not None:
            kids["shortcut"] = self.shortcut
        if self.relu is not None:
            kids["relu"] = self.relu
        return kids

    def extra_repr(self):
        return "identity shortcut" if self.shortcut is None else "projection shortcut"

    def _mismatch(self, fx, sx):
        return shape_error(self, "body and shortcut outputs of one shape (give a projection shortcut "
                           "when the channels or the stride change)", f"body {fx}", f"shortcut {sx}")

    def output_shape(self, input_shape):
        fx = infer_shape(self.body, input_shape)
        sx = tuple(input_shape) if self.shortcut is None else infer_shape(self.shortcut, input_shape)
        if fx != sx:
            raise self._mismatch(fx, sx)
        return fx

    def forward(self, x):
        check_input(self, x, None)
        fx = self.body.forward(x)
        sx = x if self.shortcut is None else self.shortcut.forward(x)
        if fx.shape != sx.shape:
            raise self._mismatch(tuple(fx.shape), tuple(sx.shape))
        y = fx + sx
        self.x_shape, self.out_shape = x.shape, y.shape
        return y if self.relu is None else self.relu.forward(y)

    def backward(self, dout):
        need_cache(self, "x_shape")
        check_dout(self, dout, self.out_shape)
        g = dout if self.relu is None else self.relu.backward(dout)
        dx = self.body.backward(g)
        return dx + (g if self.shortcut is None else self.shortcut.backward(g))


class ZeroPadShortcut(Layer):
    r"""The parameter-free shortcut of He et al.'s CIFAR nets (option A): subsample, then add zero channels.

    Forward: :math:`y[:, :C] = x[:, :, ::s, ::s]` and :math:`y[:, C:] = 0`
    (``out_channels - C`` zero maps). Backward: :math:`dx[:, :, ::s, ::s] = dy[:, :C]`,
    zero at the pixels the stride skipped. Shapes: (N, C, H, W) -> (N, C_out, ceil(H/s), ceil(W/s)).
    """

    def __init__(self, in_channels, out_channels, stride=2, dtype=numpy.float32):
        super().__init__(dtype)
        if out_channels < in_channels or stride < 1:
            raise ValueError(f"ZeroPadShortcut: need out_channels >= in_channels and stride >= 1, got "
                             f"{in_channels} -> {out_channels}, stride {stride}")
        self.in_channels, self.out_channels, self.stride = int(in_channels), int(out_channels), int(stride)
        self.x_shape = None

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"

    def output_shape(self, input_shape):
        C, H, W = input_shape
        if C != self.in_channels:
            raise shape_error(self, "input channels", self.in_channels, C)
        s = self.stride
        return (self.out_channels, -(-H // s), -(-W // s))

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        xp = get_array_module(x)
        s = self.stride
        sub = x[:, :, ::s, ::s]
        N, C, Ho, Wo = sub.shape
        zeros = xp.zeros((N, self.out_channels - C, Ho, Wo), dtype=x.dtype)
        self.x_shape = x.shape
        return xp.concatenate([sub, zeros], axis=1)

    def backward(self, dout):
        need_cache(self, "x_shape")
        N, C, H, W = self.x_shape
        s = self.stride
        check_dout(self, dout, (N, self.out_channels, -(-H // s), -(-W // s)))
        dx = get_array_module(dout).zeros(self.x_shape, dtype=dout.dtype)
        dx[:, :, ::s, ::s] = dout[:, :C]
        return dx
