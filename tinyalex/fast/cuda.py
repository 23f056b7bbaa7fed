r"""The GPU fast implementations: every forward and backward as a few whole-array operations.

On a GPU each array operation is one kernel launch (a few microseconds of
overhead however small the array), and the GPU is fast at large arrays. So
what makes a layer fast there is the opposite of the CPU's tricks in cpu.py:
no cache-sized chunks, no threads, no loops over rows or tiles; a layer's
pass is a handful of operations on whole arrays, and the number of
operations does not depend on the batch size. Nothing here reads a device
value back to the host (no ``bincount``, no ``nonzero``, no ``float()``), so
a training step never waits for the GPU.

:func:`tinyalex.fast.implementations` gives these classes for the "cupy"
backend and for the CPU stand-in ("standin"), which follows CuPy's rules and
counts the operations (docs/backend.md): ``tests/fast/test_cuda.py`` checks
each class against its reference on the stand-in (float64 and float32,
gradient check) and bounds its operation count.

    CudaConv2D     im2col: one strided copy, one batched product; col2im in k*k adds
    CudaLRN        window sums as shifted adds in a channel-padded buffer
    CudaMaxPool2D  the reference's forward (3 operations); backward without bincount
    CudaReLU       maximum; backward one where

Linear is :class:`~tinyalex.fast.FastLinear` on every backend (a product
and an add, nothing CPU-specific). All of it is plain CuPy array code (no
hand-written kernels), so the stand-in runs exactly what a GPU runs.

:func:`add_windows` is the one scatter-add they share (col2im and the max
pool's backward).
"""
from __future__ import annotations

from ..backend import device_of, get_array_module
from ..layers.activation import ReLU
from ..layers.base import check_dout, check_input, need_cache
from ..layers.conv import Conv2D
from ..layers.lrn import LRN
from ..layers.pooling import MaxPool2D
from .conv import FastConv2D
from .cpu import Workspaces, grad_buffer

__all__ = ["CudaConv2D", "CudaLRN", "CudaMaxPool2D", "CudaReLU", "add_windows", "canvas_size"]


