# %% [markdown]
# # 7. The whole AlexNet
#
# Section 3.5 and Figure 2: five convolutional and three fully connected layers,
# ReLU after every one of them, local response normalization after conv1 and
# conv2, overlapping max pooling after the two normalizations and after conv5,
# dropout on fc6 and fc7, and a 1000-way softmax. tinyalex builds it from the
# layers of notebooks 2–6:
#
# ```python
# from tinyalex.models import AlexNet, build_model
# net = AlexNet()                              # the paper's net: 3x227x227 -> 1000
# small = build_model("alexnet-small")         # the same structure for 1x28x28 Fashion-MNIST
# ```

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from tinyalex.bench import step_matmul_flops
from tinyalex.models import AlexNet, build_model

FAST = os.environ.get("TINYALEX_FAST") == "1"

# %% [markdown]
# ## The summary table
#
# Output shapes per image and parameters per layer. (Building the full net
# draws its 61 million initial weights, about a second.)

# %%
net = AlexNet()
print(net.summary())

# %% [markdown]
# The total must be the paper's net exactly: 60,965,224 parameters for 1000
# classes (weights and biases). The paper says "60 million".

# %%
print(f"{net.num_parameters():,} parameters")
assert net.num_parameters() == 60_965_224

# %% [markdown]
# ## Where the 60 million parameters sit, and where the work is
#
# Parameters per weight layer against the arithmetic each layer costs.
# `tinyalex.bench.step_matmul_flops` counts the floating-point operations of
# every matrix product in a training step (2 per multiply-add; forward, then
# dW and dx in the backward pass); divided by the batch it is per image.

# %%
params = {}
for name, p in net.named_parameters():
    layer = name.split(".")[0]
    params[layer] = params.get(layer, 0) + p.size
total_flops, flops = step_matmul_flops("alexnet", batch=1)
names = list(params)
print(f"{'layer':6s} {'parameters':>12s} {'share':>7s} {'GFLOP/image (train step)':>26s} {'share':>7s}")
for n in names:
    print(f"{n:6s} {params[n]:12,d} {params[n] / net.num_parameters():7.1%} {flops[n] / 1e9:26.3f} {flops[n] / total_flops:7.1%}")
