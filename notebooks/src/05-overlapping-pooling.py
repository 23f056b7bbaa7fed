# %% [markdown]
# # 5. Overlapping max pooling
#
# Section 3.4. Pooling summarizes neighbouring outputs of the same kernel. The
# classic choice is windows of $z \times z = 2 \times 2$ every $s = 2$ pixels: the
# windows tile the map. AlexNet uses $z = 3$, $s = 2$: each window overlaps its
# neighbours by one row or column. Against $z = 2, s = 2$ (same output size in
# the paper's net) this cut top-1/top-5 error by 0.4%/0.3%, and the authors
# found such nets "slightly more difficult to overfit".
#
# | | 3/2 (overlapping) vs 2/2 | source |
# |---|---|---|
# | paper, ImageNet | 3/2 better by 0.4% top-1 (0.3% top-5), overfits slightly less | section 3.4 |
# | **tinyalex, measured** (Fashion-MNIST, small 3-conv net, 4000 images, 4 epochs, 2 seeds) | test error 3/2: 26.4% ± 5.0, 2/2: 21.9% ± 2.9, same train/test gap: **not reproduced**, and confounded: here 2/2 gives larger maps (below) | docs/results.md §3, 2026-11-22 |
#
# Re-run it with `python -m tinyalex experiment pooling`. A fair version
# (both poolings giving the same map sizes) is not yet measured.
#
# $$ out[n, c, y, x] = \max_{0 \le i, j < z}\; x[n, c, y s + i, x s + j], \qquad H_o = \lfloor (H - z)/s \rfloor + 1. $$

# %%
import matplotlib.pyplot as plt
import numpy as np

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import MaxPool2D

rng = np.random.default_rng(0)

# %% [markdown]
# ## Same output size? Only on the paper's maps
#
# With $H_o = \lfloor (H - z)/s \rfloor + 1$, 3/2 and 2/2 pooling give the same
# size exactly when $H$ is odd. AlexNet's maps are all odd (55 → 27,
# 27 → 13, 13 → 6), so there the two choices are interchangeable. The small
# nets are not: alexnet-small's first pooled map is 28×28 (even), where 3/2
# gives 13 and 2/2 gives 14, and the difference carries through the net:
# pool1/pool2/pool5 give 13/7/3 with 3/2 pooling and 14/8/4 with 2/2, so
# the 2/2 net has a larger fc6 input and a third more parameters. Comparing
# the two poolings on such a net changes two things at once.

# %%
for H in (55, 27, 13, 28):
    a, b = MaxPool2D(3, 2).output_shape((1, H, H)), MaxPool2D(2, 2).output_shape((1, H, H))
    print(f"{H}x{H}:  3/2 -> {a[1]}x{a[2]}   2/2 -> {b[1]}x{b[2]}   {'same' if a == b else 'DIFFERENT'}")

from tinyalex.models import build_model

for overlap in (True, False):
    m = build_model("alexnet-small", overlap_pool=overlap)
    pools = {name: shape for name, shape in m.output_shapes().items() if name.startswith("pool")}   # per image
    print(f"alexnet-small, pool {'3/2' if overlap else '2/2'}: " +
          ", ".join(f"{n} {c}x{h}x{w}" for n, (c, h, w) in pools.items()) + f"; {m.num_parameters():,} parameters")

# %% [markdown]
# ## Where the gradient goes
#
# The backward pass sends each window's gradient to **one** input, the
# window's maximum (the first in row-major order on ties). With overlapping
# windows an input can win several windows, and then it collects the sum of
# their gradients; with 2×2/2 windows it wins at most one.
#
# Below: a random 13×13 map, `dout = 1` everywhere, and the number of windows
# each input won (= its gradient).

# %%
x = rng.standard_normal((1, 1, 13, 13))
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
axes[0].imshow(x[0, 0], cmap="gray"); axes[0].set_title("input (13x13)")
for ax, (z, s) in zip(axes[1:], [(3, 2), (2, 2)]):
    pool = MaxPool2D(z, s, dtype=np.float64)
    out = pool(x)
    dx = pool.backward(np.ones_like(out))
    im = ax.imshow(dx[0, 0], cmap="viridis", vmin=0, vmax=4)
    for (r, c), v in np.ndenumerate(dx[0, 0]):
        if v:
            ax.text(c, r, int(v), ha="center", va="center", color="w" if v < 3 else "k", fontsize=7)
    ax.set_title(f"pool {z}x{z}, stride {s}\n{int((dx > 0).sum())} inputs get gradient, max {int(dx.max())}", fontsize=10)
for ax in axes:
    ax.set_xticks([]); ax.set_yticks([])
fig.colorbar(im, ax=axes[1:].tolist(), shrink=0.8)
plt.show()

# %% [markdown]
# A pixel that is the maximum of a whole neighbourhood (a strong edge, a bright
# spot) receives gradient from up to four overlapping windows; most pixels
# receive none. The total gradient is the same in both cases (one unit per
# window), but with 3×3 windows every output looks at 9 inputs instead of 4.

# %% [markdown]
# ## A known answer and the tie rule
#
# A single maximum at the centre of a 5×5 map lies in all four 3×3 windows, so it
# gets the sum of four gradients. With a tie inside a window, the first maximum
# in row-major order wins (as in Caffe and PyTorch):

# %%
x = np.zeros((1, 1, 5, 5)); x[0, 0, 2, 2] = 1.0
pool = MaxPool2D(3, 2, dtype=np.float64)
print("centre maximum, dout = 1:\n", pool.backward(np.ones_like(pool(x)))[0, 0])
tie = np.ones((1, 1, 3, 3))
pool = MaxPool2D(3, 2, dtype=np.float64)
print("all-equal window: the gradient goes to the top-left entry\n", pool.backward(np.ones_like(pool(tie)))[0, 0])

# %% [markdown]
# ## Gradient check
#
# Max pooling is piecewise linear: with continuous random inputs (no ties
# within $h$ of each other) central differences agree with the backward pass.

# %%
for z, s in [(3, 2), (2, 2)]:
    print(f"{z}/{s}: max relative error {gradcheck(MaxPool2D(z, s, dtype=np.float64), rng.standard_normal((2, 3, 9, 9))).max_error:.1e}")