def canvas_size(n_out, k, s):
    """Rows (or columns) a buffer needs for :func:`add_windows`: (n_out - 1 + ceil(k/s)) * s >= (n_out-1)*s + k."""
    return (n_out - 1 + -(-k // s)) * s


def add_windows(canvas, win, stride):
    """``canvas[..., y*sh + i, x*sw + j] += win[i, j, ..., y, x]`` for every window (y, x) and offset (i, j).

    The transpose of reading overlapping windows (col2im, the max pool's
    backward): where windows overlap, a pixel collects the sum of all of them.
    ``win`` is (kh, kw, ..., Ho, Wo); ``canvas`` is (..., Hc, Wc) with Hc, Wc
    at least :func:`canvas_size` (the extra rows and columns receive nothing
    when they lie beyond the last window).

    Offsets are taken in blocks of sh x sw: inside one block, two windows
    never write the same pixel (rows y*sh + i, i < sh, are distinct for
    distinct (y, i)), so a whole block is one in-place add into a strided
    view of the canvas. That is ceil(kh/sh) * ceil(kw/sw) operations: 4 for
    the paper's 3x3 stride-2 pool, k*k for a stride-1 convolution. Each
    pixel's sum is taken in a fixed order, so the result is deterministic
    (an atomic scatter-add on a GPU, e.g. ``cupyx.scatter_add``, is not).
    """
    xp = get_array_module(canvas)
    kh, kw = win.shape[:2]
    Ho, Wo = win.shape[-2:]
    sh, sw = stride
    if canvas.shape[-2] < canvas_size(Ho, kh, sh) or canvas.shape[-1] < canvas_size(Wo, kw, sw):
        raise ValueError(f"add_windows: canvas {canvas.shape[-2:]} smaller than the "
                         f"{canvas_size(Ho, kh, sh)}x{canvas_size(Wo, kw, sw)} the windows need")
    L = canvas.ndim - 2
    *s_lead, sH, sW = canvas.strides
    for bi in range(0, kh, sh):
        ih = min(sh, kh - bi)
        for bj in range(0, kw, sw):
            jw = min(sw, kw - bj)
            # target[..., y, ii, x, jj] is canvas[..., bi + y*sh + ii, bj + x*sw + jj]: a view (as_strided
            # always is; distinct (y, ii) give distinct rows because ii < sh)
            corner = canvas[..., bi:, bj:]
            target = xp.lib.stride_tricks.as_strided(
                corner, shape=canvas.shape[:-2] + (Ho, ih, Wo, jw),
                strides=tuple(s_lead) + (sH * sh, sH, sW * sw, sW))
            # (ih, jw, ..., Ho, Wo) -> (..., Ho, ih, Wo, jw)
            src = win[bi:bi + ih, bj:bj + jw].transpose(tuple(range(2, 2 + L)) + (L + 2, 0, L + 3, 1))
            target += src


class CudaConv2D(Conv2D):
    """Conv2D by im2col in a fixed number of whole-array operations: 4 forward, 6 + kh*kw backward.

    What it optimizes, and why (for a GPU):

    * Forward: the input is copied into the interior of a zero-padded
      workspace (1 operation; the border was zeroed once, when the workspace
      was made), im2col is one copy from a strided view of it into the
      (G, K, N*Ho*Wo) ``cols`` workspace (1), the product of every group is
      one batched ``matmul`` (1), and the layout change (G*F/G, N, Ho*Wo) ->
      (N, F, Ho*Wo) adds the bias on the way (1). The CPU's FastConv2D splits
      the same copies into chunks for the cache and threads; a GPU wants each
      in one launch.
    * Backward: dout is laid out as (G, F/G, N*Ho*Wo) (1 copy), dW is one
      batched product straight into the gradient array (1), db one sum (1),
      dcols = W^T dout one product into the spent ``cols`` workspace (1),
      col2im is :func:`add_windows` into a zeroed padded buffer (1 + kh*kw
      adds, deterministic: no atomics), and the crop to (N, C, H, W) is one
      copy (1). ``compute_input_grad = False`` (the first layer) stops after db.
    * No Winograd: WinogradConv2D's tile gathers and scatters are
      loops of strided copies on the CPU; on a GPU this class does im2col for
      every layer. Whether Winograd would pay off on a GPU is unmeasured.

    Kept between forward and backward: ``x`` (the input) and ``cols_valid``
    (whether the ``cols`` workspace still holds im2col(x): a backward writes
    dcols over it, so a second backward rebuilds it). Workspaces (padded
    input, ``cols``, the product, the col2im canvas) in ``self.workspaces``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.x = None
        self.cols_valid = False

    _geometry = FastConv2D._geometry        # (N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G) of an input shape
    _backward_start = FastConv2D._backward_start   # (x kept by forward, its geometry), dout checked

    def _fill_cols(self, x):
        """cols[g, (c, i, j), (n, y, x)] = xpad[n, g*Cg + c, y*sh + i, x*sw + j]: 1 or 2 copies."""
        xp = get_array_module(x)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        if ph or pw:
            xpad = self.workspaces.get("xpad", (N, C, H + 2 * ph, W + 2 * pw), x.dtype, x, zero=True)
            xpad[:, :, ph:ph + H, pw:pw + W] = x          # the border stays zero
        else:
            xpad = x
        sN, sC, sH, sW = xpad.strides
        view = xp.lib.stride_tricks.as_strided(
            xpad, shape=(C, kh, kw, N, Ho, Wo), strides=(sC, sH, sW, sN, sH * sh, sW * sw))
        cols = self.workspaces.get("cols", (G, (C // G) * kh * kw, N * Ho * Wo), x.dtype, x)
        xp.copyto(cols.reshape(C, kh, kw, N, Ho, Wo), view)
        self.cols_valid = True
        return cols

    def forward(self, x):
        """im2col (one copy), one batched product, bias added in the layout change."""
        check_input(self, x, 4, self.in_channels)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        Wt, b = self.params["W"], self.params["b"]
        xp = get_array_module(x, Wt)
        cols = self._fill_cols(x)                                        # (G, K, M), M = N*Ho*Wo
        prod = self.workspaces.get("prod", (G, F // G, N * Ho * Wo), x.dtype, x)
        xp.matmul(Wt.reshape(G, F // G, -1), cols, out=prod)             # (G, F/G, M)
        out = xp.empty((N, F, Ho * Wo), dtype=x.dtype)
        xp.add(prod.reshape(F, N, Ho * Wo).transpose(1, 0, 2), b.reshape(1, F, 1), out=out)
        self.x = x
        return out.reshape(N, F, Ho, Wo)

    def backward(self, dout):
        """dW = dout cols^T; db = sum of dout; dcols = W^T dout over cols; col2im by add_windows."""
        x, (N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G) = self._backward_start(dout)
        xp = get_array_module(dout)
        Wt = self.params["W"]
        cols = self.workspaces["cols"] if self.cols_valid else self._fill_cols(x)
        K, M = cols.shape[1], N * Ho * Wo
        dout_g = self.workspaces.get("prod", (G, F // G, M), dout.dtype, dout)
        xp.copyto(dout_g.reshape(F, N, Ho * Wo), dout.reshape(N, F, Ho * Wo).transpose(1, 0, 2))
        dW = grad_buffer(self, "W", Wt.shape, Wt.dtype, dout)
        xp.matmul(dout_g, cols.transpose(0, 2, 1), out=dW.reshape(G, F // G, K))
        db = grad_buffer(self, "b", (F,), Wt.dtype, dout)
        xp.sum(dout_g.reshape(F, M), axis=1, out=db)
        if not self.compute_input_grad:
            return None
        xp.matmul(Wt.reshape(G, F // G, K).transpose(0, 2, 1), dout_g, out=cols)    # dcols, over cols
        self.cols_valid = False
        Hc = max(H + 2 * ph, canvas_size(Ho, kh, sh))
        Wc = max(W + 2 * pw, canvas_size(Wo, kw, sw))
        canvas = self.workspaces.get("canvas", (C, N, Hc, Wc), dout.dtype, dout)    # channel-major, padded
        canvas[...] = 0
        # dcols[(c, i, j), (n, y, x)] goes to xpad[n, c, y*sh + i, x*sw + j]
        add_windows(canvas, cols.reshape(C, kh, kw, N, Ho, Wo).transpose(1, 2, 0, 3, 4, 5), (sh, sw))
        dx = xp.empty((N, C, H, W), dtype=dout.dtype)
        xp.copyto(dx, canvas[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3))
        return dx


class CudaLRN(LRN):
    r"""LRN in about ten whole-array operations each way.

    What it optimizes, and why (for a GPU):

    * The window sum over ``size`` channels is ``size - 1`` adds of shifted
      slices of a channel-padded buffer (the squares are written into its
      interior by the squaring itself, and its zero border stands for the
      channels beyond the edges): no copy, no clipping logic, no cumulative
      sums (exact: no cancellation).
    * Forward keeps :math:`s^{-\beta}` and :math:`s^{-\beta-1}`, so backward
      needs no power and no division (the same as FastLRN, without its chunks
      and threads).

    Operations: forward 1 + (size-1) + 5, backward 2 + (size-1) + 4.
    Kept between forward and backward: ``x``, ``s_pow`` (:math:`s^{-\beta}`)
    and ``s_pow1`` (:math:`s^{-\beta-1}`), the last two in ``self.workspaces``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.x = self.s_pow = self.s_pow1 = None

    def _window_sum(self, fill, like, name, transpose):
        """out[:, i] = sum of a[:, j] over the window of channel i, where ``fill(interior)`` writes a.

        The window is [i - n//2, i + (n-1)//2] (``transpose``: the mirrored
        [i - (n-1)//2, i + n//2], as lrn.window_sum), clipped to the channels.
        """
        xp = get_array_module(like)
        n, C = self.size, like.shape[1]
        before = (n - 1) // 2 if transpose else n // 2
        N, _, H, W = like.shape
        pad = self.workspaces.get(name, (N, C + n - 1, H, W), like.dtype, like, zero=True)   # border stays 0
        fill(pad[:, before:before + C])
        if n == 1:
            return pad[:, :C].copy()
        out = xp.add(pad[:, 0:C], pad[:, 1:1 + C])
        for d in range(2, n):
            out += pad[:, d:d + C]
        return out

    def forward(self, x):
        """s = k + alpha' * window sum of x^2; out = x s^-beta; keep s^-beta and s^(-beta-1)."""
        check_input(self, x, 4)
        xp = get_array_module(x)
        dt = x.dtype.type
        s = self._window_sum(lambda sq: xp.multiply(x, x, out=sq), x, "sq", transpose=False)
        s *= dt(self.alpha_eff)
        s += dt(self.k)
        s_pow = self.workspaces.get("s_pow", x.shape, x.dtype, x)
        xp.power(s, dt(-self.beta), out=s_pow)
        out = xp.multiply(x, s_pow)
        s_pow1 = self.workspaces.get("s_pow1", x.shape, x.dtype, x)
        xp.divide(s_pow, s, out=s_pow1)
        self.x, self.s_pow, self.s_pow1 = x, s_pow, s_pow1
        return out

    def backward(self, dout):
        """dx = dout s^-beta - 2 beta alpha' x window_sum(dout x s^(-beta-1))."""
        need_cache(self, "x")
        x, s_pow, s_pow1 = self.x, self.s_pow, self.s_pow1
        check_dout(self, dout, x.shape)
        xp = get_array_module(dout)

        def fill(q):                                    # q = dout * x * s^(-beta-1)
            xp.multiply(dout, x, out=q)
            q *= s_pow1

        cross = self._window_sum(fill, dout, "q", transpose=True)
        cross *= x
        cross *= dout.dtype.type(2 * self.beta * self.alpha_eff)
        dx = xp.multiply(dout, s_pow)
        dx -= cross
        return dx


class CudaMaxPool2D(MaxPool2D):
    """Max pooling whose backward is a few whole-array operations, with no host read.

    * Forward is the reference's own (tinyalex/layers/pooling.py), already
      three whole-array operations: copy the windows (a strided view) into
      (N, C, Ho, Wo, kh*kw), ``argmax`` (first maximum in row-major order, as
      in CuPy), ``take_along_axis``.
    * Backward: ``win[i, j] = where(argmax == i*kw + j, dout, 0)`` for all
      offsets at once (2 operations), then :func:`add_windows` into a zeroed
      canvas (1 + ceil(kh/sh)*ceil(kw/sw): 5 for 3x3 stride 2) and a crop (1).
      The reference loops over the kh*kw offsets (3 operations each);
      FastMaxPool2D's ``bincount`` reads two values back to the host before it
      starts (CuPy checks the indices are non-negative and finds their
      maximum), which would stall the GPU once per pooling layer.

    Kept between forward and backward: ``argmax`` and ``x_shape`` (the
    reference's); the canvas in ``self.workspaces``, the offsets
    0..kh*kw-1 in ``self.offsets`` (made once per device).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.offsets = {}

    forward = MaxPool2D.forward     # the reference's, as it is: already three whole-array operations

    def backward(self, dout):
        """Each window's dout to its winner, overlapping windows summed (add_windows)."""
        need_cache(self, "argmax")
        check_dout(self, dout, self.argmax.shape)
        xp = get_array_module(dout)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        N, C, Ho, Wo = dout.shape
        H, W = self.x_shape[2:]
        key = (xp.__name__, device_of(dout), kh, kw)
        if key not in self.offsets:          # made once per device: offset i*kw + j at [i, j]
            self.offsets = {key: xp.arange(kh * kw).reshape(kh, kw, 1, 1, 1, 1)}
        offsets = self.offsets[key]
        win = xp.where(self.argmax == offsets, dout, dout.dtype.type(0))      # (kh, kw, N, C, Ho, Wo)
        canvas = self.workspaces.get("canvas", (N, C, max(H, canvas_size(Ho, kh, sh)),
                                                max(W, canvas_size(Wo, kw, sw))), dout.dtype, dout)
        canvas[...] = 0
        add_windows(canvas, win, (sh, sw))
        dx = xp.empty(self.x_shape, dtype=dout.dtype)
        xp.copyto(dx, canvas[:, :, :H, :W])
        return dx


class CudaReLU(ReLU):
    """ReLU in one operation forward, one ``where`` backward; the output doubles as the mask.

    * Keeps its output (which the next layer holds anyway) instead of a
      separate boolean mask: one array less per step.
    * No chunks, no threads (FastReLU's CPU work split): one launch each way.

    Kept between forward and backward: ``out`` (the output).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = None

    def forward(self, x):
        """out = maximum(x, 0)."""
        check_input(self, x, None)
        self.out = get_array_module(x).maximum(x, x.dtype.type(0))
        return self.out

    def backward(self, dout):
        """dx = dout where the output is positive, else 0 (a new array)."""
        need_cache(self, "out")
        check_dout(self, dout, self.out.shape)
        xp = get_array_module(dout)
        return xp.where(self.out > 0, dout, dout.dtype.type(0))
