"""Net: a network written out layer by layer, the base of ZFNet, VGG, GoogLeNet and ResNet.

Each model assigns its layers as attributes in the order they run, with the
paper's names, as nanoGPT's model.py does::

    self.conv1 = L.Conv2D(3, 96, 7, stride=2, padding=1)
    self.relu1 = L.ReLU()
    self.pool1 = L.MaxPool2D(3, 2)

``forward`` runs them in that order and ``backward`` in reverse (a
:class:`~tinyalex.layers.Sequential` whose layers are attributes). Shapes
are known without computing anything (:func:`~tinyalex.layers.infer_shape`),
which gives fc6 its width, :meth:`Net.summary` its table, :func:`trace` the
multiply-adds of every layer, and a too-small input a clear error at build time.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy

from ..layers import (Concat, Conv2D, Dropout, Flatten, Layer, Linear, Residual, Sequential, WithoutBias,
                      infer_shape)
from .io import read_npz, save_npz

__all__ = ["Net", "trace", "multiply_adds"]


class Net(Sequential):
    """A model whose layers are its attributes, run in the order they were assigned.

    Subclasses call ``super().__init__(name, num_classes, input_shape, dtype, fast, seed, arch)``
    first, then assign layers; ``self.shape()`` is the output shape of the
    layers assigned so far (per image), raising a clear error if the input
    is too small for them. ``config`` holds the registry builder's
    arguments (name, num_classes, input_shape, fast, dtype, seed, and
    ``extra`` ones such as GoogLeNet's aux), so
    ``SUCCESSORS[config["name"]](**rest of config)`` builds the same network
    again; ``arch`` holds the numbers the builder chose (widths, strides...).
    """

    def __init__(self, name, num_classes, input_shape, dtype, fast, seed, arch, **extra):
        super().__init__(dtype=dtype)
        if not isinstance(num_classes, (int, numpy.integer)) or num_classes < 1:
            raise ValueError(f"{name}: num_classes must be a positive integer, got {num_classes!r}")
        input_shape = tuple(int(v) for v in input_shape)
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"{name}: input_shape must be (C, H, W), got {input_shape}")
        self.name, self.num_classes, self.input_shape = name, int(num_classes), input_shape
        self.config = OrderedDict(name=name, num_classes=self.num_classes, input_shape=input_shape,
                                  fast=bool(fast), dtype=self.dtype.name, seed=seed, **extra)
        self.arch = OrderedDict(arch)

    def __setattr__(self, name, value):
        if isinstance(value, Layer) and "layers" in self.__dict__:
            self.layers[name] = value          # the order of assignment is the order of forward
        super().__setattr__(name, value)

    # -- shapes -------------------------------------------------------------------
    def shape(self, layers=None):
        """Output shape per image of ``layers`` (default: all assigned so far) for the model's input."""
        layers = self.layers if layers is None else layers
        shape = self.input_shape
        for lname, layer in layers.items():
            try:
                shape = infer_shape(layer, shape)
            except ValueError as exc:
                C, H, W = self.input_shape
                need = _smallest_side(layers, C)
                hint = (f"it needs at least {C}x{need}x{need}" if need else "no square input fits")
                raise ValueError(f"{self.name}: input {C}x{H}x{W} is too small: {lname} fails ({exc}); "
                                 f"{hint}") from None
        return shape

    def features(self):
        """The number of values per image after the layers assigned so far (the width fc6 reads)."""
        return int(numpy.prod(self.shape()))

    def alexnet_classifier(self, L, fc_sizes, dropout, rng, seed):
        """AlexNet's classifier, which ZFNet and VGG keep: flatten, fc6, relu6, drop6, fc7, relu7, drop7, fc8.

        fc6 reads every value of the last map (``self.features()``); the
        dropout layers (probability ``dropout``, none if 0) come after
        relu6 and relu7, as in AlexNet.
        """
        dt = self.dtype
        self.flatten = Flatten(dt)
        self.fc6 = L.Linear(self.features(), fc_sizes[0], rng=rng, dtype=dt)
        self.relu6 = L.ReLU(dt)
        if dropout:
            self.drop6 = Dropout(dropout, seed=None if seed is None else seed * 1000 + 6, dtype=dt)
        self.fc7 = L.Linear(fc_sizes[0], fc_sizes[1], rng=rng, dtype=dt)
        self.relu7 = L.ReLU(dt)
        if dropout:
            self.drop7 = Dropout(dropout, seed=None if seed is None else seed * 1000 + 7, dtype=dt)
        self.fc8 = L.Linear(fc_sizes[1], self.num_classes, rng=rng, dtype=dt)

    def save(self, path):
        """Write the weights and :attr:`config` to ``path`` (.npz), atomically (``load_model`` rebuilds it)."""
        save_npz(path, self.state_dict(), self.config)

    def load(self, path):
        """Load weights from a .npz written by :meth:`save` or by training."""
        return self.load_state_dict(read_npz(path).state)

    def requires_input_grad(self, flag=True):
        """False: the first convolution skips its input gradient (the input is data)."""
        first = next(iter(self.layers.values()))                 # conv1 in every network here
        first = first.conv if isinstance(first, WithoutBias) else first
        if not isinstance(first, Conv2D):
            raise ValueError(f"{self.name}: the first layer is {first}, not a convolution")
        first.compute_input_grad = bool(flag)
        return self

    # -- the table ------------------------------------------------------------------
    def summary(self) -> str:
        """One row per layer (blocks of a stage each get a row): output shape, parameters, multiply-adds.

        Heads that branch off the main path (``self.taps``: head name -> the
        layer it reads) get a row at the end; the total of multiply-adds is
        the main path's, what one prediction costs.
        """
        rows = []
        shape = self.input_shape
        for name, layer in self.layers.items():
            parts = layer.layers.items() if _is_stage(layer) else [("", layer)]
            for sub, l in parts:
                out = infer_shape(l, shape)
                macs = sum(m for *_, m in trace(l, shape))
                rows.append((f"{name}.{sub}" if sub else name, _describe(l), "x".join(map(str, out)),
                             f"{l.num_parameters():,}", f"{macs / 1e6:,.1f}M" if macs else ""))
                shape = out
        for name, tap in getattr(self, "taps", {}).items():    # heads off the main path (GoogLeNet's aux)
            layers = list(self.layers)
            at = self.shape(OrderedDict((n, self.layers[n]) for n in layers[:layers.index(tap) + 1]))
            head = self.children()[name]
            macs = sum(m for *_, m in trace(head, at))
            rows.append((f"{name} (from {tap})", _describe(head), "x".join(map(str, infer_shape(head, at))),
                         f"{head.num_parameters():,}", f"{macs / 1e6:,.1f}M"))
        head = ("layer", "class", "output", "params", "mult-adds")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]

        def fmt(r):
            return "  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))

        line = "  ".join("-" * w for w in widths)
        total, macs = self.num_parameters(), multiply_adds(self)
        return "\n".join(
            [f"{self.name}: input {'x'.join(map(str, self.input_shape))}, {self.num_classes} classes, "
             f"{self.dtype.name}", line, fmt(head), line] + [fmt(r) for r in rows] + [line] +
            [f"Total parameters: {total:,} ({total * self.dtype.itemsize / 2**20:,.1f} MiB as {self.dtype.name}); "
             f"multiply-adds per image: {macs / 1e9:,.3f} G",
             "fast implementations" if self.config.get("fast", True) else "reference implementations (fast=False)"])


