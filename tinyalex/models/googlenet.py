"""GoogLeNet (Szegedy et al. 2014, Table 1 and Figure 3): inception modules, 1x1 reductions, no big fc.

The inception module (Figure 2b) runs four branches on the same input and
stacks their outputs along channels ("filter concatenation"):

    1x1 conv                     -> #1x1 maps
    1x1 conv (reduce), 3x3 conv  -> #3x3 maps
    1x1 conv (reduce), 5x5 conv  -> #5x5 maps
    3x3 max pool / 1, 1x1 conv   -> pool proj maps

every convolution followed by a ReLU. The 1x1 "reduce" layers cut the
channels before the expensive 3x3 and 5x5 filters: inception 3a's 5x5
branch costs 192*16 + 16*32*25 = 15,872 weights instead of 192*32*25 = 153,600.

The network, with Table 1's numbers (#1x1, #3x3 reduce, #3x3, #5x5 reduce,
#5x5, pool proj), shapes C x H x W for 3x224x224::

    conv1 64 @ 7x7 / 2, ReLU; max pool 3x3 / 2; LRN         64x56x56
    conv2_reduce 64 @ 1x1, conv2 192 @ 3x3, ReLUs; LRN; max pool 3x3 / 2   192x28x28
    inception3a (64, 96, 128, 16, 32, 32)                   256x28x28
    inception3b (128, 128, 192, 32, 96, 64)                 480x28x28
    max pool 3x3 / 2                                        480x14x14
    inception4a (192, 96, 208, 16, 48, 64)                  512x14x14   <- aux1
    inception4b (160, 112, 224, 24, 64, 64)                 512x14x14
    inception4c (128, 128, 256, 24, 64, 64)                 512x14x14
    inception4d (112, 144, 288, 32, 64, 64)                 528x14x14   <- aux2
    inception4e (256, 160, 320, 32, 128, 128)               832x14x14
    max pool 3x3 / 2                                        832x7x7
    inception5a (256, 160, 320, 32, 128, 128)               832x7x7
    inception5b (384, 192, 384, 48, 128, 128)               1024x7x7
    avg pool 7x7 (here: global, the same on 7x7), dropout 0.4, fc num_classes

Max pools pad with -inf (Pad2D) so that 112 -> 56 -> 28 -> 14 -> 7.

The auxiliary classifiers (section 5, optional: ``aux=True``): avg pool
5x5 / 3, 1x1 conv 128 + ReLU, fc 1024 + ReLU, dropout 0.7, fc num_classes,
on inception4a's and inception4d's outputs. In training, ``forward`` keeps
their logits in ``aux_logits``; the paper adds their losses with weight
``AUX_WEIGHT`` = 0.3, and ``backward(dout, aux_douts)`` takes their gradients.
They are dropped at test time (evaluation mode runs the main path alone).

The small variants change a few numbers: conv1 3x3 / 1, the stem's pools
stride 1 (so 28 or 32 pixels reach inception3a), every width times 1/4.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy

from .. import backend as B
from ..fast import implementations
from ..layers import AvgPool2d, Concat, Dropout, Flatten, GlobalAvgPool2d, Pad2D, Sequential
from ..layers.base import check_dtype
from .net import Net

__all__ = ["GoogLeNet", "Inception", "AUX_WEIGHT", "googlenet", "googlenet_small", "googlenet_cifar"]

AUX_WEIGHT = 0.3                                             # section 5: the aux losses' weight
AUX_TAPS = OrderedDict(inception4a="aux1", inception4d="aux2")   # which output each aux head reads


class Inception(Concat):
    """One inception module (Figure 2b): four branches concatenated; numbers as in Table 1's row."""

    def __init__(self, L, in_channels, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj, rng,
                 dtype=numpy.float32):
        dt = check_dtype(dtype)
        c = in_channels
        super().__init__(
            ("branch1x1", Sequential(("conv", L.Conv2D(c, n1x1, 1, rng=rng, dtype=dt)), ("relu", L.ReLU(dt)))),
            ("branch3x3", Sequential(("reduce", L.Conv2D(c, n3x3_reduce, 1, rng=rng, dtype=dt)),
                                     ("relu_reduce", L.ReLU(dt)),
                                     ("conv", L.Conv2D(n3x3_reduce, n3x3, 3, 1, 1, rng=rng, dtype=dt)),
                                     ("relu", L.ReLU(dt)))),
            ("branch5x5", Sequential(("reduce", L.Conv2D(c, n5x5_reduce, 1, rng=rng, dtype=dt)),
                                     ("relu_reduce", L.ReLU(dt)),
                                     ("conv", L.Conv2D(n5x5_reduce, n5x5, 5, 1, 2, rng=rng, dtype=dt)),
                                     ("relu", L.ReLU(dt)))),
            ("branch_pool", Sequential(("pad", Pad2D(1, -numpy.inf, dt)), ("pool", L.MaxPool2D(3, 1, dtype=dt)),
                                       ("proj", L.Conv2D(c, pool_proj, 1, rng=rng, dtype=dt)),
                                       ("relu", L.ReLU(dt)))),
            dtype=dt)
        self.numbers = (in_channels, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj)
        self.out_channels = n1x1 + n3x3 + n5x5 + pool_proj

    def extra_repr(self):
        return "{}: 1x1 {}, 3x3 reduce {}, 3x3 {}, 5x5 reduce {}, 5x5 {}, pool proj {}".format(*self.numbers)


