# %% [markdown]
# # 2. Convolution by im2col
#
# AlexNet spends almost all of its arithmetic in five convolutions. A
# convolution layer with $F$ kernels of size $C \times k_h \times k_w$, stride
# $s$ and zero padding $p$ computes, for every image $n$, kernel $f$ and output
# position $(y, x)$,
#
# $$ out[n, f, y, x] = b[f] + \sum_{c, i, j} W[f, c, i, j]\; x_{pad}[n, c, y s + i, x s + j] $$
#
# with $H_o = \lfloor (H + 2p - k_h) / s \rfloor + 1$. For conv1:
# $(227 - 11)/4 + 1 = 55$ — which is why tinyalex uses 227×227 inputs, not the
# 224 the paper's text says.
#
# We write it first as loops, then as one matrix product (im2col), then
# check its backward pass, and finally time the code tinyalex actually runs.
#
# **Two implementations, and which one runs.** The class you read here,
# `Conv2D` in `tinyalex/layers/conv.py`, is the *reference*: im2col plus one
# matrix product, written to be read, with its math in the docstring. It is
# what `build_model(..., fast=False)` runs. Models built with `fast=True`
# (the default) run the *fast* classes of `tinyalex/fast/conv.py`, which
# compute the same numbers faster: `FastConv2D` (im2col with reused
# workspaces and fewer copies), `ChunkedConv2D` (im2col a few images at a
# time, so the columns stay in cache: for a first layer, which reads the
# images' 1 or 3 channels: AlexNet's conv1) and `WinogradConv2D` (Winograd's
# minimal filtering, Lavin and Gray 2015, for stride-1 3×3 and 5×5 layers:
# AlexNet's conv2-conv5). `tinyalex.fast.implementations(fast=True)` picks the class
# for each layer once, when the model is built. The last sections print
# which class runs each of AlexNet's convolutions and time both.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from tinyalex.fast import implementations
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Conv2D, col2im, im2col
from tinyalex.models import build_model

FAST = os.environ.get("TINYALEX_FAST") == "1"
rng = np.random.default_rng(0)

# %% [markdown]
# ## The naive loop
#
# Six nested loops, written here only to have something obviously right to
# compare with. (tinyalex itself never loops over images or pixels.)

# %%
def conv_naive(x, W, b, stride, pad):
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (Wd + 2 * pad - kw) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for y in range(Ho):
                for x_ in range(Wo):
                    patch = xp[n, :, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw]
                    out[n, f, y, x_] = (patch * W[f]).sum() + b[f]
    return out


x = rng.standard_normal((2, 3, 11, 11))
conv = Conv2D(3, 4, kernel_size=3, stride=2, padding=1, rng=rng, dtype=np.float64)
ref = conv_naive(x, conv.params["W"], conv.params["b"], 2, 1)
print("output", conv(x).shape, "| max difference loop vs tinyalex:", np.abs(conv(x) - ref).max())

# %% [markdown]
# ## The im2col matrix
#
# `im2col` copies every receptive field into one column. With $K = C k_h k_w$
# and $P = N H_o W_o$ output positions, the columns form a $K \times P$ matrix
# and the convolution becomes one matrix product,
#
# $$ out_{mat} = W_{mat}\; cols, \qquad W_{mat} \in \mathbb{R}^{F \times K},\ cols \in \mathbb{R}^{K \times P}, $$
#
# which BLAS (or cuBLAS) computes far faster than any loop. The price is
# memory: each input pixel is copied into several columns, $k_h k_w / s^2$
# of them **on average** (ignoring the borders), and at most
# $\lceil k_h / s \rceil \lceil k_w / s \rceil$. For conv1 (11×11, stride 4):
# 7.6 on average, 9 at most.
#
# Here is what it lays out, for one 4×4 image with numbered pixels, a 2×2
# kernel and stride 1: nine receptive fields, nine columns.

# %%
img = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
cols = im2col(img, (2, 2), (1, 1), (0, 0))[0]          # (K, P) = (4, 9)
print("cols shape (K, P):", cols.shape)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 2.2]})
for ax, m, title in [(axes[0], img[0, 0], "input x (4x4)"), (axes[1], cols, "im2col: one column per output position")]:
    ax.imshow(m, cmap="viridis")
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, int(v), ha="center", va="center", color="w", fontsize=9)
    ax.set_title(title)
    ax.set_xticks([]); ax.set_yticks([])
