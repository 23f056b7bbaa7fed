# %% [markdown]
# # 12. After AlexNet: ZFNet, VGG, GoogLeNet, ResNet
#
# AlexNet (2012) was followed by four networks that each changed one idea.
# tinyalex builds every one of them from the same checked layers you have
# used so far (`tinyalex/models/zfnet.py`, `vgg.py`, `googlenet.py`,
# `resnet.py`), so each idea can be read, counted and gradient-checked here.
#
# | network | year | what changed | why |
# |---|---|---|---|
# | ZFNet (Zeiler and Fergus) | 2013 | conv1 7×7 stride 2 (AlexNet 11×11 stride 4), conv2 stride 2, one tower | the deconvnet (notebook 13) showed conv1 missing middle frequencies and conv2 aliasing |
# | VGG (Simonyan and Zisserman) | 2014 | only 3×3 convolutions, stride 1, pad 1; 2×2 pools; 16-19 layers | two 3×3 layers see 5×5 with fewer weights and one more ReLU |
# | GoogLeNet (Szegedy et al.) | 2014 | inception modules: 1×1, 3×3, 5×5 and pooling in parallel, concatenated; 1×1 reductions; no big fc | width and depth at a budget: 12× fewer parameters than AlexNet |
# | ResNet (He et al.) | 2015 | residual blocks `relu(F(x) + x)`, BatchNorm, bottlenecks 1×1-3×3-1×1 | deeper plain nets trained *worse* (degradation); shortcuts fixed it |
#
# **Time:** fast mode (`TINYALEX_FAST=1`) counts the small variants instead of
# building the full ImageNet networks (VGG-16 alone is 138M weights, about
# half a gigabyte): seconds. Full mode builds them all.

# %%
import os

import numpy as np

from tinyalex.fast import implementations
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import BatchNorm2d
from tinyalex.models import build_model
from tinyalex.models.googlenet import Inception
from tinyalex.models.net import multiply_adds
from tinyalex.models.resnet import BasicBlock
from tinyalex.models.successors import complexity_table, format_complexity
from tinyalex.models.vgg import CONFIGS

FAST = os.environ.get("TINYALEX_FAST") == "1"
L = implementations(fast=False)          # the reference layer classes of tinyalex/layers
rng = np.random.default_rng(0)

# %% [markdown]
# ## ZFNet: a smaller, denser first layer
#
# AlexNet's conv1 takes 11×11 windows every 4 pixels; ZFNet takes 7×7 windows
# every 2, and conv2 strides by 2 so that conv3-conv5 still see 13×13 maps.
# The summary shows the shapes, computed from the layers (nothing is run).

# %%
zf = build_model("zfnet", fast=False) if not FAST else build_model("zfnet-small", fast=False)
print("\n".join(zf.summary().splitlines()[:16]))

# %% [markdown]
# ## VGG: only 3×3 convolutions
#
# Three stacked 3×3 convolutions of C channels see a 7×7 window with
# 3 · 9 C² = 27 C² weights; one 7×7 layer needs 49 C². VGG-16
# (configuration D) has 2, 2, 3, 3, 3 convolutions in its five stages of 64,
# 128, 256, 512, 512 channels, then AlexNet's classifier on a 512×7×7 map.
# Its parameter count, from that description alone:

# %%
def vgg_parameters(config, widths=(64, 128, 256, 512, 512), fc=(4096, 4096), side=224, cin=3, classes=1000):
    total = 0
    for n, width in zip(CONFIGS[config], widths):
        for _ in range(n):
            total += cin * width * 9 + width          # 3x3 weights and biases
            cin = width
        side //= 2                                    # each stage ends in a 2x2 / 2 max pool
    sizes = [cin * side * side, *fc, classes]
    return total + sum(a * b + b for a, b in zip(sizes, sizes[1:]))


print(f"VGG-16 by the formula: {vgg_parameters('D'):,} (the paper's 138M; torchvision's 138,357,544)")
print(f"of which fc6 alone: {512 * 7 * 7 * 4096 + 4096:,}")
small = build_model("vgg11-small")
print(f"vgg11-small: formula {vgg_parameters('A', (16, 32, 64, 128, 128), (512, 512), 32, 1, 10):,}, "
      f"model {small.num_parameters():,}")
if not FAST:
    print(f"vgg16 model: {build_model('vgg16').num_parameters():,}")

