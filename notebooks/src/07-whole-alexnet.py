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
print(f"loss {loss.item():.3f} (chance level would be log 10 = {np.log(10):.3f}); dx {dx.shape}")

# %% [markdown]
# Every parameter got a gradient:

# %%
print(sum(1 for _, g in small.named_gradients() if g is not None), "of", len(list(small.named_parameters())),
      "parameter tensors have a gradient")
