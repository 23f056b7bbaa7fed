# %% [markdown]
# # 11. What the network learned
#
# Section 6.1 of the paper looks inside the trained net in two ways:
#
# * **Figure 3:** the 96 conv1 kernels drawn as 11×11×3 images. The 48 on GPU 1
#   came out largely colour-agnostic, the 48 on GPU 2 largely colour-specific,
#   whatever the random initialization — a consequence of the restricted
#   connectivity of section 3.2 (conv2 on one GPU sees only that GPU's conv1
#   maps).
# * **Figure 4:** top-5 predictions (notebook 10), and, on the right, test
#   images next to the training images whose 4096-d last-hidden-layer (fc7)
#   vectors are nearest in Euclidean distance: semantically similar, even when
#   far apart pixel by pixel.
#
# Here we do the same with the model trained in notebook 10 (run folder
# `runs/10-fashion-mnist`; if it is missing, a small one is trained first). Set
# `TINYALEX_RUN` to another run folder, e.g. one trained on CIFAR-10 with
# `python -m tinyalex train --dataset cifar10 --model alexnet-cifar --out runs/cifar`,
# to see colour kernels.

# %%
import io
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from tinyalex.data import Subset, load_dataset
from tinyalex.experiments.retrieval import nearest
from tinyalex.experiments.tower_filters import colour_fraction, specialisation
from tinyalex.train.trainer import TrainConfig, evaluate, fit, load_trained
from tinyalex.viz import plot_conv1_filters

FAST = os.environ.get("TINYALEX_FAST") == "1"


