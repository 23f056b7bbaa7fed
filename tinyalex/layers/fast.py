"""Fast paths: the same layers, computed with fewer copies and allocations.

Read the plain versions first (``Conv2D.forward`` in conv.py, ``LRN.forward``
in lrn.py, ...): they are the specification. The functions here compute the
same numbers (tests/layers/test_fast_paths.py checks forward and backward
against the plain versions, float32 and float64) and are what the layers run
by default. Every layer class has a class attribute ``impl``: ``"fast"``
(default) or ``"reference"``; set it on one layer (``conv.impl =
"reference"``) or everywhere with :func:`use_impl`.

What makes them faster, layer by layer (measured in docs/performance.md):

Conv2D
    * Workspaces: the im2col matrix ``cols`` (G, K, N*Ho*Wo), the padded
      input and the (G, F/G, N*Ho*Wo) product are kept on the layer and reused
      from step to step, not allocated afresh: a fresh 200 MB array costs page
      faults on every step.
    * ``cols`` is filled by one ``copyto`` from a strided view of the padded
      input (no intermediate copies).
    * The weight gradient is computed as ``dW^T = cols @ dout^T`` (a
      (K, M) x (M, F/G) product): OpenBLAS splits this form across threads
      well, and with 2 threads it ran 1.1 to 4x faster than the equivalent
      ``dout @ cols^T`` on AlexNet's shapes (5 to 10% with one thread).
    * ``dcols = W^T @ dout`` is written into the ``cols`` workspace (``cols``
      is no longer needed once dW is known), and col2im adds it into a
      channel-major (C, N, H, W) buffer, so that each of the kh*kw
      slice-adds reads its source contiguously.
    * ``compute_input_grad = False`` (for the first layer, whose input is the
      data) skips dcols and col2im altogether, as PyTorch does.
    * Gradients are written into the existing ``grads`` arrays when their
      shape matches (as PyTorch's ``.grad``): copy them if you keep them
      across steps.
LRN
    * The window sum over n=5 channels is n-1 in-place shifted adds (exact:
      no cancellation as in a difference of cumulative sums).
    * One float32 ``power`` for :math:`s^{-\\beta}` (with NumPy 2.4 it is
      faster and more precise than the square-root form
      :math:`1 / (\\sqrt{s} \\sqrt{\\sqrt{s}})`).
    * Forward keeps :math:`s^{-\\beta}` and :math:`s^{-\\beta-1}` (in
      workspaces reused from step to step), so backward needs no division
      and no power.
MaxPool2D
    * Separable maximum: the max over a kh x kw window is the max over its
      kh rows of the max over each row's kw columns, so the forward does
      (kw-1) + (kh-1) compare steps (2 + 2 for 3x3) instead of kh*kw-1 (8).
      The winner is recorded as a uint8 offset i*kw + j; strictly greater
      replaces, first over columns then over rows, so ties go to the first
      maximum in row-major order, as in the plain version.
    * Contiguous passes: each chunk of (n, c) planes is first split into the
      stride's sh*sw interleaved sub-grids (one strided copy); after that a
      window offset is a shift along a flattened line, and every compare
      step is one long contiguous vector loop. On the window views
      themselves NumPy runs strided inner loops as short as a row (6 values
      for AlexNet's pool5), which cost several times more per value.
    * Chunks of about 1 MB of planes keep the temporaries in the L2 cache.
    * Backward is one scatter-add: each window's winner gets a flat pixel
      position and ``bincount(positions, weights=dout)`` sums the gradients
      of overlapping windows in one pass (in float64, rounded once), instead
      of a masked add per kernel offset (9 passes of equal, multiply and add
      for 3x3). ``take`` of the offsets' positions is several times faster
      with intp indices than with the uint8 ones.
ReLU
    * Keeps its output (which the next layer holds anyway) instead of a
      separate mask, and uses ``maximum``.
Linear
    * Bias added in place to the product; weight gradient written into the
      existing gradient array.

Threads
    NumPy runs an elementwise operation on one core; OpenBLAS runs matrix
    products on all of them. The fast paths split their elementwise work
    (LRN, pooling, ReLU, im2col, col2im, layout changes) into chunks along
    the batch or channel axis and run the chunks on a small pool of threads:
    NumPy releases the GIL inside its loops, so the chunks run in parallel.
    ``TINYALEX_THREADS`` (default: the number of CPUs) sets the count; 1
    turns it off. Only for NumPy arrays: CuPy runs on the GPU anyway, and
    the stand-in's device is per thread.

None of this changes what a layer computes; all of it runs on NumPy, CuPy
and the stand-in backend (only ``xp`` functions, never ``numpy`` on data).
"""
from __future__ import annotations

