# %% [markdown]
# # tinyalex exercises: write the backward passes of AlexNet yourself
#
# Each exercise is one function. Replace the `raise NotImplementedError(...)`
# line with your code, run the check cell below it, and read what it prints:
# `PASS` or `FAIL`, the relative error against tinyalex's own layers and
# against numerical gradients, and a hint when something is off.
#
# Rules of the game, as in tinyalex itself: arrays are `(N, C, H, W)`; no
# Python loops over batch items or pixels (a loop over kernel offsets or
# window positions is fine); take the array module from the input with
# `xp = get_array_module(x)` so your code also runs on CuPy.
#
# Run every check at once from a shell with
# `python exercises.py` (or `python -m tinyalex exercises grade exercises.py`).
# Your teacher's grader runs the same checks and more cases, drawn at random:
# code that passes here only because of the particular numbers here fails
# there. It also gives 0 to an exercise that calls tinyalex's own layers.

# %%
"""tinyalex classroom exercises: the forward and backward passes of AlexNet's layers.

Students: write each function where it says ``raise NotImplementedError``,
then run the check below it (in the notebook), or every check at once with
``python -m tinyalex exercises grade exercises.py``.

Write your code inside the functions; keep their names and arguments. You
may import NumPy and use the helpers imported below (im2col, col2im,
get_array_module); tinyalex's layers are what your code is checked against,
so calling them scores 0.
"""
import numpy as np

from tinyalex.backend import get_array_module
from tinyalex.exercises.checks import *  # noqa: F401,F403  (check_conv_forward, ...)
from tinyalex.layers import col2im, im2col

# %% [markdown]
# ## 1. Convolution forward, by im2col
#
# With $K = C k_h k_w$ and `cols = im2col(x, ...)` of shape $(1, K, N H_o W_o)$
# (notebook 2 shows what it lays out), the whole convolution is one matrix
# product:
#
# $$ out_{mat} = W_{mat}\, cols, \qquad W_{mat} = W.\text{reshape}(F, K),
#    \qquad out_{mat} \in \mathbb{R}^{F \times N H_o W_o}. $$
#
# Then reshape $(F, N, H_o, W_o)$, move the batch axis first and add the bias.
#
# With `groups` $= G$ (the paper's two towers), the first $F/G$ filters see only
# the first $C/G$ input channels, and so on: `im2col(..., groups)` gives one
# column matrix per group, shape $(G, K/G, N H_o W_o)$, and the product is one
# per group.

# %%
def conv_forward(x, W, b, stride=1, padding=0, groups=1):
    """Convolution of x (N, C, H, W) with W (F, C/groups, kh, kw) and bias b (F,).

    Returns ``(out, cache)`` with out of shape (N, F, Ho, Wo),
    Ho = (H + 2 padding - kh) // stride + 1 (same for Wo), and ``cache``
    whatever your ``conv_backward`` needs (the grader first gives your
    conv_backward the cache this handout's conv_backward reads,
    ``(x_shape, cols, W, stride, padding, groups)``, then your own).

    Hints: ``cols = im2col(x, (kh, kw), (stride, stride), (padding, padding), groups)``
    has shape (groups, K/groups, N*Ho*Wo); a batched matrix product
    (``xp.matmul``) multiplies one matrix per group.
    """
    xp = get_array_module(x)
    N, C, H, W_in = x.shape
    F, _, kh, kw = W.shape
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W_in + 2 * padding - kw) // stride + 1
    # YOUR CODE HERE
    raise NotImplementedError("write your code in conv_forward() in place of this line")


# %% [check] conv_forward  (2 points)

# %% [markdown]
# ## 2. Convolution backward
#
# Lay `dout` out like the forward product, $dout_{mat} \in \mathbb{R}^{F \times N H_o W_o}$. Then
#
# $$ dW = dout_{mat}\, cols^T, \qquad db_f = \sum_{n,y,x} dout_{n,f,y,x}, \qquad
#    dcols = W_{mat}^T\, dout_{mat}, \qquad dx = \text{col2im}(dcols). $$

