# %% [markdown]
# # 8. The two-GPU split
#
# Section 3.2. A GTX 580 had 3 GB of memory, too little for the net, so the
# authors spread it over two GPUs: "half of the kernels (or neurons) on each
# GPU, with one additional trick: the GPUs communicate only in certain
# layers." conv3 takes input from all kernel maps of conv2; conv2, conv4 and
# conv5 only from the maps on their own GPU; the fully connected layers from
# everything.
#
# | | two towers vs one tower with half the kernels | source |
# |---|---|---|
# | paper, ImageNet | two towers better by 1.7% top-1 (1.2% top-5) | section 3.2 |
# | **tinyalex, measured** (Fashion-MNIST, small 3-conv net, 4000 images, 4 epochs, 2 seeds) | two towers 25.1% ± 0.6, one tower 23.5% ± 0.1 test error: **not reproduced** (both nets underfit, so extra kernels cannot pay) | docs/results.md §6, 2026-11-22 |
#
# Re-run it with `python -m tinyalex experiment towers`; the long CIFAR-10
# run that would test the paper's capacity argument is not yet measured.
#
# tinyalex builds this net literally — tower A on device $d_0$, tower B on
# $d_1$, explicit copies between them — and checks it on a laptop with the
# stand-in devices of notebook 1.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from tinyalex import backend as B
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.models import AlexNet, build_model, transfer_bytes_per_image

FAST = os.environ.get("TINYALEX_FAST") == "1"

# %% [markdown]
# ## The two towers and where they talk
#
# `devices=(0, 1)` builds the split net. The summary shows each layer's two
# halves and the four crossing points (plus the input copy and the final
# gather of the logits). No data is computed for the table.

# %%
split = AlexNet(devices=(0, 1))
print(split.summary())

# %% [markdown]
# ## Bytes exchanged
#
# Per image and per pass (the backward pass sends as many bytes back),
# float32. Two kinds of traffic, drawn apart below:
#
# * **the input copy and the logits gather**: tinyalex keeps the batch on
#   tower A's device and copies each image to tower B (3×227×227 floats),
#   then gathers B's half of the logits. This is not communication between
#   the towers, and the paper does not describe it: each GPU can receive the
#   batch from host memory directly.
# * **the exchanges between the towers**, the paper's "GPUs communicate only in
#   certain layers": the one before conv3 moves whole 13×13 maps, the fc
#   crossings only 4096-vectors.

# %%
per_image = transfer_bytes_per_image(split)
plumbing = {k: v for k, v in per_image.items() if k in ("input", "logits")}     # input copy, logits gather
exchanges = {k: v for k, v in per_image.items() if k not in plumbing}            # the paper's tower exchanges
for title, part in [("input copy and logits gather", plumbing), ("exchanges between the towers", exchanges)]:
    print(title)
    for name, nbytes in part.items():
        print(f"  {name:10s} {nbytes:>10,d} B")
    print(f"  {'subtotal':10s} {sum(part.values()):>10,d} B")
total = sum(per_image.values())
print(f"total        {total:>10,d} B per image, forward  ->  {total * 128 * 2 / 2**20:.0f} MiB per batch of 128, "
      f"forward + backward ({sum(exchanges.values()) * 128 * 2 / 2**20:.0f} MiB of it between the towers)")
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True, gridspec_kw={"width_ratios": [len(plumbing), len(exchanges)]})
axes[0].bar(list(plumbing), [v / 1024 for v in plumbing.values()], color="C7")
axes[0].set_title("input copy, logits gather\n(not in the paper)"); axes[0].set_ylabel("KiB per image, forward")
axes[1].bar(list(exchanges), [v / 1024 for v in exchanges.values()], color="C0")
axes[1].set_title("exchanges between the towers\n(the paper's 'communicate only in certain layers')")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## The split net is the grouped convolution
#
# On one device the same net is a grouped convolution: `Conv2D(groups=2)` lets
# the first half of the kernels see only the first half of the input channels.
# tinyalex's one-device AlexNet uses exactly that for conv2, conv4, conv5 (and
# normalizes LRN within each tower's half). With the same weights, the two
# placements compute the same function — logits and every gradient.
#
# We check it on the small variant, in float64, with tower A on stand-in device
# 0 and tower B on stand-in device 1: any hidden implicit transfer or device
# mix-up would raise.

# %%
grouped = build_model("alexnet-small", seed=0, dtype=np.float64).eval()   # eval: dropout off
with B.use_backend("standin"):
    towers = build_model("alexnet-small", seed=1, dtype=np.float64, devices=(0, 1)).eval()
    towers.load_state_dict(grouped.state_dict())        # grouped names are split in two automatically

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4 if FAST else 16, 1, 28, 28))
    y = rng.integers(0, 10, len(x))
    loss_g, loss_t = SoftmaxCrossEntropy(np.float64), SoftmaxCrossEntropy(np.float64)

    logits_g = grouped.forward(x)
    loss_g.forward(logits_g, y)
    grouped.backward(loss_g.backward())

    x_dev = B.to_device(x, towers.input_device, "standin")
    with B.device(towers.input_device):
        logits_t = towers.forward(x_dev)
        loss_t.forward(logits_t, B.to_device(y, towers.input_device, "standin"))
        towers.backward(loss_t.backward())

    print("logits on device", B.device_of(logits_t))
    print("max |logits difference|:", np.abs(B.to_host(logits_t) - logits_g).max())
    grads_t = {n: B.to_host(g) for n, g in towers.named_gradients()}
    grads_g = dict(grouped.named_gradients())
    worst = 0.0
    for name, g in grads_g.items():
        layer, p = name.split(".")
        both = np.concatenate([grads_t[f"{layer}.A.{p}"], grads_t[f"{layer}.B.{p}"]], axis=0)
        worst = max(worst, np.abs(both - g).max() / (np.abs(g).max() + 1e-30))
    print(f"worst relative gradient difference over all {len(grads_g)} parameter tensors: {worst:.1e}")
    print("bytes moved between the devices in that forward + backward pass:", f"{towers.transfer_bytes:,}")

# %% [markdown]
# ## Where each tower's parameters live
#
# Every parameter of tower A is on device 0, every parameter of tower B on
# device 1:

# %%
with B.use_backend("standin"):
    where = {}
    for name, p in towers.named_parameters():
        tower = name.split(".")[1]
        where.setdefault(tower, set()).add(B.device_of(p))
print({t: sorted(d) for t, d in where.items()})

# %% [markdown]
# ## And a mistake the stand-in catches
#
# Feeding the input on the wrong device fails loudly, with the fix in the
# message (on two real GPUs it would either crash inside CuPy or silently copy):

# %%
with B.use_backend("standin"):
    try:
        towers.forward(B.to_device(x, 1, "standin"))
    except B.DeviceMismatchError as e:
        print("DeviceMismatchError:", e)
