"""ZFNet (Zeiler and Fergus 2013, Figure 3): AlexNet on one GPU, with a smaller, denser first layer.

What changed from AlexNet, after the deconvnet showed conv1's filters
missing middle frequencies and conv2's aliasing:

* conv1: 7x7 filters with stride 2 (AlexNet: 11x11 with stride 4);
* conv2: stride 2 (AlexNet: 1), so conv3-5 still see 13x13 maps;
* one tower: conv2, conv4, conv5 read all channels (no groups), LRN
  ("contrast normalization across feature maps") over all channels.

Shapes, C x H x W::

    input                                      3x224x224
    conv1  96 @ 7x7 / 2 pad 1, ReLU            96x110x110
    pool1  max 3x3 / 2 pad 1, LRN              96x55x55
    conv2 256 @ 5x5 / 2, ReLU                  256x26x26
    pool2  max 3x3 / 2 pad 1, LRN              256x13x13
    conv3 384 @ 3x3 pad 1, ReLU                384x13x13
    conv4 384 @ 3x3 pad 1, ReLU                384x13x13
    conv5 256 @ 3x3 pad 1, ReLU                256x13x13
    pool5  max 3x3 / 2                         256x6x6 = 9216
    fc6 4096, ReLU, dropout 0.5; fc7 4096, ReLU, dropout 0.5; fc8 num_classes

The pools record their *switches* (where each maximum came from: the
``argmax`` of the reference MaxPool2D), which the deconvnet needs to project
an activation back to pixels (section 2.1); :meth:`ZFNet.switches` returns
them after a forward pass. The paper pads pool1 and pool2 so that 110 -> 55
and 26 -> 13 (with -inf: a max pool's padding never wins).
"""
from __future__ import annotations

import numpy

from .. import backend as B
from ..fast import implementations
from ..layers import MaxPool2D, Pad2D
from .net import Net

__all__ = ["ZFNet", "zfnet", "zfnet_small", "zfnet_cifar"]


def _switch_pool(dtype):
    """Max pool 3x3 / 2 with the reference code, whose forward keeps ``argmax``: the switches."""
    pool = MaxPool2D(3, 2, dtype=dtype)
    pool.impl = "reference"
    return pool


class ZFNet(Net):
    """ZFNet with the numbers given (the builders below give the paper's and the small variants')."""

    def __init__(self, num_classes, input_shape, channels, fc_sizes, conv1, conv2, dropout=0.5,
                 name="zfnet", fast=True, dtype=numpy.float32, seed=0):
        super().__init__(name, num_classes, input_shape, dtype, fast, seed, dict(
            channels=tuple(channels), fc_sizes=tuple(fc_sizes), conv1=tuple(conv1),
            conv2=tuple(conv2), dropout=dropout), dropout=float(dropout))   # dropout also in config: the builder takes it
        L, dt = implementations(fast, B.get_backend()), self.dtype
        rng = numpy.random.default_rng(seed)
        c1, c2, c3, c4, c5 = channels
        C = self.input_shape[0]
        (k1, s1, p1), (k2, s2, p2) = conv1, conv2

        self.conv1 = L.Conv2D(C, c1, k1, s1, p1, rng=rng, dtype=dt)
        self.relu1 = L.ReLU(dt)
        self.pad1 = Pad2D(1, -numpy.inf, dt)
        self.pool1 = _switch_pool(dt)
        self.norm1 = L.LRN(dtype=dt)
        self.conv2 = L.Conv2D(c1, c2, k2, s2, p2, rng=rng, dtype=dt)
        self.relu2 = L.ReLU(dt)
        self.pad2 = Pad2D(1, -numpy.inf, dt)
        self.pool2 = _switch_pool(dt)
        self.norm2 = L.LRN(dtype=dt)
        self.conv3 = L.Conv2D(c2, c3, 3, 1, 1, rng=rng, dtype=dt)
        self.relu3 = L.ReLU(dt)
        self.conv4 = L.Conv2D(c3, c4, 3, 1, 1, rng=rng, dtype=dt)
        self.relu4 = L.ReLU(dt)
        self.conv5 = L.Conv2D(c4, c5, 3, 1, 1, rng=rng, dtype=dt)
        self.relu5 = L.ReLU(dt)
        self.pool5 = _switch_pool(dt)
        self.alexnet_classifier(L, fc_sizes, dropout, rng, seed)      # flatten, fc6 ... fc8

    def switches(self):
        """{"pool1": argmax, ...}: each pool's winning window offset (i * 3 + j), from the last forward."""
        out = {}
        for name in ("pool1", "pool2", "pool5"):
            argmax = self.layers[name].argmax
            if argmax is None:
                raise ValueError(f"{self.name}: no switches recorded yet; run forward(x) first")
            out[name] = argmax
        return out


def zfnet(num_classes=1000, input_shape=(3, 224, 224), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """The paper's ZFNet: 3x224x224, conv1 7x7 / 2, conv2 5x5 / 2."""
    return ZFNet(num_classes, input_shape, (96, 256, 384, 384, 256), (4096, 4096), (7, 2, 1), (5, 2, 0),
                 name="zfnet", dropout=dropout, fast=fast, dtype=dtype, seed=seed)


def zfnet_small(num_classes=10, input_shape=(1, 28, 28), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """The same network for 1x28x28 (Fashion-MNIST): conv1 3x3 / 1, conv2 3x3 / 2, AlexNet-small's widths.

    28 -> conv1 28 -> pool1 14 -> conv2 7 -> pool2 4 -> conv3-5 4 -> pool5 1.
    """
    return ZFNet(num_classes, input_shape, (32, 64, 96, 96, 64), (512, 512), (3, 1, 1), (3, 2, 1),
                 name="zfnet-small", dropout=dropout, fast=fast, dtype=dtype, seed=seed)


def zfnet_cifar(num_classes=10, input_shape=(3, 32, 32), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """The same network for 3x32x32 (CIFAR-10): 32 -> 32 -> 16 -> 8 -> 4 -> 4 -> 1, AlexNet-cifar's widths."""
    return ZFNet(num_classes, input_shape, (64, 128, 192, 192, 128), (1024, 1024), (3, 1, 1), (3, 2, 1),
                 name="zfnet-cifar", dropout=dropout, fast=fast, dtype=dtype, seed=seed)