# %%
def conv_backward(dout, cache):
    """Gradients of the convolution: returns ``(dx, dW, db)``.

    dout (N, F, Ho, Wo) is dL/dout; dx, dW, db have the shapes of x, W, b.

    Hints: lay dout out with the filters first, grouped like the forward
    product. ``col2im(dcols, x_shape, (kh, kw), (stride, stride), (padding, padding), groups)``
    adds every column entry back where im2col took it from.
    """
    xp = get_array_module(dout)
    x_shape, cols, W, stride, padding, groups = cache
    F, _, kh, kw = W.shape
    # YOUR CODE HERE
    raise NotImplementedError("write your code in conv_backward() in place of this line")


# %% [check] conv_backward  (3 points)

# %% [markdown]
# ## 3. The LRN window sum
#
# Local response normalization (section 3.3) sums squared activities over
# $n$ neighbouring channels, clipped at the ends:
#
# $$ S^i = \sum_{j=\max(0,\, i-\lfloor n/2 \rfloor)}^{\min(C-1,\, i+\lfloor (n-1)/2 \rfloor)} a^j . $$
#
# For odd $n$ (the paper's 5) the window is $i-2 \dots i+2$.

# %%
def window_sum(a, size):
    """Sum of a (N, C, H, W) over a window of ``size`` channels centred on each channel.

    out[:, i] = sum of a[:, j] for j from i - size//2 to i + (size-1)//2,
    leaving out channels outside 0..C-1. Returns an array shaped like a.

    Hint: loop over the ``size`` offsets of the window (not over channels or
    pixels); for each offset, add a shifted slice of channels into ``out``.
    """
    xp = get_array_module(a)
    C = a.shape[1]
    out = xp.zeros_like(a)
    # YOUR CODE HERE
    raise NotImplementedError("write your code in window_sum() in place of this line")


# %% [check] window_sum  (1 point)

# %% [markdown]
# ## 4. LRN forward (the paper's convention)
#
# $$ s^i = k + \alpha \sum_{j \in \text{window}(i)} (a^j)^2, \qquad b^i = a^i\, (s^i)^{-\beta} $$
#
# with $k = 2$, $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$. The paper does not
# divide $\alpha$ by $n$ (Caffe and PyTorch do).

# %%
def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """LRN across channels of x (N, C, H, W). Returns ``(out, cache)``.

    Hint: use your ``window_sum(x * x, size)``; keep s (and x, out) in the
    cache, backward needs them.
    """
    # YOUR CODE HERE
    raise NotImplementedError("write your code in lrn_forward() in place of this line")


# %% [check] lrn_forward  (1 point)

# %% [markdown]
# ## 5. LRN backward, with the cross-channel terms
#
# Every output $b^i$ depends on all $a^j$ in its window, so
#
# $$ \frac{\partial L}{\partial a^j} = \frac{\partial L}{\partial b^j} (s^j)^{-\beta}
#    - 2 \alpha \beta\, a^j \sum_{i:\; j \in \text{window}(i)} \frac{\partial L}{\partial b^i}\, \frac{b^i}{s^i}. $$
#
# For odd $n$ (the paper's 5) the window is symmetric ($j$ in window($i$) iff $i$
# in window($j$)), so the last sum is again a window sum. (For even $n$ it is
# the mirrored window; the checks use odd sizes, see docs/math.md.)

# %%
def lrn_backward(dout, cache):
    """dL/dx of LRN from dout = dL/dout (N, C, H, W), for an odd window size. Returns dx.

    Hint: two terms, a direct one and a cross-channel one; the sum in the
    second is again a window sum (of a product of arrays in the cache).
    """
    x, s, out, size, alpha, beta = cache
    # YOUR CODE HERE
    raise NotImplementedError("write your code in lrn_backward() in place of this line")


# %% [check] lrn_backward  (2 points)

