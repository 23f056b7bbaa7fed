# %% [markdown]
# # 6. Dropout
#
# Section 4.2. During training, the output of each hidden neuron of fc6 and fc7
# is set to zero with probability $p = 0.5$. A dropped neuron takes no part in
# the forward pass nor in back-propagation, so "every time an input is
# presented, the neural network samples a different architecture", and neurons
# cannot rely on particular other neurons being present.
#
# At test time the paper uses all neurons and multiplies their outputs by 0.5,
# which approximates the average of the exponentially many dropped-out
# networks. Modern code does the equivalent *inverted* form: scale by
# $1/(1-p)$ during training and do nothing at test time.
#
# | form | training | test |
# |---|---|---|
# | paper (2012) | $y = m \odot x$ | $y = (1-p)\,x$ |
# | inverted (tinyalex default) | $y = m \odot x / (1-p)$ | $y = x$ |
#
# with $m_i \sim \text{Bernoulli}(1-p)$ (1 = keep). Both have
# $\mathbb{E}[y_{train}] = y_{test}$.
#
# What the paper says dropout does, and what tinyalex measured:
#
# | | without dropout | with dropout | source |
# |---|---|---|---|
# | paper, ImageNet | "substantial overfitting" | about 2× the iterations to converge | section 4.2 |
# | **tinyalex, measured** (Fashion-MNIST, small net, 4000 images, 12 epochs, 2 seeds) | test 18.9%, train/test gap 7.4 points | test 21.6%, gap 2.7 points; 1.3× the iterations | docs/results.md §4, 2026-11-22 |
#
# So at this scale dropout cut the gap by about 3× and slowed training, as
# the paper says, but did not (yet) lower the test error. Re-run it with
# `python -m tinyalex experiment dropout --epochs 12`; the 40-epoch run that
# could show the crossover is not yet measured.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Dropout, Linear

FAST = os.environ.get("TINYALEX_FAST") == "1"
rng = np.random.default_rng(0)

# %% [markdown]
# ## Train vs eval
#
# The same layer, in training mode (`layer.train()`) and evaluation mode
# (`layer.eval()`), for both forms:

# %%
x = np.ones((1, 12), dtype=np.float32)
for mode in ("inverted", "paper"):
    d = Dropout(0.5, mode=mode, seed=1)
    print(f"{mode:8s} train: {d.train()(x)[0]}")
    print(f"{mode:8s} eval : {d.eval()(x)[0]}\n")

# %% [markdown]
# ## Same expectation
#
# Averaged over many masks, the training output equals the evaluation output
# (in both forms). Here, the mean over many draws (2,000; 500 in fast mode) of
# each unit's output for an input of ones:

# %%
draws = 500 if FAST else 2000
x = np.ones((draws, 256), dtype=np.float32)
fig, ax = plt.subplots(figsize=(7, 3))
for mode in ("inverted", "paper"):
    d = Dropout(0.5, mode=mode, seed=2)
    mean_train = d.train()(x).mean(axis=0)
    eval_out = d.eval()(x[:1])[0]
    ax.hist(mean_train, bins=30, alpha=0.6, label=f"{mode}: mean of training outputs (eval output = {eval_out[0]:g})")
ax.set_xlabel("per-unit mean output over draws"); ax.legend(fontsize=8); plt.show()

# %% [markdown]
# ## An ensemble, approximately
#
# For one linear layer after dropout, "use all neurons, scaled" is *exactly*
# the average over all masks, because the layer is linear. After a nonlinearity
# it is only an approximation (the paper's "reasonable approximation to taking
# the geometric mean"). Watch the average of many dropped-out networks
# approach the evaluation output:

# %%
fc = Linear(256, 10, rng=rng)
h = np.abs(rng.standard_normal((1, 256))).astype(np.float32)
d = Dropout(0.5, seed=3)
target = fc(d.eval()(h))
counts = [1, 4, 16, 64, 256] if FAST else [1, 4, 16, 64, 256, 1024]
samples = np.concatenate([fc(d.train()(h)) for _ in range(counts[-1])])
errs = [np.abs(samples[:n].mean(0) - target[0]).max() / np.abs(target).max() for n in counts]
plt.figure(figsize=(5, 3)); plt.loglog(counts, errs, marker="o")
plt.xlabel("number of dropped-out networks averaged"); plt.ylabel("relative distance to eval output")
plt.grid(alpha=0.3); plt.show()

# %% [markdown]
# ## Backward
#
# The gradient flows only through kept units, with the same factor as the
# forward pass: $dx = dout \odot m / (1-p)$ (inverted) or $dout \odot m$
# (paper); in evaluation mode, $dx = dout$ or $(1-p)\,dout$. With the mask fixed
# (`set_mask`), forward is deterministic and the gradient check applies:

# %%
x = rng.standard_normal((4, 6))
mask = rng.random((4, 6)) >= 0.5
for mode in ("inverted", "paper"):
    for training in (True, False):
        d = Dropout(0.5, mode=mode, dtype=np.float64)
        d.set_mask(mask)
        d.train(training)
        print(f"{mode:8s} {'train' if training else 'eval ':5s}: max relative error {gradcheck(d, x).max_error:.1e}")

# %% [markdown]
# The 2012 cuda-convnet code used the paper's form; tinyalex defaults to the
# inverted form (`Dropout(mode="paper")` gives the original). They are the
# same model up to a rescaling: a layer after inverted dropout sees its input
# $1/(1-p)$ times larger, so a paper-form net whose next layer has weights
# $W$ computes exactly what an inverted-form net with weights $(1-p)\,W$
# (same biases) computes, in training and at test time. Trained from the same
# initial weights they are not the same net: with weight decay and a fixed
# learning rate, weights of different size are not trained alike.
