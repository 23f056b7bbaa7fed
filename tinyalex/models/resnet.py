"""ResNet (He, Zhang, Ren and Sun 2015): residual blocks, batch normalization, no dropout, no LRN.

A block learns the residual F(x) and adds its input back: y = ReLU(F(x) + x)
(eq. 1). When a block halves the map and doubles the channels, the
shortcut must change shape too: a 1x1 convolution with stride 2 and
BatchNorm (option B, eq. 2; the ImageNet nets) or the parameter-free
subsample-and-add-zero-channels (option A; the CIFAR nets, section 4.2).
Every convolution is followed by BatchNorm (section 3.4) and has no bias.

* Basic block (ResNet-18/34, CIFAR): 3x3 conv, BN, ReLU, 3x3 conv, BN; + shortcut; ReLU.
* Bottleneck (ResNet-50/101/152, Figure 5): 1x1 conv reducing to ``width``,
  3x3 conv, 1x1 conv expanding to 4 x ``width``, each with BN; + shortcut; ReLU.
  The stride sits on the first 1x1 as in the paper ("downsampling is
  performed by conv3_1, conv4_1, and conv5_1 with a stride of 2");
  torchvision puts it on the 3x3 ("ResNet v1.5"): the same parameters.

ImageNet nets (Table 1), 3x224x224::

    conv1 64 @ 7x7 / 2 pad 3, BN, ReLU         64x112x112
    max pool 3x3 / 2 pad 1                     64x56x56
    layer1 (conv2_x): blocks of width 64       56x56
    layer2 (conv3_x): width 128, first stride 2   28x28
    layer3 (conv4_x): width 256, first stride 2   14x14
    layer4 (conv5_x): width 512, first stride 2   7x7
    global average pool, fc num_classes

ResNet-18: basic blocks (2, 2, 2, 2), 11,689,512 parameters; ResNet-50:
bottlenecks (3, 4, 6, 3), 25,557,032 (1000 classes, as torchvision's).

CIFAR nets (section 4.2), 3x32x32: conv 16 @ 3x3, then three stages of n
basic blocks with 16, 32, 64 channels on 32x32, 16x16 and 8x8 maps (6n + 2
layers), global average pool, fc 10; ResNet-20 (n = 3) has about 0.27M
parameters with option A shortcuts.
"""
from __future__ import annotations

import numpy

from .. import backend as B
from ..fast import implementations
from ..layers import (Flatten, GlobalAvgPool2d, Pad2D, Residual, Sequential, WithoutBias,
                      ZeroPadShortcut)
from ..layers.base import check_dtype
from .net import Net

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet50", "resnet20", "resnet20_small"]

SHORTCUTS = ("A", "B")