# %% [markdown]
# ## 6. Max pooling backward
#
# The forward pass is given: it records, for every window, which of its
# $k \times k$ entries won (`argmax`, the first maximum in row-major order).
# The backward pass sends each window's gradient to its winner; where the
# paper's 3x3 windows with stride 2 *overlap*, an input collects the sum from
# every window it won.

# %%
def maxpool_forward(x, kernel_size=3, stride=2):
    """Max pooling of x (N, C, H, W) over kernel_size x kernel_size windows every stride pixels.

    Returns ``(out, cache)``; cache = (x.shape, argmax, kernel_size, stride)
    where argmax[n, c, y, x] in 0..k*k-1 is the flat offset i*k + j of the
    maximum of window (y, x).
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    sN, sC, sH, sW = x.strides
    # windows[n, c, y, x, i, j] = x[n, c, y*s + i, x*s + j]   (a view, no copy)
    windows = xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, Ho, Wo, k, k), strides=(sN, sC, sH * s, sW * s, sH, sW))
    flat = windows.reshape(N, C, Ho, Wo, k * k)
    argmax = flat.argmax(axis=-1)
    out = xp.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, (x.shape, argmax, k, s)


def maxpool_backward(dout, cache):
    """dL/dx of max pooling from dout (N, C, Ho, Wo). Returns dx shaped like x.

    Hint: loop over the k*k offsets (i, j) of the window, not over pixels.
    For one offset, the windows that won there and the inputs they point to
    are a boolean array and a strided slice of dx; overlapping windows must
    add up.
    """
    xp = get_array_module(dout)
    x_shape, argmax, k, s = cache
    Ho, Wo = dout.shape[2:]
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    # YOUR CODE HERE
    raise NotImplementedError("write your code in maxpool_backward() in place of this line")


# %% [check] maxpool_backward  (2 points)

# %% [markdown]
# ## 7. Dropout, both forms
#
# Keep each unit with probability $1 - p$ (mask $m \sim \text{Bernoulli}(1-p)$).
#
# | mode | training | evaluation |
# |---|---|---|
# | `"inverted"` (modern) | $y = x \cdot m / (1-p)$ | $y = x$ |
# | `"paper"` (2012) | $y = x \cdot m$ | $y = (1-p)\, x$ |
#
# Both keep the expected output the same in training and evaluation.

# %%
def dropout_forward(x, p=0.5, mode="inverted", training=True, mask=None, rng=None):
    """Dropout of x (any shape). Returns ``(out, cache)``.

    ``mask`` (boolean, shape of x, True = keep) is used when given; otherwise
    draw it with ``rng.random(x.shape) >= p`` (rng a numpy Generator).

    Hint: compute the factor each unit is multiplied by once and keep it in
    the cache: backward is a product with the same factor.
    """
    # YOUR CODE HERE
    raise NotImplementedError("write your code in dropout_forward() in place of this line")


def dropout_backward(dout, cache):
    """dL/dx of dropout. Returns dx shaped like dout."""
    # YOUR CODE HERE
    raise NotImplementedError("write your code in dropout_backward() in place of this line")


# %% [check] dropout  (1 point)

# %% [markdown]
# ## 8. Softmax cross-entropy
#
# For logits $z \in \mathbb{R}^{N \times K}$ and labels $y$:
#
# $$ p = \text{softmax}(z), \quad L = -\frac1N \sum_n \log p_{n, y_n}, \quad
#    \frac{\partial L}{\partial z} = \frac1N (p - \text{onehot}(y)). $$
#
# Subtract each row's maximum before `exp`, or logits of 1000 overflow.

# %%
def softmax_cross_entropy(logits, labels):
    """Mean softmax cross-entropy of logits (N, K) and integer labels (N,).

    Returns ``(loss, dlogits)``: loss a float, dlogits (N, K) = dL/dlogits.

    Hint: work with log-probabilities, after shifting each row so that exp
    cannot overflow; ``a[xp.arange(N), labels]`` picks each row's label entry.
    """
    xp = get_array_module(logits)
    N, K = logits.shape
    # YOUR CODE HERE
    raise NotImplementedError("write your code in softmax_cross_entropy() in place of this line")


# %% [check] softmax_cross_entropy  (2 points)

# %% [markdown]
# ## 9. The paper's SGD update (section 5)
#
# $$ v \leftarrow \mu\, v - \lambda\, \epsilon\, w - \epsilon\, \frac{\partial L}{\partial w}, \qquad w \leftarrow w + v $$
#
# with momentum $\mu = 0.9$, weight decay $\lambda = 0.0005$ and learning rate $\epsilon$.

# %%
def sgd_momentum_update(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
    """One step of the paper's update. Returns new arrays ``(w, v)``; does not modify its inputs."""
    # YOUR CODE HERE
    raise NotImplementedError("write your code in sgd_momentum_update() in place of this line")