axes[1].set_xlabel("output position (y, x): 0..8"); axes[1].set_ylabel("(i, j) in kernel")
plt.tight_layout(); plt.show()

# %% [markdown]
# Column 0 is the top-left 2×2 patch (0, 1, 4, 5); column 1 moves one pixel
# right (1, 2, 5, 6). Pixel 5 appears in four columns: that duplication is
# what the backward pass has to add back up. Counting the copies of every
# pixel for conv1's shape (one channel of a 227×227 image, 11×11 kernel,
# stride 4):

# %%
ones = np.ones((1, 1, 227, 227))
copies = col2im(im2col(ones, (11, 11), (4, 4), (0, 0)), ones.shape, (11, 11), (4, 4), (0, 0))   # A^T A 1
inner = copies[0, 0, 11:-11, 11:-11]                    # away from the borders
print(f"copies per pixel: mean {inner.mean():.2f} (kh kw / s^2 = {11 * 11 / 16:.2f}), "
      f"max {int(copies.max())} (ceil(kh/s) ceil(kw/s) = {int(np.ceil(11 / 4)) ** 2})")

# %% [markdown]
# ## col2im is the adjoint of im2col
#
# im2col is a linear map $A$ from images to matrices. The backward pass needs
# its transpose: $dx = A^T dcols$. `col2im` is that transpose: it adds every
# column entry back to the pixel it came from. A linear map and its adjoint
# satisfy $\langle A x, y \rangle = \langle x, A^T y \rangle$ for all $x, y$ —
# a one-line test that catches any indexing mistake.

# %%
for (k, s, p) in [(3, 1, 1), (3, 2, 0), (5, 2, 2), (11, 4, 0)]:
    xx = rng.standard_normal((2, 3, 23, 23))
    Ax = im2col(xx, (k, k), (s, s), (p, p))
    y = rng.standard_normal(Ax.shape)
    lhs = (Ax * y).sum()
    rhs = (xx * col2im(y, xx.shape, (k, k), (s, s), (p, p))).sum()
    print(f"kernel {k:2d} stride {s} pad {p}:  <Ax, y> = {lhs: .10f}   <x, A^T y> = {rhs: .10f}")

# %% [markdown]
# ## The backward pass, and its gradient check
#
# With the upstream gradient $dout$ laid out like the forward product:
#
# $$ dW_{mat} = dout_{mat}\; cols^T, \qquad db_f = \sum_{n,y,x} dout[n,f,y,x], \qquad
#    dx = \text{col2im}(W_{mat}^T\, dout_{mat}). $$
#
# `gradcheck` compares these with central differences
# $\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}$
# in float64, and reports the relative error per tensor. Round-off gives about
# $10^{-10}$; a wrong gradient gives something near 1.

# %%
small = Conv2D(3, 4, kernel_size=3, stride=2, padding=1, groups=1, rng=rng, dtype=np.float64)
print(gradcheck(small, rng.standard_normal((2, 3, 7, 7))))

# %% [markdown]
# ## How much faster?
#
# First the loop against the **reference** `Conv2D` (tinyalex/layers/conv.py):
# im2col and one matrix product, built here through
# `implementations(fast=False)`, which is what `build_model(..., fast=False)`
# does. Each time is the best of a few runs; times depend on the machine and on
# what else runs on it (on a busy machine a single run can take ten times
# longer), so compare the ratios, not the milliseconds.

# %%
def best_times(*fs, repeat=5):
    """For each function, (its fastest call of `repeat`, its result), after one warm-up call each (the first
    call allocates workspaces). The calls take turns, so a burst of load on a shared machine slows all of them."""
    outs = [f() for f in fs]
    times = [[] for _ in fs]
    for _ in range(repeat):
        for f, ts in zip(fs, times):
            t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return [(min(ts), out) for ts, out in zip(times, outs)]