def show(fig):
    """Display a figure made by tinyalex.viz (they are not attached to pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    display(Image(buf.getvalue()))


if "TINYALEX_RUN" in os.environ:
    RUN = Path(os.environ["TINYALEX_RUN"])
else:   # notebook 10's run (on Fashion-MNIST, or on synthetic images where it is not installed)
    RUN = next((p for p in (Path("runs/10-fashion-mnist"), Path("runs/10-synthetic")) if (p / "model.npz").exists()),
               Path("runs/10-fashion-mnist"))
if not (RUN / "model.npz").exists():
    print(f"no trained model in {RUN}: training a small one first (run notebook 10 for a better one)")
    try:
        load_dataset("fashion-mnist", split="test", download=False)
        dataset = "fashion-mnist"
    except Exception:
        print("Fashion-MNIST is not installed here: using the synthetic dataset")
        dataset = "synthetic"
    RUN = Path("runs") / f"11-{dataset}"
    fit(TrainConfig(dataset=dataset, model="alexnet-small", width=0.25 if FAST else None, epochs=2 if FAST else 5,
                    limit_train=400 if FAST else 5000, limit_test=200, batch_size=32 if FAST else 128,
                    out=str(RUN), progress=False))
model, pipeline, classes, meta = load_trained(RUN)
config = json.loads((RUN / "config.json").read_text())["train_config"]
print(f"model from {RUN}: {config['model']} trained on {config['dataset']}, {model.num_parameters():,} parameters")

# %% [markdown]
# ## conv1 kernels, split by tower (Figure 3)
#
# In the one-device net, conv1's first half of kernels feeds only the first
# group of conv2 (tower 1, the paper's GPU 1) and the second half only the
# second group (tower 2). `plot_conv1_filters` draws them in two panels.

# %%
W = dict(model.named_parameters())["conv1.W"]
print("conv1.W shape (kernels, channels, kh, kw):", W.shape)
show(plot_conv1_filters(W, towers=2, title=f"conv1 kernels of {RUN.name}, by tower"))

# %% [markdown]
# With colour input (3 channels), measure the paper's observation: the
# *colour fraction* of a kernel is the share of its energy not explained by its
# grey (R = G = B) part, $c(W) = \lVert W - \bar W_{rgb} \rVert^2 / \lVert W \rVert^2$,
# 0 for a colour-agnostic kernel. If the towers specialize, one tower's mean $c$
# is clearly larger than the other's (a permutation test gives the p-value).
# Fashion-MNIST is grey, so there is nothing to measure there.

# %%
if W.shape[1] == 3:
    c = colour_fraction(W)
    s = specialisation(c)
    print(f"mean colour fraction: tower 1 {s['tower1_mean']:.2f}, tower 2 {s['tower2_mean']:.2f}, "
          f"p-value {s['p_value']:.3f}")
    plt.figure(figsize=(6, 3))
    half = len(c) // 2
    plt.hist([c[:half], c[half:]], bins=15, label=["tower 1", "tower 2"])
    plt.xlabel("colour fraction c(W)"); plt.legend(); plt.show()
else:
    print(f"{W.shape[1]}-channel input: kernels are grey by construction; train on CIFAR-10 to see Figure 3's split")

# %% [markdown]
# ## Nearest neighbours in fc7 space (Figure 4, right)
#
# For test images (queries), the training images whose fc7 activations (after
# the ReLU, evaluation mode) are nearest in Euclidean distance — and, for
# comparison, the training images nearest in pixel space (the preprocessed
# input). `model.keep_activations()` keeps every layer's output of a forward
# pass; `tinyalex.experiments.retrieval.nearest` does the search.

# %%
train_set = load_dataset(config["dataset"], split="train", download=False)
test_set = load_dataset(config["dataset"], split="test", download=False)
rng = np.random.default_rng(0)
db_idx = rng.choice(len(train_set), min(len(train_set), 1000 if FAST else 10000), replace=False)
q_idx = rng.choice(len(test_set), min(len(test_set), 100 if FAST else 1000), replace=False)


def fc7_and_pixels(dataset, idx, batch=250):
    feats, pix = [], []
    model.eval()
    for i in range(0, len(idx), batch):
        x, _ = dataset.get_batch(idx[i:i + batch])
        xin = pipeline.eval_transform(x).astype(model.dtype)
        with model.keep_activations():
            model.forward(xin)
            feats.append(np.asarray(model.activations["relu7"]).reshape(len(x), -1))
        pix.append(xin.reshape(len(x), -1))
    return np.concatenate(feats), np.concatenate(pix)


db_f, db_p = fc7_and_pixels(train_set, db_idx)
q_f, q_p = fc7_and_pixels(test_set, q_idx)
k = 5
nn_f, nn_p = nearest(q_f, db_f, k), nearest(q_p, db_p, k)
db_y, q_y = train_set.labels[db_idx], test_set.labels[q_idx]
print(f"fc7 features: {db_f.shape[1]}-d; {len(q_idx)} queries against {len(db_idx)} training images")
print(f"share of the {k} neighbours with the query's class:  fc7 space {np.mean(db_y[nn_f] == q_y[:, None]):.1%}   "
      f"pixel space {np.mean(db_y[nn_p] == q_y[:, None]):.1%}")

# %%
rows = 5
fig, axes = plt.subplots(rows, 2 * k + 1, figsize=(1.3 * (2 * k + 1), 1.45 * rows))
for r in range(rows):
    qimg, _ = test_set.get_batch([q_idx[r]])
    imgs = [qimg[0]] + [train_set.get_batch([db_idx[j]])[0][0] for j in nn_f[r]] + \
           [train_set.get_batch([db_idx[j]])[0][0] for j in nn_p[r]]
    for cidx, (ax, im) in enumerate(zip(axes[r], imgs)):
        ax.imshow(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0), cmap="gray")
        ax.set_xticks([]); ax.set_yticks([])
        if r == 0:
            ax.set_title("query" if cidx == 0 else ("fc7 NN" if cidx <= k else "pixel NN"), fontsize=8)
    axes[r, 0].set_ylabel(classes[q_y[r]], fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Per-class errors
#
# Which classes does the net get wrong? Error rate per class on the test set,
# sorted:

# %%
ev = evaluate(model, Subset(test_set, q_idx), pipeline)
err = 1 - np.asarray(ev["per_class"])
order = np.argsort(err)[::-1]
plt.figure(figsize=(8, 3))
plt.bar([classes[i] for i in order], err[order])
plt.ylabel("test error"); plt.xticks(rotation=45, ha="right")
plt.title(f"per-class error ({ev['n']} test images, overall {1 - ev['top1']:.1%})")
plt.tight_layout(); plt.show()