import contextlib
import os
import threading

import numpy

from ..backend import device_of, get_array_module
from .base import check_dout, check_input, need_cache, shape_error

IMPLS = ("fast", "reference")


@contextlib.contextmanager
def use_impl(name):
    """Run every layer with the ``"fast"`` or the ``"reference"`` implementation inside the block."""
    if name not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {name!r}")
    from . import Conv2D, Linear, LRN, MaxPool2D, ReLU

    classes = (Conv2D, LRN, MaxPool2D, ReLU, Linear)
    old = [c.__dict__.get("impl") for c in classes]
    for c in classes:
        c.impl = name
    try:
        yield
    finally:
        for c, o in zip(classes, old):
            c.impl = o


def check_impl(layer):
    """The layer's impl, validated: "fast" or "reference"."""
    impl = layer.impl
    if impl not in IMPLS:
        raise ValueError(f"{layer}: impl must be one of {IMPLS}, got {impl!r}")
    return impl


def _workspace(layer, name, shape, dtype, like, zero=False):
    """A buffer kept on the layer and reused while shape, dtype and device stay the same.

    ``zero``: fill with zeros when (re)allocated (the padded input's border
    stays zero because only its interior is ever written).
    """
    ws = layer.__dict__.setdefault("_workspaces", {})
    buf = ws.get(name)
    xp = get_array_module(like)
    if (buf is None or buf.shape != tuple(shape) or buf.dtype != dtype
            or get_array_module(buf) is not xp or device_of(buf) != device_of(like)):
        buf = xp.zeros(shape, dtype=dtype) if zero else xp.empty(shape, dtype=dtype)
        ws[name] = buf
    return buf


def _into_grad(layer, key, value_shape, dtype, like):
    """The array to write a parameter gradient into: the existing one if it fits, else a new one."""
    g = layer.grads.get(key)
    xp = get_array_module(like)
    if (g is None or g.shape != tuple(value_shape) or g.dtype != dtype or get_array_module(g) is not xp
            or device_of(g) != device_of(like)):
        g = xp.empty(value_shape, dtype=dtype)
        layer.grads[key] = g
    return g


def num_threads():
    """Threads for the elementwise work: TINYALEX_THREADS, else the number of CPUs."""
    env = os.environ.get("TINYALEX_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"TINYALEX_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"TINYALEX_THREADS must be a positive integer, got {env!r}")
        return n
    return os.cpu_count() or 1


_pool = {"executor": None, "size": 0, "pid": None, "lock": threading.Lock()}