class GoogLeNet(Net):
    """GoogLeNet v1; ``width`` multiplies every channel number of Table 1 (1 for the paper's)."""

    def __init__(self, num_classes, input_shape, conv1=(7, 2, 3), stem_pool_stride=2, width=1.0, aux=False,
                 dropout=0.4, name="googlenet", fast=True, dtype=numpy.float32, seed=0):
        super().__init__(name, num_classes, input_shape, dtype, fast, seed, dict(
            conv1=tuple(conv1), stem_pool_stride=stem_pool_stride, width=width,
            dropout=dropout), aux=bool(aux))
        L, dt = implementations(fast, B.get_backend()), self.dtype
        rng = numpy.random.default_rng(seed)

        def w(*channels):
            return [max(1, int(round(c * width))) for c in channels]

        def pool(stride):                      # max pool 3x3, padded with -inf
            return Sequential(("pad", Pad2D(1, -numpy.inf, dt)), ("pool", L.MaxPool2D(3, stride, dtype=dt)))

        k1, s1, p1 = conv1
        c64, c192 = w(64, 192)
        self.conv1 = L.Conv2D(self.input_shape[0], c64, k1, s1, p1, rng=rng, dtype=dt)
        self.relu1 = L.ReLU(dt)
        self.pool1 = pool(stem_pool_stride)
        self.norm1 = L.LRN(5, 1e-4, 0.75, 1.0, convention="caffe", dtype=dt)
        self.conv2_reduce = L.Conv2D(c64, c64, 1, rng=rng, dtype=dt)
        self.relu2_reduce = L.ReLU(dt)
        self.conv2 = L.Conv2D(c64, c192, 3, 1, 1, rng=rng, dtype=dt)
        self.relu2 = L.ReLU(dt)
        self.norm2 = L.LRN(5, 1e-4, 0.75, 1.0, convention="caffe", dtype=dt)
        self.pool2 = pool(stem_pool_stride)
        self.inception3a = Inception(L, c192, *w(64, 96, 128, 16, 32, 32), rng=rng, dtype=dt)
        self.inception3b = Inception(L, self.inception3a.out_channels, *w(128, 128, 192, 32, 96, 64), rng=rng, dtype=dt)
        self.pool3 = pool(2)
        self.inception4a = Inception(L, self.inception3b.out_channels, *w(192, 96, 208, 16, 48, 64), rng=rng, dtype=dt)
        self.inception4b = Inception(L, self.inception4a.out_channels, *w(160, 112, 224, 24, 64, 64), rng=rng, dtype=dt)
        self.inception4c = Inception(L, self.inception4b.out_channels, *w(128, 128, 256, 24, 64, 64), rng=rng, dtype=dt)
        self.inception4d = Inception(L, self.inception4c.out_channels, *w(112, 144, 288, 32, 64, 64), rng=rng, dtype=dt)
        self.inception4e = Inception(L, self.inception4d.out_channels, *w(256, 160, 320, 32, 128, 128), rng=rng, dtype=dt)
        self.pool4 = pool(2)
        self.inception5a = Inception(L, self.inception4e.out_channels, *w(256, 160, 320, 32, 128, 128), rng=rng, dtype=dt)
        self.inception5b = Inception(L, self.inception5a.out_channels, *w(384, 192, 384, 48, 128, 128), rng=rng, dtype=dt)
        self.avgpool = GlobalAvgPool2d(dt)
        self.flatten = Flatten(dt)
        if dropout:
            self.drop = Dropout(dropout, seed=None if seed is None else seed * 1000 + 1, dtype=dt)
        self.fc = L.Linear(self.features(), self.num_classes, rng=rng, dtype=dt)

        # the auxiliary classifiers: not in the main path (not attributes that forward runs in order)
        self.aux = OrderedDict()
        if aux:
            c128, c1024 = w(128, 1024)
            for i, (tap, head) in enumerate(AUX_TAPS.items()):
                layers = list(self.layers)
                cin = self.layers[tap].out_channels
                pooled = AvgPool2d(5, 3, dtype=dt)
                conv_shape = pooled.output_shape(self.shape(OrderedDict((n, self.layers[n]) for n in
                                                                        layers[:layers.index(tap) + 1])))
                self.aux[head] = Sequential(
                    ("pool", pooled),
                    ("conv", L.Conv2D(cin, c128, 1, rng=rng, dtype=dt)), ("relu", L.ReLU(dt)),
                    ("flatten", Flatten(dt)),
                    ("fc1", L.Linear(c128 * conv_shape[1] * conv_shape[2], c1024, rng=rng, dtype=dt)),
                    ("relu_fc1", L.ReLU(dt)),
                    ("drop", Dropout(0.7, seed=None if seed is None else seed * 1000 + 10 + i, dtype=dt)),
                    ("fc2", L.Linear(c1024, self.num_classes, rng=rng, dtype=dt)))
        self.aux_logits = OrderedDict()
        self.taps = OrderedDict((head, tap) for tap, head in AUX_TAPS.items() if head in self.aux)   # for summary()

    runs_children_in_order = False      # the aux heads branch off the main path

    def children(self):
        return OrderedDict(list(self.layers.items()) + list(self.aux.items()))

    def forward(self, x):
        """The main path's logits; in training with ``aux``, the heads' logits go to ``aux_logits``."""
        self.activations, self.aux_logits = OrderedDict(), OrderedDict()
        for name, layer in self.layers.items():
            x = layer.forward(x)
            if self.keep_activations:
                self.activations[name] = x
            head = AUX_TAPS.get(name)
            if self.training and head in self.aux:
                self.aux_logits[head] = self.aux[head].forward(x)
        return x

    def backward(self, dout, aux_douts=None):
        """dx from the main path's gradient ``dout`` and, optionally, the heads' ({"aux1": d, "aux2": d}).

        Where a head branches off (inception4a, inception4d), its input
        gradient adds to the main path's before going on down.
        """
        aux_douts = aux_douts or {}
        unknown = set(aux_douts) - set(self.aux_logits)
        if unknown:
            raise ValueError(f"{self.name}: gradients for {sorted(unknown)}, but the last forward ran the aux "
                             f"heads {list(self.aux_logits) or 'none (aux=False, or evaluation mode)'}")
        for name, layer in reversed(self.layers.items()):
            head = AUX_TAPS.get(name)
            if head in aux_douts:
                dout = dout + self.aux[head].backward(aux_douts[head])
            dout = layer.backward(dout)
        return dout