# %% [markdown]
# ## GoogLeNet: the inception module and its 1×1 reductions
#
# An inception module runs four branches on the same input and concatenates
# their outputs along channels. Before the 3×3 and 5×5 convolutions, a 1×1
# convolution *reduces* the channels. Inception 3a (Table 1) reads 192
# channels of 28×28; its 5×5 branch reduces to 16 channels first, then makes
# 32. Without the reduction, the 5×5 convolution would read all 192:

# %%
side, cin, reduce, out = 28, 192, 16, 32
direct = dict(weights=cin * out * 25, macs=side * side * out * cin * 25)
reduced = dict(weights=cin * reduce + reduce * out * 25, macs=side * side * (reduce * cin + out * reduce * 25))
for what in ("weights", "macs"):
    print(f"5x5 branch {what}: direct {direct[what]:,}, with the 1x1 reduction {reduced[what]:,} "
          f"({direct[what] / reduced[what]:.1f}x fewer)")

# %% [markdown]
# The module is a `Concat` of `Sequential` branches of checked layers, so its
# backward is the sum over branches of each branch's backward on its slice of
# the output gradient. A gradient check in float64 on a tiny module compares
# every derivative with central differences:

# %%
f64 = np.float64
module = Inception(L, 3, 2, 2, 3, 1, 2, 1, rng=rng, dtype=f64)
print(gradcheck(module, rng.standard_normal((2, 3, 5, 5))))

# %% [markdown]
# ## ResNet: the residual block's backward
#
# A basic block computes `y = relu(F(x) + x)` with `F` two 3×3 convolutions,
# each followed by BatchNorm (a ReLU between). Write `s = F(x) + x` and
# `g = dL/ds = dL/dy · [s > 0]`. Since `s` depends on `x` twice,
#
#     dL/dx = (dF/dx)ᵀ g + g
#
# the body's backward of `g`, *plus `g` itself* through the shortcut. That
# extra `+ g` is why the gradient reaches early layers of a deep ResNet even
# when `(dF/dx)ᵀ` shrinks it: the identity path carries it unchanged. Here
# the block's backward is checked against this formula, then numerically:

# %%
block = BasicBlock(L, 4, 4, stride=1, rng=rng, dtype=f64)
x = rng.standard_normal((2, 4, 6, 6))
y = block.forward(x)
dy = rng.standard_normal(y.shape)
dx = block.backward(dy)
s = block.body.forward(x) + x                       # the same batch: BatchNorm's statistics are the same
g = dy * (s > 0)
print("block backward == body backward of g + g:", np.allclose(dx, block.body.backward(g) + g))
print(gradcheck(block, x))

# %% [markdown]
# BatchNorm (which ResNet uses after every convolution, where AlexNet had
# LRN after two) normalizes each channel over the batch and the positions,
# then scales and shifts it with learned γ, β. Its backward, gradient-checked:

# %%
bn = BatchNorm2d(3, dtype=f64)
print(gradcheck(bn, rng.standard_normal((4, 3, 5, 5))))

# %% [markdown]
# ## Side by side: parameters and multiply-adds, counted from the models
#
# `complexity_table()` builds each network and counts its parameters and its
# multiply-adds per image (convolutions and fully connected layers, as the
# papers count). `python -m tinyalex experiment complexity` draws the same as
# a plot. Note where the parameters are: VGG-16's are mostly in fc6-fc8;
# GoogLeNet and ResNet-50 end in global average pooling and one small fc.

# %%
if FAST:
    names = ["alexnet-small", "zfnet-small", "vgg11-small", "googlenet-small", "resnet20-small"]
    rows = complexity_table({n: (lambda n=n: build_model(n)) for n in names})
else:
    rows = complexity_table()            # AlexNet, ZFNet, VGG-16, GoogLeNet, ResNet-50 with 1000 classes
print(format_complexity(rows))
res = build_model("resnet20")
print(f"\nresnet20 (CIFAR, section 4.2): {res.num_parameters():,} parameters, "
      f"{multiply_adds(res) / 1e6:.1f}M multiply-adds per 32x32 image")

# %% [markdown]
# ## Train one
#
# Every small variant trains with the same command as AlexNet, e.g.
#
#     python -m tinyalex train --model resnet20-small --epochs 5
#     python -m tinyalex train --dataset cifar10 --model vgg11-cifar --epochs 10
#
# AlexNet-only flags (`--no-lrn`, `--width`, ...) are refused for them with
# a one-line error. The experiments `normalization` (LRN vs BatchNorm vs
# neither) and `residual` (plain vs residual nets of the same depth) compare
# the ideas of this notebook by training; their measured results are in
# docs/results.md.
