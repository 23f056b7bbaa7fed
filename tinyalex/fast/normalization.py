r"""FastBatchNorm2d: the reference BatchNorm2d's numbers in fewer passes over memory.

Read :class:`~tinyalex.layers.BatchNorm` (tinyalex/layers/normalization.py)
first: it is the specification. tests/fast/test_normalization.py checks this
class against it.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..layers.base import check_dout, check_input, need_cache, shape_error
from ..layers.normalization import BatchNorm2d
from .cpu import in_chunks

__all__ = ["FastBatchNorm2d"]

# Chunks of the batch of about 1 MB (one core's L2), as FastReLU's: a chunk's second and third
# operation read what the first one wrote while it is still in cache.
CHUNK_BYTES = 1 << 20


class FastBatchNorm2d(BatchNorm2d):
    r"""BatchNorm2d with per-channel coefficients folded in, chunk by chunk.

    The reference makes about eight passes over a (N, C, H, W) array in
    forward and fifteen in backward (every ``x - mu``, ``** 2``, ``* gamma``
    and each sum is a pass, most into a new array). This class makes three
    in each direction, with the same math rearranged. With
    :math:`x_c = x - \mu` and :math:`s = 1 / \sqrt{\sigma^2 + \epsilon}`
    (so :math:`\hat x = x_c s`):

    .. math::
        y = x_c\,(\gamma s) + \beta

    and, summing over the m = N*H*W values of a channel,

    .. math::
        d\beta = \sum dy, \quad d\gamma = s \sum dy\, x_c, \quad
        dx = a\, dy + b\, x_c + c, \quad
        a = \gamma s,\ b = -\gamma s^2 \frac{d\gamma}{m},\ c = -\gamma s \frac{d\beta}{m}

    (the reference's :math:`\frac{s}{m}(m g - \sum g - \hat x \sum g \hat x)`
    with :math:`g = \gamma\, dy` multiplied out; in evaluation b = c = 0).
    The sums of products are ``einsum`` calls, which make no temporary
    array. The elementwise work runs in chunks of the batch of about 1 MB
    (in cache), on threads for NumPy (fast/cpu.py).

    Kept between forward and backward: ``xc`` (x - mu as (N, C, H*W), in
    place of the reference's x-hat), ``inv_std`` (C,), ``x_shape`` and
    whether the batch's statistics were used (``batch_stats``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.xc = None

    def forward(self, x):
        check_input(self, x, None)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise shape_error(self, f"input (N, {self.num_features}, H, W)", f"(N, {self.num_features}, H, W)",
                              f"shape {tuple(x.shape)}")
        xp = get_array_module(x)
        N, C = x.shape[:2]
        x3 = x.reshape(N, C, -1)                                     # (N, C, H*W): channel sums are einsums
        m = x3.shape[0] * x3.shape[2]
        xc = xp.empty_like(x3)
        chunk = dict(item_bytes=x3[:1].nbytes, chunk_bytes=CHUNK_BYTES)
        if self.training:
            if m < 2:
                raise ValueError(f"{self}: training needs more than 1 value per channel to take a variance, "
                                 f"got input shape {tuple(x.shape)}; use a larger batch or eval()")
            mean = xp.einsum("nci->c", x3) / m
            squares = {}

            def center(lo, hi):                                      # x_c, and its chunk's sum of squares
                xp.subtract(x3[lo:hi], mean[:, None], out=xc[lo:hi])
                squares[lo] = xp.einsum("nci,nci->c", xc[lo:hi], xc[lo:hi])

            in_chunks(N, center, xp, **chunk)
            var = sum(squares[k] for k in sorted(squares)) / m       # a fixed order: the same bits every run
            self.update_running(mean, var, m)                        # the reference's running averages
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            xp.subtract(x3, mean[:, None], out=xc)
        inv_std = 1 / xp.sqrt(var + self.eps)                          # (C,)
        scale = (self.params["gamma"] * inv_std)[:, None]             # gamma s, (C, 1)
        beta = self.params["beta"][:, None]
        out = xp.empty_like(x3)

        def affine(lo, hi):                                          # y = x_c (gamma s) + beta
            xp.multiply(xc[lo:hi], scale, out=out[lo:hi])
            out[lo:hi] += beta

        in_chunks(N, affine, xp, **chunk)
        self.xc, self.inv_std, self.m, self.batch_stats = xc, inv_std, m, self.training
        self.x_shape = tuple(x.shape)
        return out.reshape(x.shape)

    def backward(self, dout):
        need_cache(self, "xc")
        xc = self.xc
        check_dout(self, dout, self.x_shape)
        xp = get_array_module(dout)
        N, C = xc.shape[:2]
        d3 = dout.reshape(xc.shape)
        chunk = dict(item_bytes=xc[:1].nbytes, chunk_bytes=CHUNK_BYTES)
        sums = {}

        def reduce(lo, hi):                                          # the chunk's sum dy and sum dy x_c
            sums[lo] = (xp.einsum("nci->c", d3[lo:hi]), xp.einsum("nci,nci->c", d3[lo:hi], xc[lo:hi]))

        in_chunks(N, reduce, xp, **chunk)
        order = sorted(sums)
        dbeta = sum(sums[k][0] for k in order)
        dgamma = self.inv_std * sum(sums[k][1] for k in order)
        self.grads["gamma"], self.grads["beta"] = dgamma, dbeta
        gamma, s, m = self.params["gamma"], self.inv_std, self.m
        a = (gamma * s)[:, None]
        dx = xp.empty_like(d3)
        if not self.batch_stats:                                     # evaluation: dx = gamma s dy
            in_chunks(N, lambda lo, hi: xp.multiply(d3[lo:hi], a, out=dx[lo:hi]), xp, **chunk)
            return dx.reshape(dout.shape)
        b = (-gamma * s * s * dgamma / m)[:, None]
        c = (-gamma * s * dbeta / m)[:, None]

        def combine(lo, hi):                                         # dx = a dy + b x_c + c
            xp.multiply(d3[lo:hi], a, out=dx[lo:hi])
            dx[lo:hi] += xp.multiply(xc[lo:hi], b)                 # a chunk-sized temporary, in cache
            dx[lo:hi] += c

        in_chunks(N, combine, xp, **chunk)
        return dx.reshape(dout.shape)