def _is_stage(layer):
    """A Sequential of blocks (a ResNet stage): the summary shows one row per block."""
    return type(layer) is Sequential and any(isinstance(l, (Residual, Concat)) for l in layer.layers.values())


def _describe(layer):
    """The class that runs: "FastConv2D", "Pad2D+FastMaxPool2D", or the reference "Conv2D"."""
    if type(layer) is Sequential:
        if len(layer) > 2:
            return f"Sequential ({len(layer)} layers)"
        return "+".join(_describe(l) for l in layer.layers.values())
    if isinstance(layer, WithoutBias):
        return _describe(layer.conv) + " no bias"
    return type(layer).__name__           # FastConv2D, WinogradConv2D ... or the reference Conv2D


def _smallest_side(layers, channels, largest=1024):
    """The smallest H = W for which every layer fits (None if none up to ``largest``)."""
    for side in range(1, largest + 1):
        shape = (channels, side, side)
        try:
            for layer in layers.values():
                shape = infer_shape(layer, shape)
        except ValueError:
            continue
        return side
    return None


def trace(layer, input_shape, prefix=""):
    """Yield (name, layer, input shape, output shape, multiply-adds) for every leaf layer, per image.

    Multiply-adds are counted as the papers count them: a convolution
    C_out * H_out * W_out * (C_in / groups) * k_h * k_w, a fully connected
    layer in * out; everything else (ReLU, pooling, normalization, adds) 0.
    """
    shape = tuple(input_shape)
    if isinstance(layer, Sequential):
        for name, sub in layer.layers.items():
            yield from trace(sub, shape, f"{prefix}.{name}" if prefix else name)
            shape = infer_shape(sub, shape)
        return
    if isinstance(layer, (Concat, Residual)):
        for name, sub in layer.children().items():
            sub_in = infer_shape(layer.body, shape) if name == "relu" else shape   # Residual's relu: after the sum
            yield from trace(sub, sub_in, f"{prefix}.{name}" if prefix else name)
        return
    out = infer_shape(layer, shape)
    conv = layer.conv if isinstance(layer, WithoutBias) else layer
    if isinstance(conv, Conv2D):
        kh, kw = conv.kernel_size
        macs = int(numpy.prod(out)) * (conv.in_channels // conv.groups) * kh * kw
    elif isinstance(conv, Linear):
        macs = conv.in_features * conv.out_features
    else:
        macs = 0
    yield prefix, layer, shape, out, macs


def multiply_adds(model, input_shape=None):
    """Multiply-adds of one forward pass of one image (convolutions and fully connected layers)."""
    shape = model.input_shape if input_shape is None else input_shape
    return int(sum(m for *_, m in trace(model, shape)))
