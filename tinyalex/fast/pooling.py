r"""FastMaxPool2D: the reference max pool's numbers (and winners) with contiguous passes.

Read :class:`~tinyalex.layers.MaxPool2D` (tinyalex/layers/pooling.py) first:
it is the specification. tests/fast/test_pooling.py checks this class against
it: same outputs, the same winner in every window (ties included), the same
gradients.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..layers.base import check_dout, check_input, need_cache
from ..layers.conv import _pair
from ..layers.pooling import MaxPool2D
from .cpu import Workspaces, in_chunks

__all__ = ["FastMaxPool2D", "maxpool2d_class"]

MAX_WINDOW = 255    # winners are recorded as uint8 window offsets


def _running_max(xp, candidates, k, m, win, labels):
    """m = max over t < k of candidates(t); win = labels(t) of the first t attaining it.

    ``candidates(t)``: an array as long as m. ``labels(t)``: the uint8 label
    of candidate t (a number or an array), every label of candidate t larger
    than every label of the earlier ones. Then "win = label where strictly
    greater" is a ``maximum`` (branch-free; ``copyto(..., where=mask)`` with
    a random mask is several times slower), and strictly greater keeps the
    first maximum on ties.
    """
    n = m.shape[0]
    xp.copyto(win, labels(0))
    best = candidates(0)                            # the running maximum (m after the first step)
    better = xp.empty(n, dtype=bool)
    cand = xp.empty(n, dtype=xp.uint8)
    for t in range(1, k):
        v = candidates(t)
        xp.greater(v, best, out=better)             # strictly greater: ties keep the earlier candidate
        best = xp.maximum(best, v, out=m)
        xp.multiply(better.view(xp.uint8), labels(t), out=cand)   # label where better, else 0
        xp.maximum(win, cand, out=win)
    if k == 1:
        xp.copyto(m, best)


class FastMaxPool2D(MaxPool2D):
    r"""Max pooling by a separable maximum over the stride's sub-grids, backward by one scatter-add.

    What it optimizes (measured in docs/performance.md):

    * Separable maximum: the max over a kh x kw window is the max over its
      kh rows of the max over each row's kw columns, so the forward does
      (kw-1) + (kh-1) compare steps (2 + 2 for 3x3) instead of kh*kw-1 (8).
      The winner is recorded as a uint8 offset i*kw + j; strictly greater
      replaces, first over columns then over rows, so ties go to the first
      maximum in row-major order, as in the reference.
    * Contiguous passes: each chunk of (n, c) planes is first split into the
      stride's sh*sw interleaved sub-grids (one strided copy); after that a
      window offset is a shift along a flattened line, and every compare
      step is one long contiguous vector loop. On the window views
      themselves NumPy runs strided inner loops as short as a row (6 values
      for AlexNet's pool5), which cost several times more per value.
    * Chunks of ``chunk_bytes`` (about 1 MB) of planes keep the temporaries
      in the L2 cache, and run on threads (fast/cpu.py; NumPy only).
    * Backward is one scatter-add: each window's winner gets a flat pixel
      position and ``bincount(positions, weights=dout)`` sums the gradients
      of overlapping windows in one pass (in float64, rounded once), instead
      of a masked add per kernel offset (9 passes of equal, multiply and add
      for 3x3). ``take`` of the offsets' positions is several times faster
      with intp indices than with the uint8 ones.

    Windows of at most 255 pixels (uint8 offsets); ``implementations()``
    gives the reference MaxPool2D for larger ones.

    Kept between forward and backward: ``argmax`` (the winner's offset
    i*kw + j in each window, as the reference's, but uint8 and in a reused
    workspace) and ``x_shape``.
    """

    chunk_bytes = 1 << 20   # per chunk of channel planes: the chunk's temporaries stay in the L2 cache

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        if kh * kw > MAX_WINDOW:
            raise ValueError(f"FastMaxPool2D records window offsets in uint8: windows of at most {MAX_WINDOW} "
                             f"pixels, got {kh}x{kw}; use the reference MaxPool2D")
        self.workspaces = Workspaces()
        self.x_shape = None

    def forward(self, x):
        """Separable maximum (the kw columns, then the kh rows) over the stride's sub-grids.

        Per chunk of (n, c) planes:

        0. split each plane into its sh*sw interleaved sub-grids
           ``g[rh, rw][q, r] = x[rh + q*sh, rw + r*sw]``, each (Hq, Wq) with
           Hq = Ho + (kh-1)//sh, Wq = Wo + (kw-1)//sw (the pixels windows reach;
           padding set to 0, never used). Window offset (i, j) of window (y, x)
           is ``g[i % sh, j % sw][y + i//sh, x + j//sw]``: a shifted slice.
        1. columns, for each row sub-grid rh: ``cm[rh] = max_j`` of the
           sub-grid ``j % sw`` shifted by ``j // sw`` columns, with ``cj`` the
           first j attaining it;
        2. rows: ``out = max_i`` of ``cm[i % sh]`` shifted by ``i // sh`` rows,
           labelled ``i*kw + cj`` (the winner's offset in row-major order).

        Every step runs on whole chunks flattened to one line (a shift by one
        row is a shift by Wq along the line; what spills over a row's end is
        computed and dropped): long contiguous vector loops instead of strided
        ones. The first maximum in row-major order is in the first row holding
        the maximum, at that row's first column holding it, so ties go where the
        reference sends them.
        """
        check_input(self, x, 4)
        xp = get_array_module(x)
        N, C = x.shape[:2]
        _, Ho, Wo = self.output_shape(x.shape[1:])
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        H, W = x.shape[2:]
        Hq, Wq = Ho + (kh - 1) // sh, Wo + (kw - 1) // sw
        gh, gw = min(sh, kh), min(sw, kw)               # the sub-grids windows reach (all unless stride > kernel)
        planes = x.reshape(N * C, H, W)
        out = xp.empty((N * C, Ho, Wo), dtype=x.dtype)
        idx = self.workspaces.get("argmax", (N, C, Ho, Wo), xp.uint8, x)     # kept for backward, reused
        idx3 = idx.reshape(N * C, Ho, Wo)

        def work(lo, hi):
            P = hi - lo
            L = P * Hq * Wq                             # one sub-grid of the chunk, as a line
            g = xp.empty((gh, gw, P, Hq, Wq), dtype=x.dtype)
            for rh in range(gh):
                for rw in range(gw):
                    sub = planes[lo:hi, rh::sh, rw::sw][:, :Hq, :Wq]
                    g[rh, rw, :, :sub.shape[1], :sub.shape[2]] = sub
                    g[rh, rw, :, sub.shape[1]:] = 0
                    g[rh, rw, :, :, sub.shape[2]:] = 0
            g = g.reshape(gh, gw, L)
            # 1. columns
            n = L - (kw - 1) // sw
            cm = xp.empty((gh, L), dtype=x.dtype)
            cj = xp.empty((gh, L), dtype=xp.uint8)
            for rh in range(gh):
                _running_max(xp, lambda j: g[rh, j % sw, j // sw:j // sw + n], kw, cm[rh, :n], cj[rh, :n],
                             lambda j: xp.uint8(j))
                cm[rh, n:], cj[rh, n:] = 0, 0
            # 2. rows
            n = L - (kh - 1) // sh * Wq
            r = xp.empty(L, dtype=x.dtype)
            ri = xp.empty(L, dtype=xp.uint8)

            def rows(i):                                # cm's row sub-grid i % sh, shifted by i // sh rows
                return slice(i // sh * Wq, i // sh * Wq + n)

            _running_max(xp, lambda i: cm[i % sh, rows(i)], kh, r[:n], ri[:n],
                         lambda i: cj[i % sh, rows(i)] + xp.uint8(i * kw))
            xp.copyto(out[lo:hi], r.reshape(P, Hq, Wq)[:, :Ho, :Wo])
            xp.copyto(idx3[lo:hi], ri.reshape(P, Hq, Wq)[:, :Ho, :Wo])

        in_chunks(N * C, work, xp, item_bytes=H * W * x.itemsize, chunk_bytes=self.chunk_bytes)
        self.argmax, self.x_shape = idx, x.shape
        return out.reshape(N, C, Ho, Wo)

    def backward(self, dout):
        """One scatter-add (``bincount``) of dout to its windows' winners.

        Window (y, x) won at offset k = i*kw + j sends its gradient to pixel
        (y*sh + i, x*sw + j), flat position ``(y*sh)*W + x*sw + table[k]`` in its
        plane with ``table[k] = i*W + j``. ``bincount(positions, weights=dout)``
        sums every window's gradient into its pixel in one pass (in float64, then
        rounded once to dout's dtype: the overlapping windows' sums are at least
        as precise as the reference's float32 adds).
        """
        need_cache(self, "argmax")
        idx = self.argmax
        check_dout(self, dout, idx.shape)
        xp = get_array_module(dout)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        N, C, Ho, Wo = dout.shape
        H, W = self.x_shape[2:]
        k = xp.arange(kh * kw)
        table = (k // kw) * W + k % kw                               # offset k -> its flat position in the window
        corner = (xp.arange(Ho)[:, None] * (sh * W) + xp.arange(Wo) * sw)   # window (y, x)'s top-left pixel
        idx3, d3 = idx.reshape(N * C, Ho, Wo), dout.reshape(N * C, Ho, Wo)
        dx = xp.empty((N * C, H * W), dtype=dout.dtype)

        def work(lo, hi):
            P = hi - lo
            # (P, Ho, Wo): the winner's position in its window (take is several times faster with intp indices)
            pos = xp.take(table, idx3[lo:hi].astype(xp.intp))
            pos += corner
            pos += (xp.arange(P) * (H * W))[:, None, None]   # plane p of the chunk starts at p*H*W
            s = xp.bincount(pos.reshape(-1), weights=d3[lo:hi].reshape(-1), minlength=P * H * W)
            xp.copyto(dx[lo:hi], s.reshape(P, H * W), casting="same_kind")

        in_chunks(N * C, work, xp, item_bytes=H * W * dout.itemsize, chunk_bytes=self.chunk_bytes)
        return dx.reshape(self.x_shape)


def maxpool2d_class(kernel_size):
    """The class for a max pool of this window: FastMaxPool2D, or the reference MaxPool2D above 255 pixels."""
    kh, kw = _pair(kernel_size, "kernel_size")
    return FastMaxPool2D if kh * kw <= MAX_WINDOW else MaxPool2D
