"""Experiment 10: plain vs residual networks of the same depth (He et al. 2015, Figure 1), at CPU size.

The CIFAR ResNets of section 4.2 (3x3 convolutions, BatchNorm, three stages
of n basic blocks with 16, 32, 64 channels scaled by ``widths``, global
average pooling, one fully connected layer; 6n + 2 layers), built by
tinyalex.models.resnet, and their *plain* twins: the same layers with the
same initial weights, each block's shortcut removed (``ReLU(F(x))`` instead
of ``ReLU(F(x) + x)``; the option A shortcuts have no parameters, so the
twins have exactly the same parameters). Each depth is trained on the same
data in the same order. He et al. saw the plain 56-layer net train *worse*
than the plain 20-layer one (degradation) while the residual 56-layer net
trained better; the question here is what a CPU-sized run shows.
"""
from __future__ import annotations

from collections import OrderedDict

from ..layers import Sequential
from ..models.resnet import ResNet
from .common import (Result, Settings, Table, errors, final_test_error, fmt, histories_json, load_subsets,
                     plot_train_test_error, quick_settings, summarize, train, train_config)

NAME = "residual"
TITLE = "Plain vs residual networks of the same depth (He et al. 2015, Figure 1)"
PAPER = ("On CIFAR-10 a plain 56-layer net had higher training and test error than a plain 20-layer net "
         "(Figure 1, the degradation problem); with identity shortcuts, deeper was better (Figure 6).")
FULL = Settings(dataset="cifar10", train_size=4000, test_size=1000, epochs=4, seeds=1, batch_size=64, lr=0.05,
                extra={"depths": [8, 20], "widths": [8, 16, 32]})
QUICK = quick_settings(lr=0.05, extra={"depths": [8, 14], "widths": [2, 4, 4], "image_shape": (3, 32, 32)})


def describe(s: Settings) -> str:
    w = s.extra["widths"]
    return (f"{s.dataset}: {s.train_size} train / {s.test_size} test images, {s.epochs} epochs, {s.seeds} seed(s), "
            f"batch {s.batch_size}, lr {s.lr}, depths {', '.join(map(str, s.extra['depths']))}, "
            f"stage widths {w[0]}/{w[1]}/{w[2]}")


def cifar_resnet(depth, widths, in_shape, num_classes, seed, plain=False):
    """ResNet-``depth`` of section 4.2 (depth = 6n + 2) with option A shortcuts; ``plain``: shortcuts removed."""
    if (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has 6n + 2 layers (8, 14, 20, 32, 56, ...), got {depth}")
    n = (depth - 2) // 6
    net = ResNet(num_classes, in_shape, "basic", (n, n, n), tuple(widths), stem="cifar", shortcut="A",
                 name=f"{'plain' if plain else 'resnet'}{depth}", seed=seed)
    if plain:
        for stage in ("layer1", "layer2", "layer3"):
            blocks = getattr(net, stage).layers
            for key, block in list(blocks.items()):
                blocks[key] = Sequential(("body", block.body), ("relu", block.relu))   # same names, no add
    return net


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    depths, widths = s.extra["depths"], s.extra["widths"]
    runs = OrderedDict()
    params = {}
    for depth in depths:
        for plain in (True, False):
            label = f"{'plain' if plain else 'residual'}-{depth}"
            runs[label] = []
            for seed in range(s.seeds):
                log(f"  {label}, seed {seed}")
                model = cifar_resnet(depth, widths, data.image_shape, data.num_classes, seed, plain)
                params[label] = model.num_parameters()
                runs[label].append(train(model, data, train_config(s, seed), log=log).history)

    def last(hs, key):
        return fmt(summarize([errors(h, key)[-1] if h.epochs else float("nan") for h in hs]), percent=True)

    table = Table("At the end of training (mean ± std over seeds)",
                  ["network", "layers", "parameters", "training error (eval mode)", "training error (running)",
                   "test error", "diverged"],
                  [[label, label.split("-")[1], f"{params[label]:,}", last(hs, "train_eval_top1"),
                    last(hs, "train_top1"), fmt(summarize([final_test_error(h) for h in hs]), percent=True),
                    sum(h.status == "diverged" for h in hs)] for label, hs in runs.items()])
    plot_train_test_error(runs, out / "error.png", title=f"plain vs residual, {data.label}, {s.seeds} seed(s)")
    return Result(
        tables=[table],
        figures=[("error.png", "Test error (solid) and eval-mode training error (dotted) against epochs")],
        notes=["Same depth, same layers, same initial weights, same data order: the only difference is the "
               "identity shortcut (option A: zero channels where the width doubles).",
               "He et al. trained for 64,000 iterations of batch 128 on 50,000 images; a CPU run of a few epochs "
               "on a few thousand images is far from that: whether the plain net degrades with depth here is "
               "what this table shows, not a re-run of Figure 1. Deeper nets are also slower per epoch.",
               "A constant learning rate (no warm-up, no schedule); BatchNorm running averages (momentum 0.1) at "
               "test time."],
        data={"data_label": data.label, "parameters": params, "runs": histories_json(runs)})
