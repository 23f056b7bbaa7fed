# %% [markdown]
# # 3. ReLU vs tanh
#
# Section 3.1 of the paper: "Deep convolutional neural networks with ReLUs
# train several times faster than their equivalents with tanh units." Their
# Figure 1: a four-layer CNN with ReLUs reached 25% training error on CIFAR-10
# **six times faster** than the same net with tanh.
#
# $$ \text{ReLU}(x) = \max(0, x), \quad \text{ReLU}'(x) = [x > 0]; \qquad
#    \tanh'(x) = 1 - \tanh^2(x). $$
#
# The reason is saturation: tanh's derivative vanishes for large $|x|$, so a
# unit with a large input learns almost nothing; ReLU's derivative is exactly
# 1 for every positive input.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from tinyalex import layers as L
from tinyalex.data import load_dataset
from tinyalex.gradcheck import gradcheck
from tinyalex.train import SGD

FAST = os.environ.get("TINYALEX_FAST") == "1"
rng = np.random.default_rng(0)

# %% [markdown]
# ## The saturation picture
#
# Both functions and their derivatives, computed by the layers' own
# `forward` and `backward` (with `dout = 1`).

# %%
z = np.linspace(-4, 4, 401).reshape(1, -1)
curves = {}
for name, layer in [("ReLU", L.ReLU(np.float64)), ("tanh", L.Tanh(np.float64))]:
    y = layer.forward(z)
    curves[name] = (y[0], layer.backward(np.ones_like(z))[0])

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, (y, dy) in curves.items():
    axes[0].plot(z[0], y, label=name)
    axes[1].plot(z[0], dy, label=name)
axes[0].set_title("f(x)"); axes[1].set_title("f'(x): the factor the gradient is multiplied by")
axes[1].axvspan(-4, -2, color="grey", alpha=0.15); axes[1].axvspan(2, 4, color="grey", alpha=0.15)
axes[1].text(2.1, 0.5, "tanh saturates:\nf' < 0.07", fontsize=9)
for ax in axes:
    ax.legend(); ax.grid(alpha=0.3); ax.set_xlabel("x")
plt.tight_layout(); plt.show()

# %% [markdown]
# How often does it happen? It depends on how widely the pre-activations
# spread. For Gaussian pre-activations of a few scales, the fraction of units
# whose tanh derivative is below 0.1 (units that barely learn):

# %%
for scale in [0.5, 1, 2, 4]:
    pre = rng.standard_normal(100_000) * scale
    print(f"pre-activation std {scale}: tanh' < 0.1 for {np.mean(1 - np.tanh(pre) ** 2 < 0.1):5.1%} of units, "
          f"ReLU' = 0 for {np.mean(pre <= 0):.0%} (and exactly 1 for the rest)")

# %% [markdown]
# Both backward passes pass their gradient checks:

# %%
for layer in (L.ReLU(np.float64), L.Tanh(np.float64)):
    print(type(layer).__name__, "max relative error", f"{gradcheck(layer, rng.standard_normal((3, 5))).max_error:.1e}")

# %% [markdown]
# ## The speed-of-training claim, small
#
# The same four-layer CNN (two conv layers, two fully connected layers, no
# regularization), once with ReLU and once with tanh, trained with the paper's
# SGD (momentum 0.9) on Fashion-MNIST (or synthetic data if the Debian
# package `dataset-fashion-mnist` is absent). As in the paper, each gets its own
# learning rate (the best of a small grid for that nonlinearity) and we record
# the **training error** after every pass over the data.
#
# This is a classroom-sized version: a few thousand images instead of CIFAR-10's
# 50,000, so the numbers differ from the paper's; the shape of the result is
# what to look at.

# %%
try:
    data = load_dataset("fashion-mnist", split="train", download=False)
    source = "Fashion-MNIST"
except Exception as e:  # no Debian package and no network: use synthetic images
    print("Fashion-MNIST not found here, using synthetic data instead:", type(e).__name__)
    data = load_dataset("synthetic", split="train", n=4000, image_shape=(1, 28, 28))
    source = "synthetic"
n_train = 600 if FAST else 3000
epochs = 3 if FAST else 10
xb, yb = data.get_batch(np.arange(n_train))
x_all = (xb.astype(np.float32) / 255.0 - 0.5)
y_all = yb
print(f"{source}: {x_all.shape[0]} images {x_all.shape[1:]}, {epochs} epochs")


def four_layer_cnn(act, seed):
    r = np.random.default_rng(seed)
    return L.Sequential(
        ("conv1", L.Conv2D(1, 8, 5, padding=2, rng=r)), ("act1", act()), ("pool1", L.MaxPool2D(3, 2)),
        ("conv2", L.Conv2D(8, 16, 5, padding=2, rng=r)), ("act2", act()), ("pool2", L.MaxPool2D(3, 2)),
        ("flat", L.Flatten()),
        ("fc3", L.Linear(16 * 6 * 6, 64, rng=r)), ("act3", act()),
        ("fc4", L.Linear(64, 10, rng=r)),
    )