print(f"total  {net.num_parameters():12,d}         {total_flops / 1e9:26.3f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].bar(names, [params[n] / 1e6 for n in names], color=["C0"] * 5 + ["C1"] * 3)
axes[0].set_ylabel("parameters (millions)"); axes[0].set_title("parameters: 96% in the fully connected layers")
axes[1].bar(names, [flops[n] / 1e9 for n in names], color=["C0"] * 5 + ["C1"] * 3)
axes[1].set_ylabel("GFLOP per image, training step"); axes[1].set_title("arithmetic: almost all in the convolutions")
plt.tight_layout(); plt.show()

# %% [markdown]
# The two halves of the net are opposites: the convolutions hold 4% of the
# parameters and do most of the arithmetic; fc6 alone holds 62% of the
# parameters (a $4096 \times 9216$ matrix) and costs little to compute. That is
# why fc6 and fc7 get dropout (section 4.2: they are where the net overfits),
# and why later nets (GoogLeNet, ResNet) replaced them with global pooling.

# %% [markdown]
# ## One forward and backward pass
#
# On the full net a batch of one image already takes a noticeable time on a CPU,
# so here we run the same structure at Fashion-MNIST size ("alexnet-small",
# 1×28×28 → 10 classes) and look at the shape of every activation.

# %%
from tinyalex.layers import SoftmaxCrossEntropy

small = build_model("alexnet-small", seed=0)
x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
labels = np.array([0, 1, 2, 3])
loss_fn = SoftmaxCrossEntropy()
with small.keep_activations():
    logits = small.forward(x)
    acts = dict(small.activations)
loss = loss_fn.forward(logits, labels)
dx = small.backward(loss_fn.backward())
for name, a in acts.items():
    print(f"{name:8s} {tuple(a.shape)}")
print(f"loss {loss.item():.3f} in training mode (log 10 = {np.log(10):.3f}); dx {dx.shape}")

# %% [markdown]
# Every parameter got a gradient:

# %%
print(sum(1 for _, g in small.named_gradients() if g is not None), "of", len(list(small.named_parameters())),
      "parameter tensors have a gradient")

# %% [markdown]
# ## Two sanity checks before any long training run
#
# Two checks from Stanford's CS231n notes that catch most broken nets in
# seconds, before an hour of training is wasted.
#
# **1. The initial loss.** A net that knows nothing should give every class
# about the same probability, $1/C$, so its cross-entropy is about
# $\log C$ ($\log 10 = 2.303$ here). The loss printed above is larger, and
# for two reasons that are *not* bugs:
#
# * it was computed in **training mode**: dropout zeroes half of fc6's and
#   fc7's outputs and doubles the rest, which widens the spread of the logits;
# * fc8 is **He-initialised** (tinyalex's default for the small nets, see
#   docs/paper.md), so even in evaluation mode the ten logits have a spread
#   $s$ of order 1 (measured below: 1.0 at full width, 0.6 at the fast
#   mode's quarter width), not about 0.
#
# (It was also computed on four images of random noise; below we use real ones.)
#
# With logits spread like a Gaussian of standard deviation $s$ the expected
# loss is roughly $\log C + s^2/2$. Measured on real images (standardised as
# the trainer does), in both modes, and with the paper's initialisation
# ($\mathcal N(0, 0.01)$ weights, `init="paper"`), whose logits are nearly 0:

# %%
from tinyalex.data import load_dataset

try:
    images, targets = load_dataset("fashion-mnist", split="train", download=False).get_batch(np.arange(256))
    source = "Fashion-MNIST"
except Exception as e:   # no Debian package: synthetic images
    print("Fashion-MNIST not found here, using synthetic images:", type(e).__name__)
    images, targets = load_dataset("synthetic", split="train", n=256, image_shape=(1, 28, 28)).get_batch(np.arange(256))
    source = "synthetic"
xs = images.astype(np.float32) / 255
xs = (xs - xs.mean()) / xs.std()                       # standardised, as the trainer's pipeline does
width = {"width": 0.25} if FAST else {}
print(f"{source}, 256 images, log C = log 10 = {np.log(10):.3f}")
for init in ("he", "paper"):
    net0 = build_model("alexnet-small", seed=0, init=init, **width)
    for mode in ("train", "eval"):
        getattr(net0, mode)()
        z = net0.forward(xs)
        L0 = SoftmaxCrossEntropy().forward(z, targets).item()
        s = float(z.std())
        print(f"init {init:5s} {mode:5s} mode: loss {L0:.3f}   logit spread s {s:.2f}   log C + s^2/2 = {np.log(10) + s * s / 2:.3f}")

# %% [markdown]
# The check to run on your own nets: **in evaluation mode, the initial loss
# is $\log C$ plus a little** (as much as the logit spread explains). A loss
# far above it (say 20) means exploding initial weights or unnormalised
# inputs; a loss far below $\log C$ before any training means the labels
# leak into the input.
#
# **2. Overfit a tiny subset.** A net with 45 thousand (fast mode, width 0.25)
# or 698 thousand parameters must be able to memorise 50 images. Train with
# every regularizer off (no dropout, no weight decay, no flips or crops) and
# the training accuracy must reach about 100%; if it does not, the backward
# pass, the optimizer or the learning rate is broken, and no amount of
# training on the full set will help. This uses the same training loop as
# notebook 10 (`tinyalex.train.fit`):

# %%
from tinyalex.train.trainer import TrainConfig, evaluate, fit, load_data, load_trained


tiny = TrainConfig(dataset="fashion-mnist" if source == "Fashion-MNIST" else "synthetic", model="alexnet-small",
                   width=0.25 if FAST else None, limit_train=50, val_fraction=0, epochs=25, batch_size=10,
                   lr=0.01, weight_decay=0, dropout=0, flip=False, pad=0, schedule="none",
                   out="runs/07-overfit-" + ("fast" if FAST else "full"), progress=False, plots=False, seed=0)
h = fit(tiny, test=False, log=lambda *a: None)          # silent: 25 epochs of 5 steps
print("training-mode accuracy per epoch:", " ".join(f"{e['train_top1']:.0%}" for e in h.epochs))
overfit_model, overfit_pipe, _, _ = load_trained(tiny.out)
fifty = load_data(tiny)[0]                             # the same 50 training images
print(f"after {len(h.epochs)} epochs, evaluation-mode accuracy on the 50 training images: "
      f"{evaluate(overfit_model, fifty, overfit_pipe)['top1']:.0%}")

# %% [markdown]
# The net memorised the 50 images (measured: 100% in both fast and full mode,
# width 0.25 and 1). On such a subset it has learned nothing general: its
# accuracy on test images would be near chance. That is the point: capacity
# and a working backward pass first, generalisation next (notebook 10).
