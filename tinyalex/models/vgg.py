"""VGG (Simonyan and Zisserman 2014, Table 1): only 3x3 convolutions, stride 1, padding 1, and 2x2 pools.

Two 3x3 layers see a 5x5 window and three see 7x7, with fewer parameters
than one large filter (3 * 9 C^2 = 27 C^2 against 49 C^2) and a ReLU between
each. Five stages, each ending in max pool 2x2 / 2 that halves the map,
with 64, 128, 256, 512, 512 channels; configuration A (VGG-11) has 1, 1, 2,
2, 2 convolutions per stage, D (VGG-16) 2, 2, 3, 3, 3. Then AlexNet's
classifier: fc6 4096, fc7 4096 (dropout 0.5 each), fc8. With 3x224x224
input the last map is 512x7x7 and VGG-16 has 138,357,544 parameters.

Layers are named conv{stage}_{i} as in the paper's Caffe models: conv1_1,
relu1_1, conv1_2, relu1_2, pool1, conv2_1, ... The small variants are the
same code with the widths divided (and, for 28x28, conv1_1 padded by 3 so
that 28 becomes 32 = 2^5, as LeNet-5 padded MNIST's digits).
"""
from __future__ import annotations

import numpy

from .. import backend as B
from ..fast import implementations
from .net import Net

__all__ = ["VGG", "CONFIGS", "vgg11", "vgg16", "vgg11_small", "vgg11_cifar"]

CONFIGS = {"A": (1, 1, 2, 2, 2), "D": (2, 2, 3, 3, 3)}   # convolutions per stage (Table 1's columns)


class VGG(Net):
    """VGG with ``config`` ("A": VGG-11, "D": VGG-16) and the widths given."""

    def __init__(self, num_classes, input_shape, config="D", widths=(64, 128, 256, 512, 512),
                 fc_sizes=(4096, 4096), first_padding=1, dropout=0.5, name="vgg16", fast=True,
                 dtype=numpy.float32, seed=0):
        if config not in CONFIGS:
            raise ValueError(f"{name}: config must be one of {', '.join(CONFIGS)}, got {config!r}")
        super().__init__(name, num_classes, input_shape, dtype, fast, seed, dict(
            config=config, widths=tuple(widths), fc_sizes=tuple(fc_sizes),
            first_padding=first_padding, dropout=dropout), dropout=float(dropout))   # dropout also in config: the builder takes it
        L, dt = implementations(fast, B.get_backend()), self.dtype
        rng = numpy.random.default_rng(seed)
        cin = self.input_shape[0]
        for stage, (n, width) in enumerate(zip(CONFIGS[config], widths), start=1):
            for i in range(1, n + 1):
                pad = first_padding if (stage, i) == (1, 1) else 1
                setattr(self, f"conv{stage}_{i}", L.Conv2D(cin, width, 3, 1, pad, rng=rng, dtype=dt))
                setattr(self, f"relu{stage}_{i}", L.ReLU(dt))
                cin = width
            setattr(self, f"pool{stage}", L.MaxPool2D(2, 2, dtype=dt))
        self.alexnet_classifier(L, fc_sizes, dropout, rng, seed)      # flatten, fc6 ... fc8


def vgg11(num_classes=1000, input_shape=(3, 224, 224), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """Configuration A: 8 convolutions + 3 fully connected layers."""
    return VGG(num_classes, input_shape, "A", name="vgg11", dropout=dropout, fast=fast, dtype=dtype, seed=seed)


def vgg16(num_classes=1000, input_shape=(3, 224, 224), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """Configuration D: 13 convolutions + 3 fully connected layers, 138,357,544 parameters."""
    return VGG(num_classes, input_shape, "D", name="vgg16", dropout=dropout, fast=fast, dtype=dtype, seed=seed)


def vgg11_small(num_classes=10, input_shape=(1, 28, 28), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """Configuration A for 1x28x28: widths / 4, fc 512, conv1_1 padding 3 (28 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1)."""
    return VGG(num_classes, input_shape, "A", (16, 32, 64, 128, 128), (512, 512), first_padding=3,
               name="vgg11-small", dropout=dropout, fast=fast, dtype=dtype, seed=seed)


def vgg11_cifar(num_classes=10, input_shape=(3, 32, 32), dropout=0.5, fast=True, dtype=numpy.float32, seed=0):
    """Configuration A for 3x32x32: widths / 2, fc 512 (32 -> 16 -> 8 -> 4 -> 2 -> 1)."""
    return VGG(num_classes, input_shape, "A", (32, 64, 128, 256, 256), (512, 512),
               name="vgg11-cifar", dropout=dropout, fast=fast, dtype=dtype, seed=seed)
