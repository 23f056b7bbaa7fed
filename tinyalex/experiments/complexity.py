"""Experiment 11: parameters and multiply-adds of AlexNet, ZFNet, VGG-16, GoogLeNet and ResNet-50, side by side.

Nothing is trained and nothing is typed in: each network is built by
tinyalex.models (1000 classes, 224x224 inputs, AlexNet 227x227) and its
parameters counted, its multiply-adds per image traced layer by layer
(:func:`tinyalex.models.net.trace`: convolutions C_out H_out W_out (C_in /
groups) k_h k_w, fully connected in * out, as the papers count). The table
also splits each network's parameters into convolutional and fully
connected ones, which is where the story is: VGG-16 has 124M of its 138M in
fc6-fc8, GoogLeNet and ResNet replace them by global average pooling.
The quick mode does the same for the small 28x28 variants.
"""
from __future__ import annotations

from collections import OrderedDict

from ..layers import Linear, Sequential
from ..models.net import trace
from ..models.successors import COMPARED, SUCCESSORS, complexity_table
from ..models.alexnet import alexnet_small
from ..viz import figure, save_figure
from .common import Result, Settings, Table, quick_settings

NAME = "complexity"
TITLE = "Parameters and multiply-adds: AlexNet, ZFNet, VGG-16, GoogLeNet, ResNet-50 (computed from the models)"
PAPER = ("AlexNet: 60M parameters; VGG-16: 138M; GoogLeNet: about 7M (12x fewer than AlexNet), 1.5G multiply-adds; "
         "ResNet-50: 3.8G FLOPs (multiply-adds) and 25.6M parameters, fewer than VGG-16/19's 15.3/19.6G.")
FULL = Settings(dataset="none", seeds=1, extra={"models": "imagenet"})     # nothing trained: no data, seeds unused
QUICK = quick_settings(extra={"models": "small"})
SMALL = OrderedDict([("alexnet-small", alexnet_small)] + [(n, SUCCESSORS[n]) for n in
                     ("zfnet-small", "vgg11-small", "googlenet-small", "resnet20-small")])


def describe(s: Settings) -> str:
    which = "the ImageNet networks (1000 classes)" if s.extra.get("models") == "imagenet" else \
        "the small 28x28 variants (10 classes)"
    return f"{which}, built and counted; nothing trained"


def fc_parameters(model):
    """Parameters of the fully connected layers (Linear) of ``model``."""
    chain = model if isinstance(model, Sequential) else Sequential(*model.children().items())
    return sum(layer.num_parameters() for _, layer, *_ in trace(chain, model.input_shape)
               if isinstance(layer, Linear))


def run(s: Settings, out, log=print) -> Result:
    builders = COMPARED if s.extra.get("models") == "imagenet" else SMALL
    rows, fc = [], {}
    for name, build in builders.items():
        log(f"  {name}")
        model = build()
        fc[name] = fc_parameters(model)
        rows += complexity_table({name: lambda m=model: m})
        del model
    base_params, base_macs = rows[0][2], rows[0][3]
    table = Table("Parameters and multiply-adds per image, counted from the built models",
                  ["network", "input", "parameters", "of which fully connected", "multiply-adds",
                   f"parameters / {rows[0][0]}'s", f"multiply-adds / {rows[0][0]}'s"],
                  [[name, "x".join(map(str, shape)), f"{p / 1e6:.2f}M", f"{fc[name] / 1e6:.2f}M ({100 * fc[name] / p:.0f}%)",
                    f"{m / 1e9:.3f}G", f"{p / base_params:.2f}", f"{m / base_macs:.2f}"]
                   for name, shape, p, m in rows])
    _plot(rows, out / "complexity.png")
    return Result(
        tables=[table],
        figures=[("complexity.png", "Parameters against multiply-adds per image (log scales)")],
        notes=["Multiply-adds count convolutions and fully connected layers only (ReLU, pooling, normalization "
               "and additions are not counted), as the papers do; AlexNet as one network with its grouped "
               "convolutions (the two towers' sum). GoogLeNet without its auxiliary classifiers (used only in "
               "training)."],
        data={"data_label": "no dataset", "rows": [dict(name=n, input=list(sh), parameters=p, multiply_adds=m,
                                                     fc_parameters=fc[n]) for n, sh, p, m in rows]})


def _plot(rows, path):
    fig = figure(6, 4.2)
    ax = fig.subplots()
    for name, _, p, m in rows:
        ax.scatter(m / 1e9, p / 1e6, s=40)
        ax.annotate(name, (m / 1e9, p / 1e6), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("multiply-adds per image (G)")
    ax.set_ylabel("parameters (M)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
