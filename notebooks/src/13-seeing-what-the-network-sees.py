# %% [markdown]
# # 13. Seeing what the network sees
#
# Zeiler and Fergus (2013) asked what pattern in the input excites one unit
# deep in a trained network. Their answer, the **deconvnet** (section 2.1),
# keeps that one activation, sets every other activation of its layer to
# zero, and runs the layers below *backwards*:
#
# * a max pool becomes **unpooling**: each value goes back to the position
#   that won its window in the forward pass, recorded as the pool's
#   **switches** (tinyalex's reference `MaxPool2D` keeps them as `argmax`);
# * a ReLU becomes a **ReLU** on the reconstruction, `max(r, 0)`;
# * a convolution becomes its **transposed filters**: the convolution's
#   backward with respect to its input, `col2im(Wᵀ r)`, with the layer's own
#   weights.
#
# Figure 2 of the paper shows, for a few feature maps of each layer, the
# projections of the 9 strongest activations over the validation set beside
# the image patches that caused them. `tinyalex.deconvnet` does the same,
# and so does `python -m tinyalex visualize RUN --layer conv3 --top 9`.
#
# This notebook trains (or loads, if it already has) a small **ZFNet** on
# Fashion-MNIST and looks at conv1, conv2 and conv3.
#
# **Time:** fast mode (`TINYALEX_FAST=1`) trains on 400 images for 1 epoch
# (seconds; the net has barely learned, so the pictures show little) and
# searches 200 test images. Full mode trains on 10,000 images for 6 epochs
# and searches 2,000 test images; its run time on a 2-core CPU is not yet
# measured. A finished run is loaded, not retrained: delete its folder
# (`runs/13-...`) to retrain.

# %%
import io
import os
import warnings
from pathlib import Path

import numpy as np
from IPython.display import Image, display

from tinyalex.data import load_dataset
from tinyalex.deconvnet import deconv_chain, plot_projections, project, receptive_field, top_activations, visualize
from tinyalex.layers import Sequential
from tinyalex.train.trainer import TrainConfig, fit, load_data, load_trained

warnings.filterwarnings("ignore", message="IProgress not found")
FAST = os.environ.get("TINYALEX_FAST") == "1"
try:
    load_dataset("fashion-mnist", split="test", download=False)
    DATASET = "fashion-mnist"
except Exception as e:  # no Debian package and no network: still run, on synthetic images
    print(f"Fashion-MNIST is not installed here ({type(e).__name__}); using the synthetic dataset instead.")
    DATASET = "synthetic"
RUN_DIR = Path("runs") / f"13-zfnet-{DATASET}-{'fast' if FAST else 'full'}"


def show(fig):
    """Display a figure made by tinyalex (they are not attached to pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    display(Image(buf.getvalue()))


# %% [markdown]
# ## Train (or load) a small ZFNet
#
# `zfnet-small` is ZFNet's structure for 28×28 images (conv1 3×3, conv2
# stride 2, LRN after the first two pools, three max pools), built by the
# same code as the 224×224 network.

# %%
cfg = TrainConfig(dataset=DATASET, model="zfnet-small", epochs=1 if FAST else 6,
                  limit_train=400 if FAST else 10000, limit_test=200 if FAST else 2000,
                  batch_size=32 if FAST else 128, lr=0.01, out=str(RUN_DIR), progress=False, seed=0)
if not (RUN_DIR / "model.npz").is_file():
    fit(cfg)
model, pipeline, classes, meta = load_trained(RUN_DIR)       # on the host, eval mode
_, _, test = load_data(TrainConfig.from_dict(meta["train_config"]), check=False)
x_uint8, labels = test.get_batch(np.arange(len(test)))
images = pipeline.eval_transform(x_uint8)                    # what the model reads
print(f"{model.name}: {model.num_parameters():,} parameters; searching {len(images)} test images")

# %% [markdown]
# ## One unit, step by step
#
# The strongest activation of conv2's map 0 over the test images, then its
# projection. `deconv_chain` lists the layers it goes back through (conv2
# includes its ReLU: the paper projects rectified maps).

# %%
chain = deconv_chain(model, "conv2")
print("back through:", " <- ".join(name for name, _ in reversed(chain)))
unit = top_activations(model, images, "conv2", channels=[0], top=1)[0][0]
print(f"strongest unit: image {unit.index}, map {unit.channel}, position ({unit.y}, {unit.x}), value {unit.value:.3f}")
image = images[unit.index:unit.index + 1]
proj = project(model, image, "conv2", unit)
t, b, l, r = receptive_field(chain, unit.y, unit.x, image.shape)
print(f"receptive field rows {t}..{b - 1}, columns {l}..{r - 1}; projection nonzero only there:",
      np.abs(proj).sum() == np.abs(proj[:, t:b, l:r]).sum())

# %% [markdown]
# **The deconvnet and the gradient.** Without the ReLU rule, the projection
# would be exactly the activation times the gradient of the unit with respect
# to the input (unpooling with the switches *is* the max pool's backward,
# the transposed filters *are* the convolution's input gradient). The
# difference is the ReLU: the gradient passes only where the *forward* input
# was positive, the deconvnet keeps only where the *reconstruction* is
# positive. Both, side by side:

# %%
seq = Sequential(*chain)                                       # the same layer objects, as one chain
out = seq.forward(image)
dout = np.zeros_like(out)
dout[0, unit.channel, unit.y, unit.x] = unit.value
gradient = seq.backward(dout)[0]
fig_rows = {0: [(proj[:, t:b, l:r], image[0][:, t:b, l:r]), (gradient[:, t:b, l:r], image[0][:, t:b, l:r])]}
show(plot_projections(fig_rows, "conv2", title="left: deconvnet projection, then value x gradient"))
print(f"correlation of the two: {np.corrcoef(proj.ravel(), gradient.ravel())[0, 1]:.3f}")

# %% [markdown]
# ## Figure 2: the strongest activations of conv1, conv2, conv3
#
# For 4 feature maps of each layer (those with the largest activations),
# the projections of the top 9 activations (left, each scaled to its own
# range) beside the image patches (right). Deeper layers see larger patches
# and respond to larger structures; in the paper, layer 1 shows edges and
# colour blobs, layer 2 corners and textures, layer 3 parts of objects.

# %%
seen = x_uint8.astype(np.float32) / 255              # the test images as the net saw them (no crop here)
for layer in ("conv1", "conv2", "conv3"):
    fig, found = visualize(model, images, layer, top=9, display=seen)
    show(fig)
    print(layer, {c: [classes[labels[u.index]] for u in units[:3]] for c, units in found.items()})

# %% [markdown]
# ## From the command line, and for AlexNet
#
#     python -m tinyalex visualize runs/13-zfnet-fashion-mnist-full --layer conv3 --top 9
#     python -m tinyalex visualize runs/10-fashion-mnist-full --layer conv5 --out conv5.png
#
# AlexNet's fast pooling layers keep no switches; `tinyalex.deconvnet`
# records them for every model the same way, by running the reference
# `MaxPool2D` (whose forward keeps `argmax`) on the pool's input. A model
# whose layers are not a plain chain of convolutions, ReLUs, LRNs and max
# pools (ResNet's residual blocks, GoogLeNet's inception modules) is
# refused with a one-line error: there are no switches to project through.
