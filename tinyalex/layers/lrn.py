"""Local response normalization across channels (section 3.3 of the paper)."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from .base import Layer, check_dout, check_input, need_cache

CONVENTIONS = ("paper", "caffe")


def window_sum(a, n, transpose=False):
    """Sum of ``a`` over a window of ``n`` channels centred on each channel.

    a: (N, C, H, W). out[:, i] = sum of a[:, j] for j in [i - n//2, i + (n-1)//2],
    clipped to [0, C-1] (the paper's max(0, .) and min(N-1, .)). Computed as a
    difference of cumulative sums over the zero-padded channel axis: O(C), not
    O(C n).

    ``transpose=True`` sums over the mirrored window [i - (n-1)//2, i + n//2]:
    the set of channels i whose window contains j. For odd n (the paper's 5)
    the two windows are the same; for even n the backward pass needs this one.
    """
    xp = get_array_module(a)
    N, C, H, W = a.shape
    lo, hi = n // 2, (n - 1) // 2
    if transpose:
        lo, hi = hi, lo
    # csum[:, k] = sum of a[:, :k - lo] (zero padding before channel 0 and after C-1)
    padded = xp.zeros((N, C + lo + hi + 1, H, W), dtype=a.dtype)
    padded[:, lo + 1:lo + 1 + C] = a
    csum = xp.cumsum(padded, axis=1)
    return csum[:, n:n + C] - csum[:, :C]


class LRN(Layer):
    r"""Local response normalization ("brightness normalization"), section 3.3.

    For activity :math:`a^i_{x,y}` of kernel i at position (x, y), with N
    channels:

    .. math::
        s^i = k + \alpha' \sum_{j=\max(0, i-n/2)}^{\min(N-1, i+n/2)} (a^j)^2,
        \qquad b^i = a^i \, (s^i)^{-\beta}

    The paper uses :math:`\alpha' = \alpha` (k=2, n=5, alpha=1e-4, beta=0.75).
    ``convention="caffe"`` uses :math:`\alpha' = \alpha / n`, as Caffe,
    cuda-convnet and PyTorch do; with the same numbers the paper's net equals
    PyTorch's ``local_response_norm(size=5, alpha=5e-4, beta=0.75, k=2)``.

    Backward (every :math:`b^i` depends on the :math:`a^j` in its window):

    .. math::
        \frac{\partial L}{\partial a^j} = \frac{\partial L}{\partial b^j} (s^j)^{-\beta}
          - 2 \beta \alpha' a^j \sum_{i:\, j \in \text{window}(i)}
            \frac{\partial L}{\partial b^i} \frac{b^i}{s^i}

    The last sum runs over the channels i whose window contains j:
    ``window_sum(dout * b / s, n, transpose=True)`` (the same window for odd n).
    Shapes: x, out, dx all (N, C, H, W).

    A model built with ``fast=False`` runs this class; the default runs
    ``FastLRN`` (tinyalex/fast/lrn.py), the same numbers with fewer passes.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper", dtype=numpy.float32):
        super().__init__(dtype)
        if convention not in CONVENTIONS:
            raise ValueError(f"LRN: convention must be one of {CONVENTIONS}, got {convention!r}")
        if size < 1:
            raise ValueError(f"LRN: size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k, self.convention = int(size), alpha, beta, k, convention
        self.x = None

    @property
    def alpha_eff(self):
        """The coefficient applied to each squared term: alpha (paper) or alpha/n (caffe)."""
        return self.alpha if self.convention == "paper" else self.alpha / self.size

    def extra_repr(self):
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, convention={self.convention!r}"

    def forward(self, x):
        check_input(self, x, 4)
        dt = x.dtype.type   # keep Python constants from changing the dtype
        s = dt(self.k) + dt(self.alpha_eff) * window_sum(x * x, self.size)
        self.s_pow = s ** dt(-self.beta)          # s^-beta, reused in backward
        out = x * self.s_pow
        self.x, self.s, self.out = x, s, out
        return out

    def backward(self, dout):
        need_cache(self, "x")
        check_dout(self, dout, self.x.shape)
        dt = dout.dtype.type
        cross = window_sum(dout * self.out / self.s, self.size, transpose=True)
        return dout * self.s_pow - dt(2 * self.beta * self.alpha_eff) * self.x * cross
