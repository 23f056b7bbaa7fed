# %% [markdown]
# # 9. Data: preprocessing and augmentation
#
# Section 2 and section 4.1 of the paper. ImageNet images come in all sizes;
# AlexNet needs a fixed input. The paper's recipe:
#
# 1. rescale each image so that its shorter side is 256, crop the central
#    256×256 patch;
# 2. subtract the mean image of the training set (nothing else: the net sees
#    centred raw RGB);
# 3. train on random 224×224 (tinyalex: 227, see notebook 2) patches and their
#    horizontal reflections — 2048 times more data;
# 4. add PCA colour noise to each image every time it is used;
# 5. at test time, average the predictions over 10 patches: the four corners
#    and the centre, and their reflections.
#
# Everything below uses `tinyalex.data`. Step 1 runs on a real photograph that
# ships with matplotlib (Grace Hopper, 512×600).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook
from PIL import Image

from tinyalex.data import (ArrayDataset, center_crop, compute_mean_image, fit_pca_color, load_dataset,
                           pca_color_augment, random_crop, random_flip, rescale_shorter_side, ten_crop)

FAST = os.environ.get("TINYALEX_FAST") == "1"
rng = np.random.default_rng(0)


def show(images, titles, rows=1, size=2.4):
    """Draw (H, W, 3) uint8/float images side by side."""
    cols = int(np.ceil(len(images) / rows))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, im, t in zip(axes.ravel(), images, titles):
        ax.imshow(np.clip(im, 0, 255).astype(np.uint8) if im.dtype != np.uint8 else im, cmap="gray")
        ax.set_title(t, fontsize=9)
    plt.tight_layout(); plt.show()


# %% [markdown]
# ## 1. Rescale to 256, crop the centre

# %%
photo = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
scaled = rescale_shorter_side(photo, 256)
img256 = center_crop(scaled, 256)
print("original", photo.shape, "-> shorter side 256:", scaled.shape, "-> centre crop:", img256.shape)
show([photo, scaled, img256], [f"original {photo.shape[0]}x{photo.shape[1]}",
                               f"shorter side 256: {scaled.shape[0]}x{scaled.shape[1]}", "centre 256x256"])

# %% [markdown]
# ## 2. The mean image
#
# The mean over the training set of every pixel, $m[c, h, w] = \frac1N \sum_n x_n[c, h, w]$,
# subtracted from every image. On ImageNet it is a brownish blur; on Fashion-MNIST
# (installed by the Debian package `dataset-fashion-mnist`) it is the average
# garment. tinyalex works on the 0..1 pixel scale ($x / 255$).

# %%
try:
    fmnist = load_dataset("fashion-mnist", split="train", download=False)
    fm_name = "Fashion-MNIST"
except Exception as e:
    print("Fashion-MNIST not found here, using synthetic data instead:", type(e).__name__)
    fmnist = load_dataset("synthetic", split="train", n=2000, image_shape=(1, 28, 28))
    fm_name = "synthetic"
subset = ArrayDataset(*fmnist.get_batch(np.arange(2000 if FAST else 20000)), fmnist.classes)
mean_img = compute_mean_image(subset)
x, y = subset.get_batch(np.arange(4))
show([mean_img[0] * 255] + [xi[0] for xi in x] + [(xi[0] / 255 - mean_img[0]) * 127 + 128 for xi in x],
     ["mean image"] + [f"image {i}" for i in range(4)] + [f"image {i} - mean" for i in range(4)], rows=1, size=1.6)
print(f"{fm_name}: mean image over {len(subset)} images, pixel values {mean_img.min():.2f}..{mean_img.max():.2f}")

# %% [markdown]
# ## 3. Random crops and flips
#
# From the 256×256 image, random 227×227 patches, each reflected with
# probability ½. Batched: `random_crop` and `random_flip` work on `(N, C, H, W)`
# arrays, one random offset and flip per image, no Python loop.

# %%
batch = np.repeat(img256.transpose(2, 0, 1)[None], 6, axis=0)          # (6, 3, 256, 256)
crops = random_flip(random_crop(batch, 227, rng), rng)
show([c.transpose(1, 2, 0) for c in crops], [f"random crop {i}" for i in range(6)], size=2.0)
for size in (227, 224):
    positions = 256 - size + 1                    # offsets 0 .. 256 - size along each axis
    print(f"{size}x{size} crops of a 256x256 image: {positions} x {positions} positions x 2 reflections = "
          f"{2 * positions ** 2:,}")
print("the paper's figure: 32 x 32 x 2 =", 32 * 32 * 2)