def googlenet(num_classes=1000, input_shape=(3, 224, 224), aux=False, fast=True, dtype=numpy.float32, seed=0):
    """The paper's GoogLeNet (Table 1), 3x224x224; ``aux=True`` adds the two auxiliary classifiers."""
    return GoogLeNet(num_classes, input_shape, aux=aux, name="googlenet", fast=fast, dtype=dtype, seed=seed)


def googlenet_small(num_classes=10, input_shape=(1, 28, 28), aux=False, fast=True, dtype=numpy.float32, seed=0):
    """For 1x28x28: conv1 3x3 / 1, stem pools stride 1, widths / 4 (28 -> inception3 28 -> 4: 14 -> 5: 7)."""
    return GoogLeNet(num_classes, input_shape, (3, 1, 1), 1, 0.25, aux=aux, name="googlenet-small",
                     fast=fast, dtype=dtype, seed=seed)


def googlenet_cifar(num_classes=10, input_shape=(3, 32, 32), aux=False, fast=True, dtype=numpy.float32, seed=0):
    """For 3x32x32: as googlenet_small (32 -> inception3 32 -> 4: 16 -> 5: 8)."""
    return GoogLeNet(num_classes, input_shape, (3, 1, 1), 1, 0.25, aux=aux, name="googlenet-cifar",
                     fast=fast, dtype=dtype, seed=seed)