def train(act, lr, seed=0, batch=50):
    net, loss_fn = four_layer_cnn(act, seed), L.SoftmaxCrossEntropy()
    opt = SGD(net, lr=lr, momentum=0.9, weight_decay=0.0)
    order_rng = np.random.default_rng(seed)
    errors = []
    for epoch in range(epochs):
        wrong = 0
        for idx in np.array_split(order_rng.permutation(len(x_all)), len(x_all) // batch):
            logits = net.forward(x_all[idx])
            loss_fn.forward(logits, y_all[idx])
            net.backward(loss_fn.backward())
            opt.step()
            wrong += int((logits.argmax(1) != y_all[idx]).sum())
        errors.append(wrong / len(x_all))      # training error during the epoch
    return errors


lrs = [0.05] if FAST else [0.01, 0.03, 0.1]
t0 = time.perf_counter()
runs = {name: {lr: train(act, lr) for lr in lrs} for name, act in [("ReLU", L.ReLU), ("tanh", L.Tanh)]}
print(f"trained {2 * len(lrs)} nets in {time.perf_counter() - t0:.0f} s")
best = {name: min(r.values(), key=lambda e: e[-1]) for name, r in runs.items()}
best_lr = {name: min(r, key=lambda lr: r[lr][-1]) for name, r in runs.items()}

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name, errs in best.items():
    ax.plot(range(1, epochs + 1), errs, marker="o", label=f"{name} (lr {best_lr[name]})")
target = best["tanh"][-1]          # where tanh ends up after all epochs
ax.axhline(target, color="grey", ls="--", lw=1, label="tanh's final error")
ax.set_xlabel("epoch"); ax.set_ylabel("training error"); ax.legend(); ax.grid(alpha=0.3)
ax.set_title(f"4-layer CNN on {source}: training error per epoch")
plt.show()
reached = {name: next((i + 1 for i, e in enumerate(errs) if e <= target), None) for name, errs in best.items()}
for name in best:
    when = f"reached after {reached[name]} epoch(s)" if reached[name] else f"not reached within {epochs} epochs"
    print(f"{name}: {target:.1%} training error {when} (final {best[name][-1]:.1%})")
if reached["ReLU"]:
    print(f"speed-up of ReLU to tanh's final training error: {reached['tanh'] / reached['ReLU']:.1f}x (the paper: about 6x)")
else:
    print("ReLU did not reach tanh's final training error: no speed-up on this run")

# %% [markdown]
# Read the gap between the curves at equal epochs, and the printed ratio:
# that is the paper's measure (epochs to a fixed training error).
#
# **On this small problem the paper's speed-up does not appear.** In a
# full-mode run (`TINYALEX_FAST` unset: 3000 images, 10 epochs, three learning
# rates each; 18 minutes wall on this project's shared 2-core VM at load
# average ~10, `time jupyter execute 03-relu-vs-tanh.ipynb`) both picked
# lr 0.03, and tanh was *ahead* at every epoch: 5.6% training error after 10
# epochs against ReLU's 9.3%. The project's experiment agrees (ratio 1.0 ± 0.3
# at the paper's 25% threshold, docs/results.md). Why:
#
# * tanh only slows learning where it **saturates**. Here the inputs are
#   centred and scaled and the weights He-initialized, so most
#   pre-activations stay in tanh's nearly linear range (see the table of
#   Gaussian pre-activations above: at unit scale only 7% of units have
#   $\tanh' < 0.1$; the first conv layer here starts with a spread of about
#   0.5, where almost none do: measured in the next cell).
# * Fashion-MNIST at 25% (or even 10%) error is an easy target reached in a
#   few epochs; the paper's 25% on CIFAR-10 took tanh tens of epochs.
#
# ## Try it: push tanh into saturation
#
# Multiply the input by `SCALE` (larger pre-activations everywhere) and the
# share of saturated tanh units grows; the cell measures it in conv1 of a
# freshly initialised net. Then it trains both nets again on the scaled
# input. **Lower the learning rate with the scale:** the ReLU net is
# positively homogeneous, so ×4 on the input is ×4 on every activation and
# on the logits, and at the learning rate chosen above it diverges (we
# measured it in fast mode). The cell divides the rate by `SCALE**2`.
#
# What we measured with `SCALE = 4`: conv1's saturated share went from 0.05%
# to 26%, and ReLU moved *ahead* of tanh, the direction of the paper once
# tanh saturates:
#
# * fast mode (600 images, 3 epochs, lr 0.05/16): training error after 3
#   epochs ReLU 33.3%, tanh 36.8%;
# * full mode (3000 images, 10 epochs, lr 0.03/16, the rate the full grid
#   picked for both; the cell run on its own, 379 s on the shared 2-core VM at
#   load average ~9.7, 2026-11-30): ReLU ahead at every epoch, 14.1% against
#   tanh's 17.3% after 10 epochs (at scale 1 tanh led, 5.6% against 9.3%).
#
# Change `SCALE` (1, 2, 8) and rerun the cell.

# %%
SCALE = 4
conv1_probe = L.Conv2D(1, 8, 5, padding=2, rng=np.random.default_rng(0))   # conv1 as the nets above initialise it
for scale in sorted({1, SCALE}):
    pre = conv1_probe(x_all[:500] * scale)
    print(f"input x {scale}: conv1 pre-activation std {pre.std():.2f}, "
          f"tanh' < 0.1 for {np.mean(1 - np.tanh(pre) ** 2 < 0.1):.2%} of conv1's units")
x_unscaled = x_all
x_all = x_unscaled * SCALE                          # train() reads x_all
lr_scaled = {name: best_lr[name] / SCALE ** 2 for name in best_lr}
scaled = {name: train(act, lr_scaled[name]) for name, act in [("ReLU", L.ReLU), ("tanh", L.Tanh)]}
x_all = x_unscaled
for name, errs in scaled.items():
    print(f"input x {SCALE}, {name} (lr {lr_scaled[name]:.4g}): training error per epoch",
          " ".join(f"{e:.1%}" for e in errs))

# %% [markdown]
# The full experiment, with the paper's 25% threshold, several seeds and a
# learning-rate sweep per nonlinearity, is
# `python -m tinyalex experiment relu_vs_tanh` (`tinyalex/experiments/relu_vs_tanh.py`).