def _executor(n):
    from concurrent.futures import ThreadPoolExecutor

    with _pool["lock"]:
        if _pool["pid"] != os.getpid():      # after a fork the parent's threads do not exist here
            _pool["executor"] = None
        if _pool["executor"] is None or _pool["size"] != n:
            if _pool["executor"] is not None:
                _pool["executor"].shutdown(wait=False)
            _pool["executor"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tinyalex")
            _pool["size"], _pool["pid"] = n, os.getpid()
        return _pool["executor"]


def in_chunks(n, work, xp, item_bytes=0, chunk_bytes=8 << 20):
    """Call ``work(lo, hi)`` on chunks covering range(n), in parallel for NumPy.

    Chunks are about ``chunk_bytes`` (given ``item_bytes`` per index) so that
    each chunk's temporaries stay in cache, and there are at least as many
    chunks as threads. ``work`` must write only to its own chunk.
    """
    threads = num_threads() if xp is numpy else 1
    parts = max(1, min(n, threads if threads > 1 else 1))
    if item_bytes:
        parts = max(parts, min(n, -(-n * item_bytes // chunk_bytes)))
    if parts == 1 or threads == 1 and not item_bytes:
        work(0, n)
        return
    bounds = [n * k // parts for k in range(parts + 1)]
    pairs = [(bounds[k], bounds[k + 1]) for k in range(parts) if bounds[k + 1] > bounds[k]]
    if threads == 1:
        for lo, hi in pairs:
            work(lo, hi)
        return
    ex = _executor(threads)
    futures = [ex.submit(work, lo, hi) for lo, hi in pairs]
    for f in futures:
        f.result()          # re-raises a worker's exception here


# --------------------------------------------------------------------------
# Conv2D
# --------------------------------------------------------------------------
def _conv_geometry(layer, x_shape):
    N, C, H, W = x_shape
    F, Ho, Wo = layer.output_shape((C, H, W))
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    G = layer.groups
    return N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G


def _fill_cols(layer, x):
    """cols[g, (c, i, j), (n, y, x)] = xpad[n, g*Cg + c, y*sh + i, x*sw + j], into the workspace."""
    xp = get_array_module(x)
    N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = _conv_geometry(layer, x.shape)
    if ph or pw:
        xpad = _workspace(layer, "xpad", (N, C, H + 2 * ph, W + 2 * pw), x.dtype, x, zero=True)
        # the interior gets x; the border stays zero
        in_chunks(N, lambda lo, hi: xp.copyto(xpad[lo:hi, :, ph:ph + H, pw:pw + W], x[lo:hi]), xp)
    else:
        xpad = x
    sN, sC, sH, sW = xpad.strides
    view = xp.lib.stride_tricks.as_strided(
        xpad, shape=(C, kh, kw, N, Ho, Wo), strides=(sC, sH, sW, sN, sH * sh, sW * sw))
    K = (C // G) * kh * kw
    cols = _workspace(layer, "cols", (G, K, N * Ho * Wo), x.dtype, x)
    cols6 = cols.reshape(C, kh, kw, N, Ho, Wo)
    if C >= 4 * num_threads():         # split the copy over channels, or over kernel rows if few
        in_chunks(C, lambda lo, hi: xp.copyto(cols6[lo:hi], view[lo:hi]), xp)
    else:
        in_chunks(kh, lambda lo, hi: xp.copyto(cols6[:, lo:hi], view[:, lo:hi]), xp)
    return cols


def conv2d_forward(layer, x):
    """Conv2D.forward, fast: im2col into a reused workspace, one batched product, bias fused in the layout change."""
    check_input(layer, x, 4, layer.in_channels)
    N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = _conv_geometry(layer, x.shape)
    Wt, b = layer.params["W"], layer.params["b"]
    xp = get_array_module(x, Wt)
    cols = _fill_cols(layer, x)                                      # (G, K, M), M = N*Ho*Wo
    prod = _workspace(layer, "prod", (G, F // G, N * Ho * Wo), x.dtype, x)
    xp.matmul(Wt.reshape(G, F // G, -1), cols, out=prod)             # (G, F/G, M)
    out = xp.empty((N, F, Ho * Wo), dtype=x.dtype)
    # (F, N, Ho*Wo) -> (N, F, Ho*Wo), adding the bias on the way
    prodT, bcol = prod.reshape(F, N, Ho * Wo).transpose(1, 0, 2), b.reshape(1, F, 1)
    in_chunks(N, lambda lo, hi: xp.add(prodT[lo:hi], bcol, out=out[lo:hi]), xp)
    layer.cols = None                       # the plain version's cache: not used by this path
    layer._fast_x, layer._fast_cols_valid = x, True
    layer.x_shape = x.shape
    return out.reshape(N, F, Ho, Wo)


def conv2d_backward(layer, dout):
    """Conv2D.backward, fast: dW^T = cols @ dout^T; dcols written over cols; channel-major col2im."""
    need_cache(layer, "_fast_x")
    x = layer._fast_x
    N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = _conv_geometry(layer, x.shape)
    check_dout(layer, dout, (N, F, Ho, Wo))
    xp = get_array_module(dout)
    Wt = layer.params["W"]
    M = N * Ho * Wo
    if not layer._fast_cols_valid:          # a second backward after one forward: rebuild cols
        _fill_cols(layer, x)
    cols = layer._workspaces["cols"]
    K = cols.shape[1]
    dout_g = _workspace(layer, "prod", (G, F // G, M), dout.dtype, dout)
    dg3, d3 = dout_g.reshape(F, N, Ho * Wo), dout.reshape(N, F, Ho * Wo).transpose(1, 0, 2)
    in_chunks(F, lambda lo, hi: xp.copyto(dg3[lo:hi], d3[lo:hi]), xp)
    # dW_g = dout_g @ cols_g^T, computed as its transpose cols_g @ dout_g^T (threads better in OpenBLAS)
    dWt = xp.matmul(cols, dout_g.transpose(0, 2, 1))                 # (G, K, F/G)
    dW = _into_grad(layer, "W", Wt.shape, Wt.dtype, dout)
    xp.copyto(dW.reshape(G, F // G, K), dWt.transpose(0, 2, 1))
    db = _into_grad(layer, "b", (F,), Wt.dtype, dout)
    xp.sum(dout_g.reshape(F, M), axis=1, out=db)
    if not getattr(layer, "compute_input_grad", True):
        return None
    # dcols_g = W_g^T @ dout_g, into the cols workspace (cols is spent)
    xp.matmul(Wt.reshape(G, F // G, K).transpose(0, 2, 1), dout_g, out=cols)
    layer._fast_cols_valid = False
    Hp, Wp = H + 2 * ph, W + 2 * pw
    dxT = _workspace(layer, "dxT", (C, N, Hp, Wp), dout.dtype, dout)  # channel-major, padded
    d = cols.reshape(C, kh, kw, N, Ho, Wo)

    def col2im(lo, hi):                     # channels lo..hi
        dxT[lo:hi] = 0
        for i in range(kh):
            for j in range(kw):
                # entries (c, i, j, n, y, x) go to xpad[n, c, y*sh + i, x*sw + j]
                dxT[lo:hi, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += d[lo:hi, i, j]

    in_chunks(C, col2im, xp)
    dx = xp.empty((N, C, H, W), dtype=dout.dtype)
    dxv = dxT[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3)
    in_chunks(N, lambda lo, hi: xp.copyto(dx[lo:hi], dxv[lo:hi]), xp)
    return dx


# --------------------------------------------------------------------------
# LRN
# --------------------------------------------------------------------------
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


def _neg_pow(xp, s, beta, out):
    """out = s ** -beta, one float32 ``power``.

    (The square-root form 1/(sqrt(s) sqrt(sqrt(s))) for beta = 0.75 is slower
    with NumPy 2.4, whose float32 power is vectorized: 20.5 ms against
    16.2 ms on 9.3 M values, and half as precise: docs/performance.md.)
    """
    return xp.power(s, s.dtype.type(-beta), out=out)


def _window(xp, a, n, out, transpose=False):
    if n <= 9:
        return _window_sum_inplace(a, n, out, transpose)
    from .lrn import window_sum
    xp.copyto(out, window_sum(a, n, transpose=transpose))
    return out


def lrn_forward(layer, x):
    """LRN.forward, fast: shifted-add window sum, float32 throughout, factors kept for backward."""
    check_input(layer, x, 4)
    xp = get_array_module(x)
    dt = x.dtype.type
    n, alpha, k, beta = layer.size, dt(layer.alpha_eff), dt(layer.k), layer.beta
    out = xp.empty(x.shape, dtype=x.dtype)
    # kept for backward, reused from step to step (fresh large arrays page-fault)
    s_pow = _workspace(layer, "s_pow", x.shape, x.dtype, x)
    s_pow1 = _workspace(layer, "s_pow1", x.shape, x.dtype, x)

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

    in_chunks(x.shape[0], work, xp, item_bytes=x[:1].nbytes)
    layer.x = None                                   # the plain version's cache: not used by this path
    layer._fast = (x, s_pow, s_pow1)
    return out


def lrn_backward(layer, dout):
    """LRN.backward, fast: dx = dout s^-beta - 2 beta alpha' a window_sum(dout a s^(-beta-1))."""
    need_cache(layer, "_fast")
    x, s_pow, s_pow1 = layer._fast
    check_dout(layer, dout, x.shape)
    xp = get_array_module(dout)
    c = dout.dtype.type(2 * layer.beta * layer.alpha_eff)
    dx = xp.empty_like(dout)

    def work(lo, hi):
        a, d = x[lo:hi], dout[lo:hi]
        q = d * a
        q *= s_pow1[lo:hi]                            # dout * b / s  (b = a s^-beta)
        cross = _window(xp, q, layer.size, xp.empty_like(q), transpose=True)
        cross *= a
        cross *= c
        xp.multiply(d, s_pow[lo:hi], out=dx[lo:hi])
        dx[lo:hi] -= cross

    in_chunks(x.shape[0], work, xp, item_bytes=x[:1].nbytes)
    return dx


# --------------------------------------------------------------------------
# MaxPool2D
# --------------------------------------------------------------------------
_POOL_CHUNK_BYTES = 1 << 20     # per chunk of channel planes: the chunk's temporaries stay in the L2 cache


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


def maxpool_forward(layer, x):
    """MaxPool2D.forward, fast: separable maximum (the kw columns, then the kh rows) over the stride's sub-grids.

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
    plain version sends them. Winner offsets are kept in uint8 for backward.
    """
    check_input(layer, x, 4)
    xp = get_array_module(x)
    N, C = x.shape[:2]
    _, Ho, Wo = layer.output_shape(x.shape[1:])
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    if kh * kw > 255:
        raise ValueError(f"{layer}: the fast path records window offsets in uint8; use impl='reference'")
    H, W = x.shape[2:]
    Hq, Wq = Ho + (kh - 1) // sh, Wo + (kw - 1) // sw
    gh, gw = min(sh, kh), min(sw, kw)               # the sub-grids windows reach (all unless stride > kernel)
    planes = x.reshape(N * C, H, W)
    out = xp.empty((N * C, Ho, Wo), dtype=x.dtype)
    idx = _workspace(layer, "idx", (N, C, Ho, Wo), xp.uint8, x)     # kept for backward, reused
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

    in_chunks(N * C, work, xp, item_bytes=H * W * x.itemsize, chunk_bytes=_POOL_CHUNK_BYTES)
    layer.argmax = None                             # the plain version's cache: not used by this path
    layer._fast_idx = idx
    layer.x_shape = x.shape
    return out.reshape(N, C, Ho, Wo)


def maxpool_backward(layer, dout):
    """MaxPool2D.backward, fast: one scatter-add (``bincount``) of dout to its windows' winners.

    Window (y, x) won at offset k = i*kw + j sends its gradient to pixel
    (y*sh + i, x*sw + j), flat position ``(y*sh)*W + x*sw + table[k]`` in its
    plane with ``table[k] = i*W + j``. ``bincount(positions, weights=dout)``
    sums every window's gradient into its pixel in one pass (in float64, then
    rounded once to dout's dtype: the overlapping windows' sums are at least
    as precise as the plain version's float32 adds).
    """
    need_cache(layer, "_fast_idx")
    idx = layer._fast_idx
    check_dout(layer, dout, idx.shape)
    xp = get_array_module(dout)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    N, C, Ho, Wo = dout.shape
    H, W = layer.x_shape[2:]
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

    in_chunks(N * C, work, xp, item_bytes=H * W * dout.itemsize, chunk_bytes=_POOL_CHUNK_BYTES)
    return dx.reshape(layer.x_shape)


# --------------------------------------------------------------------------
# ReLU and Linear
# --------------------------------------------------------------------------
def relu_forward(layer, x):
    """ReLU.forward, fast: maximum(x, 0); the output doubles as the mask for backward."""
    check_input(layer, x, None)
    xp = get_array_module(x)
    if xp is numpy and x.ndim >= 1 and x.shape[0] > 1:
        out = xp.empty_like(x)
        zero = x.dtype.type(0)
        in_chunks(x.shape[0], lambda lo, hi: xp.maximum(x[lo:hi], zero, out=out[lo:hi]), xp)
    else:
        out = xp.maximum(x, x.dtype.type(0))
    layer.mask = None                           # the plain version's cache: not used by this path
    layer._fast_out = out
    return out


def relu_backward(layer, dout):
    """ReLU.backward, fast: dout where the output is positive (a new array; dout is untouched)."""
    need_cache(layer, "_fast_out")
    out = layer._fast_out
    check_dout(layer, dout, out.shape)
    xp = get_array_module(dout)
    if xp is numpy and dout.ndim >= 1 and dout.shape[0] > 1:
        dx = xp.empty_like(dout)
        in_chunks(dout.shape[0], lambda lo, hi: xp.multiply(dout[lo:hi], out[lo:hi] > 0, out=dx[lo:hi]), xp)
        return dx
    return xp.multiply(dout, out > 0)


def linear_forward(layer, x):
    """Linear.forward, fast: x W^T, then the bias added in place."""
    check_input(layer, x, 2, layer.in_features)
    xp = get_array_module(x)
    out = xp.matmul(x, layer.params["W"].T)
    out += layer.params["b"]
    layer.x = x
    return out


def linear_backward(layer, dout):
    """Linear.backward, fast: dW = dout^T x into the existing gradient array."""
    need_cache(layer, "x")
    x = layer.x
    check_dout(layer, dout, (x.shape[0], layer.out_features))
    xp = get_array_module(dout)
    W = layer.params["W"]
    dW = _into_grad(layer, "W", W.shape, W.dtype, dout)
    xp.matmul(dout.T, x, out=dW)
    db = _into_grad(layer, "b", (layer.out_features,), W.dtype, dout)
    xp.sum(dout, axis=0, out=db)
    return xp.matmul(dout, W)
