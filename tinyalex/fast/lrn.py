r"""FastLRN: the reference LRN's numbers with fewer passes over memory.

Read :class:`~tinyalex.layers.LRN` (tinyalex/layers/lrn.py) first: it is the
specification. tests/fast/test_lrn.py checks this class against it.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..layers.base import check_dout, check_input, need_cache
from ..layers.lrn import LRN, window_sum
from .cpu import Workspaces, in_chunks

__all__ = ["FastLRN"]


def _window_sum_inplace(a, n, out, transpose=False):
    """out[:, i] = sum of a[:, j], j in [i - n//2, i + (n-1)//2] clipped to the channels: n-1 shifted adds.

    ``transpose``: the mirrored window [i - (n-1)//2, i + n//2] (as lrn.window_sum; equal for odd n).
    """
    xp = get_array_module(a)
    C = a.shape[1]
    lo, hi = (n // 2, (n - 1) // 2) if not transpose else ((n - 1) // 2, n // 2)
    xp.copyto(out, a)
    for d in range(1, lo + 1):                     # channels below i
        if d < C:
            out[:, d:] += a[:, :C - d]
    for d in range(1, hi + 1):                     # channels above i
        if d < C:
            out[:, :C - d] += a[:, d:]
    return out


def _window(xp, a, n, out, transpose=False):
    """The window sum into ``out``: shifted adds for n <= 9, the reference's cumulative sums above."""
    if n <= 9:
        return _window_sum_inplace(a, n, out, transpose)
    xp.copyto(out, window_sum(a, n, transpose=transpose))
    return out


def _neg_pow(xp, s, beta, out):
    """out = s ** -beta: for the paper's beta = 0.75 as s^(1/4) / s, else one ``power``.

    s^(1/4) / s is two square roots and a division, 30% faster than NumPy
    2.4's float32 ``power`` on an in-cache chunk and as precise (largest
    relative error against float64 1.2e-7, power 1.0e-7; docs/performance.md).
    (The other square-root form, 1/(sqrt(s) sqrt(sqrt(s))), is slower than
    ``power`` and half as precise.)
    """
    if beta == 0.75:
        xp.sqrt(s, out=out)
        xp.sqrt(out, out=out)
        return xp.divide(out, s, out=out)
    return xp.power(s, s.dtype.type(-beta), out=out)


class FastLRN(LRN):
    r"""LRN with fewer passes over memory (measured in docs/performance.md).

    * The window sum over n=5 channels is n-1 in-place shifted adds (exact:
      no cancellation as in a difference of cumulative sums).
    * For the paper's beta = 0.75, :math:`s^{-\beta}` as two square roots
      and a division (``_neg_pow``), else one float32 ``power``.
    * Forward keeps :math:`s^{-\beta}` and :math:`s^{-\beta-1}` (in
      workspaces reused from step to step), so backward needs no division
      and no power.
    * The work runs in chunks of the batch of about ``chunk_bytes`` (1 MB,
      the L2 cache), on threads (fast/cpu.py; NumPy only).

    Kept between forward and backward: ``x`` (the input), ``s_pow``
    (:math:`s^{-\beta}`) and ``s_pow1`` (:math:`s^{-\beta-1}`), the last two
    in ``self.workspaces``.
    """

    # images per chunk: about 1 MB of input, so that a chunk's temporaries stay in the L2 cache
    # (measured against 8 MB chunks, one thread: forward 15 to 25% and backward 20 to 25% faster on
    # alexnet-cifar's and AlexNet's lrn1, a tie on alexnet-small's; docs/performance.md)
    chunk_bytes = 1 << 20

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.s_pow = self.s_pow1 = None

    def forward(self, x):
        """Shifted-add window sum, in x's dtype throughout, factors kept for backward."""
        check_input(self, x, 4)
        xp = get_array_module(x)
        dt = x.dtype.type
        n, alpha, k, beta = self.size, dt(self.alpha_eff), dt(self.k), self.beta
        out = xp.empty(x.shape, dtype=x.dtype)
        # kept for backward, reused from step to step (fresh large arrays page-fault)
        s_pow = self.workspaces.get("s_pow", x.shape, x.dtype, x)
        s_pow1 = self.workspaces.get("s_pow1", x.shape, x.dtype, x)

        def work(lo, hi):
            a = x[lo:hi]
            sq = a * a
            s = s_pow1[lo:hi]
            _window(xp, sq, n, s)
            s *= alpha
            s += k                                      # s = k + alpha' * window sum of a^2
            sp = _neg_pow(xp, s, beta, out=s_pow[lo:hi])  # s^-beta
            xp.multiply(a, sp, out=out[lo:hi])
            xp.divide(sp, s, out=s)                     # s^(-beta-1), for backward

        in_chunks(x.shape[0], work, xp, item_bytes=x[:1].nbytes, chunk_bytes=self.chunk_bytes)
        self.x, self.s_pow, self.s_pow1 = x, s_pow, s_pow1
        return out

    def backward(self, dout):
        """dx = dout s^-beta - 2 beta alpha' a window_sum(dout a s^(-beta-1))."""
        need_cache(self, "x")
        x, s_pow, s_pow1 = self.x, self.s_pow, self.s_pow1
        check_dout(self, dout, x.shape)
        xp = get_array_module(dout)
        c = dout.dtype.type(2 * self.beta * self.alpha_eff)
        dx = xp.empty_like(dout)

        def work(lo, hi):
            a, d = x[lo:hi], dout[lo:hi]
            q = d * a
            q *= s_pow1[lo:hi]                            # dout * b / s  (b = a s^-beta)
            cross = _window(xp, q, self.size, xp.empty_like(q), transpose=True)
            cross *= a
            cross *= c
            xp.multiply(d, s_pow[lo:hi], out=dx[lo:hi])
            dx[lo:hi] -= cross

        in_chunks(x.shape[0], work, xp, item_bytes=x[:1].nbytes, chunk_bytes=self.chunk_bytes)
        return dx