# %% [check] sgd_momentum_update  (1 point)

# %% [markdown]
# ## 10. Batch normalization (what replaced LRN)
#
# In training, each channel $c$ is normalized over the $m = N H W$ values it
# has in the batch, then scaled and shifted (Ioffe and Szegedy 2015):
#
# $$ \mu = \tfrac1m \sum x, \quad \sigma^2 = \tfrac1m \sum (x - \mu)^2, \quad
#    \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y = \gamma \hat x + \beta. $$
#
# The backward pass is the classic exercise: $\mu$ and $\sigma^2$ depend on
# every $x$ of the channel, so $\partial L / \partial x$ is not just
# $\gamma\, dy / \sqrt{\sigma^2 + \epsilon}$.

# %%
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch normalization in training of x (N, C, H, W); gamma, beta (C,). Returns ``(out, cache)``.

    The handout's cache is ``(xhat, gamma, inv_std)`` with inv_std = 1 / sqrt(var + eps)
    shaped (1, C, 1, 1); your own may hold anything your backward needs.
    """
    xp = get_array_module(x)
    # YOUR CODE HERE
    raise NotImplementedError("write your code in batchnorm_forward() in place of this line")


def batchnorm_backward(dout, cache):
    """dL/dx, dL/dgamma, dL/dbeta of batch normalization in training. Returns ``(dx, dgamma, dbeta)``.

    Hint: write g = dout * gamma, the gradient with respect to xhat. Then
    follow xhat back to x through its three uses: directly, through the
    mean and through the variance; sums over (N, H, W) per channel appear.
    """
    # YOUR CODE HERE
    raise NotImplementedError("write your code in batchnorm_backward() in place of this line")


# %% [check] batchnorm_backward  (3 points)

# %% [markdown]
# ## 11. The residual block (ResNet)
#
# $$ y = \text{relu}\big(F(x) + x\big), \qquad F(x) = \text{conv}_2\big(\text{relu}(\text{conv}_1(x))\big) $$
#
# with two 3×3 convolutions of stride 1 and padding 1 that keep the C
# channels (He et al. 2015, Figure 2, without BatchNorm). Use your
# `conv_forward` and `conv_backward` from exercises 1 and 2 (the check runs
# your block with tinyalex's convolutions in their place, so a bug there
# costs nothing here).

# %%
def residual_forward(x, W1, b1, W2, b2):
    """The block's output for x (N, C, H, W); W1, W2 (C, C, 3, 3), b1, b2 (C,). Returns ``(out, cache)``."""
    xp = get_array_module(x)
    # YOUR CODE HERE
    raise NotImplementedError("write your code in residual_forward() in place of this line")


def residual_backward(dout, cache):
    """Gradients of the block. Returns ``(dx, dW1, db1, dW2, db2)``.

    Hint: x is used twice in F(x) + x. Go back through the last ReLU first;
    what comes out of it goes into the body's backward and into the shortcut.
    """
    # YOUR CODE HERE
    raise NotImplementedError("write your code in residual_backward() in place of this line")


# %% [check] residual_backward  (2 points)

# %% [markdown]
# ## All checks
#
# The cell below runs every check again and prints your score.

# %% [check] all

# %% [script]
if __name__ == "__main__":
    import sys

    sys.exit(0 if run_all(globals()).all_passed else 1)