# %% [markdown]
# Why three different numbers. A $c \times c$ crop of a $256 \times 256$ image
# can start at $256 - c + 1$ offsets along each axis (0 up to $256 - c$
# inclusive). tinyalex crops 227 (notebook 2), so $30^2 \times 2 = 1800$ distinct
# patches. The paper's text says 224, which by the same rule gives
# $33^2 \times 2 = 2178$; its "2048" is $32^2 \times 2$, i.e. it counted
# $256 - 224 = 32$ offsets per axis (the difference of the sizes, leaving out
# the last offset). Either way the point stands: three orders of magnitude
# more distinct training inputs, though highly correlated ones.

# %% [markdown]
# ## 4. PCA colour augmentation
#
# Compute the 3×3 covariance of all RGB pixel values of the training set and
# its eigenvectors $p_i$ and eigenvalues $\lambda_i$. To every pixel of an image
# add
#
# $$ [p_1\ p_2\ p_3]\,[\alpha_1 \lambda_1,\ \alpha_2 \lambda_2,\ \alpha_3 \lambda_3]^T, \qquad \alpha_i \sim \mathcal{N}(0, 0.1^2) $$
#
# with the $\alpha_i$ drawn once per image each time it is used. The shift moves
# colours along the directions in which natural colours vary most — a change
# of illumination intensity and colour, to which object identity should be
# invariant. (Here the "training set" is the photo's own pixels; on ImageNet
# it is every pixel of 1.2 million images. We exaggerate $\sigma$ to 1.0 in the
# bottom row so the effect is visible.)

# %%
photo_set = ArrayDataset(img256.transpose(2, 0, 1)[None].copy(), np.array([0]), ["photo"])
eigvecs, eigvals = fit_pca_color(photo_set)
print("eigenvalues (0..1 pixel scale):", np.round(eigvals, 5))
print("first eigenvector (R, G, B):", np.round(eigvecs[:, 0], 3), "-- roughly brightness")
x01 = np.repeat(img256.transpose(2, 0, 1)[None], 5, axis=0).astype(np.float32) / 255
paper = pca_color_augment(x01, eigvecs, eigvals, np.random.default_rng(1), std=0.1)
strong = pca_color_augment(x01, eigvecs, eigvals, np.random.default_rng(1), std=1.0)
show([img256] + [p.transpose(1, 2, 0) * 255 for p in paper] + [img256] + [p.transpose(1, 2, 0) * 255 for p in strong],
     ["original"] + [f"sigma 0.1 #{i}" for i in range(5)] + ["original"] + [f"sigma 1.0 #{i}" for i in range(5)],
     rows=2, size=1.9)
print("largest per-pixel change at sigma 0.1:", f"{np.abs(paper - x01).max() * 255:.1f} of 255")

# %% [markdown]
# At the paper's $\sigma = 0.1$ the change is small — a few grey levels — yet
# the paper says it cut top-1 error by over 1%. What tinyalex measured for the
# whole of section 4.1:
#
# | | paper (ImageNet) | **tinyalex, measured** (CIFAR-10 JPEG copy, small net, 4000 images, 10 epochs, 2 seeds; test error, centre crop) |
# |---|---|---|
# | crops + flips | needed against "substantial overfitting" | gap 14.9 → 5.3 points; test 56.4% → 54.9% |
# | PCA colour | −1% top-1 | another −0.65 (54.9% → 54.2%), within the seed spread (0.8) |
# | 10 views at test time | used for all results, no separate figure | −1.3 to −3.5 points |
#
# (docs/results.md §5, 2026-11-22.) Re-run it with
# `python -m tinyalex experiment augmentation --dataset cifar10 --data-dir PATH/cifar10 --epochs 10`;
# at 4 epochs (the default) every net still underfits and none of this shows.
#
# ## 5. Ten crops at test time
#
# The four corner patches, the centre patch and their reflections. The
# network's softmax outputs for the ten are averaged
# (`tinyalex.data.average_ten_crop_predictions`).

# %%
views = ten_crop(img256.transpose(2, 0, 1)[None], 227)        # (10, N=1, 3, 227, 227)
names = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
show([v[0].transpose(1, 2, 0) for v in views], names + [n + " (flipped)" for n in names], rows=2, size=1.9)

# %% [markdown]
# ## All of it, as one object
#
# `tinyalex.data.Pipeline` chains these steps (each switchable, and fitted
# once on the training set); the trainer of notebook 10 uses it:

# %%
from tinyalex.data import Pipeline

pipe = Pipeline.default_for(subset.image_shape).fit(subset)
print(pipe)
xb, _ = subset.get_batch(np.arange(8))
print("train batch:", pipe.train_transform(xb, rng).shape, "| eval batch:", pipe.eval_transform(xb).shape,
      "| 10 views:", pipe.eval_views(xb).shape)
