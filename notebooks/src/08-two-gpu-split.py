# %% [markdown]
# # 8. The two-GPU split
#
# Section 3.2. A GTX 580 had 3 GB of memory, too little for the net, so the
# authors spread it over two GPUs: "half of the kernels (or neurons) on each
# GPU, with one additional trick: the GPUs communicate only in certain
# layers." conv3 takes input from all kernel maps of conv2; conv2, conv4 and
# conv5 only from the maps on their own GPU; the fully connected layers from
# everything. The split cut top-1/top-5 error by 1.7%/1.2% against a net with
# half as many kernels per conv layer on one GPU.
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
# float32. The largest item is the image itself (copied to the second
# device); of the exchanges, the one before conv3 moves whole 13×13 maps, the
# fc crossings only 4096-vectors.

# %%
per_image = transfer_bytes_per_image(split)
for name, nbytes in per_image.items():
    print(f"{name:10s} {nbytes:>10,d} B")
total = sum(per_image.values())
print(f"total      {total:>10,d} B per image, forward  ->  {total * 128 * 2 / 2**20:.0f} MiB per batch of 128, forward + backward")
plt.figure(figsize=(7, 3))
plt.bar(list(per_image), [v / 1024 for v in per_image.values()])
plt.ylabel("KiB per image, forward"); plt.title("what crosses between the two GPUs"); plt.show()

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