def _conv_bn(L, cin, cout, k, stride, rng, dt):
    """(conv without bias, its BatchNorm): the pair every ResNet convolution is."""
    return (WithoutBias(L.Conv2D(cin, cout, k, stride, k // 2, rng=rng, dtype=dt)), L.BatchNorm2d(cout, dtype=dt))


def _shortcut(L, cin, cout, stride, kind, rng, dt):
    """None (identity) when the shape is kept; else option A (zero channels) or B (1x1 conv + BN)."""
    if stride == 1 and cin == cout:
        return None
    if kind == "A":
        return ZeroPadShortcut(cin, cout, stride, dtype=dt)
    conv, bn = _conv_bn(L, cin, cout, 1, stride, rng, dt)
    return Sequential(("conv", conv), ("bn", bn))


class BasicBlock(Residual):
    """ReLU(BN(conv2(ReLU(BN(conv1(x))))) + shortcut(x)), two 3x3 convolutions (Figure 5 left)."""

    def __init__(self, L, in_channels, channels, stride=1, shortcut="B", rng=None, dtype=numpy.float32):
        dt = check_dtype(dtype)
        conv1, bn1 = _conv_bn(L, in_channels, channels, 3, stride, rng, dt)
        conv2, bn2 = _conv_bn(L, channels, channels, 3, 1, rng, dt)
        body = Sequential(("conv1", conv1), ("bn1", bn1), ("relu1", L.ReLU(dt)), ("conv2", conv2), ("bn2", bn2))
        super().__init__(body, _shortcut(L, in_channels, channels, stride, shortcut, rng, dt), L.ReLU(dt), dtype=dt)
        self.out_channels = channels


class Bottleneck(Residual):
    """1x1 reduce to ``width``, 3x3, 1x1 expand to 4 x ``width``, each with BN; + shortcut; ReLU (Figure 5 right)."""

    expansion = 4

    def __init__(self, L, in_channels, width, stride=1, shortcut="B", rng=None, dtype=numpy.float32):
        dt = check_dtype(dtype)
        out = width * self.expansion
        conv1, bn1 = _conv_bn(L, in_channels, width, 1, stride, rng, dt)
        conv2, bn2 = _conv_bn(L, width, width, 3, 1, rng, dt)
        conv3, bn3 = _conv_bn(L, width, out, 1, 1, rng, dt)
        body = Sequential(("conv1", conv1), ("bn1", bn1), ("relu1", L.ReLU(dt)),
                          ("conv2", conv2), ("bn2", bn2), ("relu2", L.ReLU(dt)),
                          ("conv3", conv3), ("bn3", bn3))
        super().__init__(body, _shortcut(L, in_channels, out, stride, shortcut, rng, dt), L.ReLU(dt), dtype=dt)
        self.out_channels = out


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(Net):
    """A ResNet: ``block`` "basic" or "bottleneck", ``blocks`` per stage, ``widths`` per stage.

    ``stem`` "imagenet" (conv 7x7 / 2 and max pool 3x3 / 2) or "cifar"
    (conv 3x3 / 1, no pool); ``shortcut`` "B" (projection) or "A" (zero channels).
    """

    def __init__(self, num_classes, input_shape, block="basic", blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512),
                 stem="imagenet", shortcut="B", name="resnet18", fast=True, dtype=numpy.float32, seed=0):
        if block not in BLOCKS or stem not in ("imagenet", "cifar") or shortcut not in SHORTCUTS:
            raise ValueError(f"{name}: block must be one of {', '.join(BLOCKS)}, stem 'imagenet' or 'cifar', "
                             f"shortcut 'A' or 'B'; got {block!r}, {stem!r}, {shortcut!r}")
        if len(blocks) != len(widths):
            raise ValueError(f"{name}: one width per stage: got blocks {blocks} and widths {widths}")
        super().__init__(name, num_classes, input_shape, dtype, fast, seed, dict(
            block=block, blocks=tuple(blocks), widths=tuple(widths), stem=stem,
            shortcut=shortcut))
        L, dt = implementations(fast, B.get_backend()), self.dtype
        rng = numpy.random.default_rng(seed)
        Block = BLOCKS[block]

        if stem == "imagenet":
            self.conv1, self.bn1 = _conv_bn(L, self.input_shape[0], widths[0], 7, 2, rng, dt)
            self.relu1 = L.ReLU(dt)
            self.pad1 = Pad2D(1, -numpy.inf, dt)
            self.pool1 = L.MaxPool2D(3, 2, dtype=dt)
        else:
            self.conv1, self.bn1 = _conv_bn(L, self.input_shape[0], widths[0], 3, 1, rng, dt)
            self.relu1 = L.ReLU(dt)
        cin = widths[0]
        for stage, (n, width) in enumerate(zip(blocks, widths), start=1):
            layer = Sequential()
            for i in range(n):
                stride = 2 if stage > 1 and i == 0 else 1     # the first block of stages 2.. halves the map
                layer.layers[str(i)] = Block(L, cin, width, stride, shortcut, rng=rng, dtype=dt)
                cin = layer.layers[str(i)].out_channels
            setattr(self, f"layer{stage}", layer)
        self.avgpool = GlobalAvgPool2d(dt)
        self.flatten = Flatten(dt)
        self.fc = L.Linear(self.features(), self.num_classes, rng=rng, dtype=dt)


def resnet18(num_classes=1000, input_shape=(3, 224, 224), fast=True, dtype=numpy.float32, seed=0):
    """ResNet-18: basic blocks (2, 2, 2, 2), 11,689,512 parameters with 1000 classes."""
    return ResNet(num_classes, input_shape, "basic", (2, 2, 2, 2), name="resnet18", fast=fast, dtype=dtype, seed=seed)


def resnet50(num_classes=1000, input_shape=(3, 224, 224), fast=True, dtype=numpy.float32, seed=0):
    """ResNet-50: bottlenecks (3, 4, 6, 3), 25,557,032 parameters with 1000 classes."""
    return ResNet(num_classes, input_shape, "bottleneck", (3, 4, 6, 3), name="resnet50", fast=fast, dtype=dtype,
                  seed=seed)


def resnet20(num_classes=10, input_shape=(3, 32, 32), fast=True, dtype=numpy.float32, seed=0):
    """The CIFAR-10 ResNet-20 of section 4.2: n = 3, widths 16, 32, 64, option A shortcuts (~0.27M parameters)."""
    return ResNet(num_classes, input_shape, "basic", (3, 3, 3), (16, 32, 64), stem="cifar", shortcut="A",
                  name="resnet20", fast=fast, dtype=dtype, seed=seed)


def resnet20_small(num_classes=10, input_shape=(1, 28, 28), fast=True, dtype=numpy.float32, seed=0):
    """ResNet-20 for 1x28x28 (Fashion-MNIST): the same network, maps 28, 14, 7."""
    return ResNet(num_classes, input_shape, "basic", (3, 3, 3), (16, 32, 64), stem="cifar", shortcut="A",
                  name="resnet20-small", fast=fast, dtype=dtype, seed=seed)
