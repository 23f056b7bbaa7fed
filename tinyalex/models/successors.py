"""The networks after AlexNet by name, and their sizes side by side (computed from the models).

    from tinyalex.models.successors import SUCCESSORS, complexity_table
    net = SUCCESSORS["resnet20"](num_classes=10)
    print(format_complexity(complexity_table()))

Each builder takes ``num_classes``, ``input_shape``, ``fast``, ``dtype``
and ``seed`` (GoogLeNet's also ``aux``). The names ending in "-small" are
for 1x28x28 images (Fashion-MNIST), "-cifar" (and resnet20) for 3x32x32.
"""
from __future__ import annotations

from collections import OrderedDict

from ..layers import Sequential
from .alexnet import AlexNet
from .googlenet import googlenet, googlenet_cifar, googlenet_small
from .net import multiply_adds
from .resnet import resnet18, resnet20, resnet20_small, resnet50
from .vgg import vgg11, vgg11_cifar, vgg11_small, vgg16
from .zfnet import zfnet, zfnet_cifar, zfnet_small

__all__ = ["SUCCESSORS", "TRAINABLE", "complexity_table", "format_complexity"]

SUCCESSORS = OrderedDict([
    ("zfnet", zfnet), ("zfnet-small", zfnet_small), ("zfnet-cifar", zfnet_cifar),
    ("vgg11", vgg11), ("vgg16", vgg16), ("vgg11-small", vgg11_small), ("vgg11-cifar", vgg11_cifar),
    ("googlenet", googlenet), ("googlenet-small", googlenet_small), ("googlenet-cifar", googlenet_cifar),
    ("resnet18", resnet18), ("resnet50", resnet50), ("resnet20", resnet20), ("resnet20-small", resnet20_small),
])

# the ones a class session can train on a CPU (28x28 and 32x32 inputs)
TRAINABLE = ("zfnet-small", "zfnet-cifar", "vgg11-small", "vgg11-cifar", "googlenet-small", "googlenet-cifar",
             "resnet20", "resnet20-small")

COMPARED = OrderedDict([("alexnet", AlexNet), ("zfnet", zfnet), ("vgg16", vgg16), ("googlenet", googlenet),
                        ("resnet50", resnet50)])


def complexity_table(builders=None):
    """[(name, input shape, parameters, multiply-adds per image)] for each model, counted from the built model.

    ``builders`` maps a name to a function of no arguments returning the
    model (default: the ImageNet nets, AlexNet to ResNet-50, 1000 classes).
    Multiply-adds count the convolutions and fully connected layers, as the
    papers do (see :func:`tinyalex.models.net.trace`).
    """
    builders = COMPARED if builders is None else builders
    rows = []
    for name, build in builders.items():
        model = build()
        chain = model if isinstance(model, Sequential) else Sequential(*model.children().items())
        rows.append((name, tuple(model.input_shape), model.num_parameters(),
                     multiply_adds(chain, model.input_shape)))
    return rows


def format_complexity(rows):
    """The table as text: model, input, parameters (M), multiply-adds (G)."""
    w = max([12] + [len(name) for name, *_ in rows])
    out = [f"{'model':<{w}} {'input':<11} {'parameters':>14} {'mult-adds':>10}"]
    for name, shape, params, macs in rows:
        out.append(f"{name:<{w}} {'x'.join(map(str, shape)):<11} {params:>14,} {macs / 1e9:>9.3f}G")
    return "\n".join(out)