x = rng.standard_normal((4 if FAST else 8, 16, 16, 16))
reference = implementations(fast=False).Conv2D(16, 32, 3, padding=1, rng=np.random.default_rng(1), dtype=np.float64)
t0 = time.perf_counter(); y_loop = conv_naive(x, reference.params["W"], reference.params["b"], 1, 1); t_loop = time.perf_counter() - t0
((t_ref, y_ref),) = best_times(lambda: reference(x))
print(f"16 -> 32 channels, 3x3, float64: loop {t_loop * 1e3:.0f} ms, reference im2col "
      f"({type(reference).__name__}) {t_ref * 1e3:.2f} ms: {t_loop / t_ref:.0f}x faster, "
      f"same result: {np.allclose(y_loop, y_ref)}")

# %% [markdown]
# ## Which class runs each of AlexNet's convolutions
#
# A model built with `fast=True` (the default) does not run the class above.
# For each layer, `implementations(fast=True).Conv2D(...)` picks one of the
# **fast** classes of tinyalex/fast/conv.py by the layer's shape
# (`conv2d_class`): `WinogradConv2D` (Winograd's minimal filtering, Lavin
# and Gray 2015) for stride-1 3×3 and 5×5 kernels with at least 4 input
# channels per group, `ChunkedConv2D` (im2col a few images at a time, in
# cache) for layers with at most 3 input channels per group, `FastConv2D`
# (im2col with reused workspaces and fewer copies) otherwise. Below, AlexNet's five convolutions with their own
# arguments and input shapes (read from `build_model("alexnet")`), each built
# twice from one seed, so both have the same weights: the reference class
# and the class `implementations(fast=True)` gives. Each is timed for one
# training step of that layer (forward and backward) in float32, separately.

# %%
net = build_model("alexnet")                       # fast=True: its layers come from implementations(fast=True)
shapes = net.output_shapes()                       # per image, (C, H, W)
names = list(shapes)
batch = 2 if FAST else 32                          # 32: the batch of docs/performance.md's layer tables
print(f"{net.name}, input {net.input_shape}, batch {batch}, float32, forward + backward of each layer alone")
print(f"{'layer':6s} {'kernel/stride/groups':21s} {'input':>11s}  {'fast class':15s} {'reference':>10s} "
      f"{'fast':>9s} {'speed-up':>8s}  {'max |difference|':>16s}")
for name, layer in net.children().items():
    if not name.startswith("conv"):
        continue
    in_shape = net.input_shape if name == names[0] else shapes[names[names.index(name) - 1]]
    args = (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.groups)
    ref_layer = implementations(fast=False).Conv2D(*args, rng=np.random.default_rng(3))
    fast_layer = implementations(fast=True).Conv2D(*args, rng=np.random.default_rng(3))
    assert type(fast_layer) is type(layer)          # the model ran the same rule
    xb = rng.standard_normal((batch,) + tuple(in_shape)).astype(np.float32)
    dout = rng.standard_normal((batch,) + tuple(shapes[name])).astype(np.float32)

    def step(conv):
        out = conv(xb)
        conv.backward(dout)
        return out

    (t_r, y_r), (t_f, y_f) = best_times(lambda: step(ref_layer), lambda: step(fast_layer))
    k, st = layer.kernel_size, layer.stride
    print(f"{name:6s} {f'{k[0]}x{k[1]} / {st[0]} / {layer.groups}':21s} {'x'.join(map(str, in_shape)):>11s}  "
          f"{type(fast_layer).__name__:15s} {t_r * 1e3:8.1f}ms {t_f * 1e3:7.1f}ms {t_r / t_f:7.1f}x  "
          f"{np.abs(y_r - y_f).max():9.1e} of {np.abs(y_r).max():.1f}")

# %% [markdown]
# The fast classes give the same numbers up to float32 rounding (Winograd
# reorders the additions, so its differences are larger than the im2col
# classes').
# Both are subclasses of the reference `Conv2D`, with its constructor and
# checks; they own their own forward, backward and workspaces.
#
# Read the speed-ups with the batch in mind. Winograd pays a fixed cost per
# 4×4 output tile for its transforms, and a 13×13 map is 3.25 tiles wide, so
# half of every tile array is overhang: with the batch of 2 of fast mode
# (`TINYALEX_FAST=1`) conv3-conv5 can come out *slower* than the reference,
# while at the batch of 32 of full mode, and in docs/performance.md's
# tables (measured on an idle machine), they were faster.
# `python -m tinyalex bench` re-measures the whole step.

# %% [markdown]
# **Try it:** the classroom exercise `conv_forward` / `conv_backward`
# (notebooks/exercises/) asks you to write these two functions yourself.
