"""FastReLU: the reference ReLU's numbers, keeping the output instead of a mask.

Read :class:`~tinyalex.layers.ReLU` (tinyalex/layers/activation.py) first: it
is the specification. tests/fast/test_activation.py checks this class against it.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..layers.activation import ReLU
from ..layers.base import check_dout, check_input, need_cache
from .cpu import Workspaces, in_chunks, zero_operand

__all__ = ["FastReLU"]

# Chunks of about 1 MB (one core's L2): the bool mask of backward and the zero sample stay in cache
# (measured against whole-array calls: forward 7 to 56%, backward 5 to 8% faster on maps of 28x28 and larger).
CHUNK_BYTES = 1 << 20


class FastReLU(ReLU):
    """ReLU by ``maximum(x, 0)``; the output doubles as the mask for backward.

    * Keeps its output (which the next layer holds anyway) instead of a
      separate boolean mask: one array less per step.
    * ``maximum`` and the backward's multiply run in chunks of the batch of
      about 1 MB (in cache), on threads (fast/cpu.py; NumPy only).
    * For NumPy, ``maximum`` against an array of zeros (one sample, kept in
      ``self.workspaces``, broadcast over the batch), not the scalar 0:
      NumPy's loop for two arrays is the faster one (fast/cpu.py, zero_operand).

    Kept between forward and backward: ``out`` (the output).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.out = None

    def forward(self, x):
        """out = maximum(x, 0)."""
        check_input(self, x, None)
        xp = get_array_module(x)
        zero = zero_operand(self.workspaces, x)       # for NumPy an array of zeros: a faster loop than a scalar
        if x.ndim >= 1 and x.shape[0] > 1:
            out = xp.empty_like(x)
            in_chunks(x.shape[0], lambda lo, hi: xp.maximum(x[lo:hi], zero, out=out[lo:hi]), xp,
                      item_bytes=x[:1].nbytes, chunk_bytes=CHUNK_BYTES)
        else:
            out = xp.maximum(x, zero)
        self.out = out
        return out

    def backward(self, dout):
        """dx = dout where the output is positive (a new array; dout is untouched)."""
        need_cache(self, "out")
        out = self.out
        check_dout(self, dout, out.shape)
        xp = get_array_module(dout)
        if dout.ndim >= 1 and dout.shape[0] > 1:
            dx = xp.empty_like(dout)
            in_chunks(dout.shape[0], lambda lo, hi: xp.multiply(dout[lo:hi], out[lo:hi] > 0, out=dx[lo:hi]), xp,
                      item_bytes=dout[:1].nbytes, chunk_bytes=CHUNK_BYTES)
            return dx
        return xp.multiply(dout, out > 0)
