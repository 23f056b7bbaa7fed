r"""Fast Conv2D: the reference's numbers, with fewer copies (FastConv2D) or fewer multiplications (WinogradConv2D).

Read the reference :class:`~tinyalex.layers.Conv2D` (tinyalex/layers/conv.py)
first: it is the specification. Both classes here are subclasses of it with
the same constructor, parameters and checks; each owns its forward, its
backward and what it keeps between them (named attributes, listed in its
docstring). tests/fast/test_conv.py checks both against the reference.

:func:`conv2d_class` is the rule a model built with ``fast=True`` uses to pick
one of them per layer (through :func:`tinyalex.fast.implementations`).
"""
from __future__ import annotations

import numbers

from ..backend import device_of, get_array_module, to_device_of
from ..layers.base import check_dout, check_input, need_cache
from ..layers.conv import Conv2D, _pair
from .cpu import Workspaces, grad_buffer, in_chunks, num_threads, one_blas_thread
from .winograd import transform_tiles, winograd_matrices

__all__ = ["FastConv2D", "ChunkedConv2D", "WinogradConv2D", "conv2d_class"]


class FastConv2D(Conv2D):
    """Conv2D by im2col, as the reference, with reused buffers and BLAS-friendly products.

    What it optimizes (measured in docs/performance.md):

    * Workspaces: the im2col matrix ``cols`` (G, K, N*Ho*Wo), the padded
      input and the (G, F/G, N*Ho*Wo) product are kept in ``self.workspaces``
      and reused from step to step, not allocated afresh: a fresh 200 MB
      array costs page faults on every step.
    * ``cols`` is filled by one ``copyto`` from a strided view of the padded
      input (no intermediate copies), split over threads (fast/cpu.py).
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

    Kept between forward and backward: ``x`` (the input) and ``cols_valid``
    (whether the ``cols`` workspace still holds im2col(x): a backward writes
    dcols over it, so a second backward rebuilds it).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.x = None
        self.cols_valid = False

    def _geometry(self, x_shape):
        N, C, H, W = x_shape
        F, Ho, Wo = self.output_shape((C, H, W))
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, self.groups

    def _backward_start(self, dout):
        """What an im2col backward starts with: the input forward kept, its geometry, dout checked against it."""
        need_cache(self, "x")
        g = self._geometry(self.x.shape)
        check_dout(self, dout, (g[0], g[4], g[5], g[6]))              # (N, F, Ho, Wo)
        return self.x, g

    def _fill_cols(self, x):
        """cols[g, (c, i, j), (n, y, x)] = xpad[n, g*Cg + c, y*sh + i, x*sw + j], into the workspace."""
        xp = get_array_module(x)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        if ph or pw:
            xpad = self.workspaces.get("xpad", (N, C, H + 2 * ph, W + 2 * pw), x.dtype, x, zero=True)
            # the interior gets x; the border stays zero
            in_chunks(N, lambda lo, hi: xp.copyto(xpad[lo:hi, :, ph:ph + H, pw:pw + W], x[lo:hi]), xp)
        else:
            xpad = x
        sN, sC, sH, sW = xpad.strides
        view = xp.lib.stride_tricks.as_strided(
            xpad, shape=(C, kh, kw, N, Ho, Wo), strides=(sC, sH, sW, sN, sH * sh, sW * sw))
        K = (C // G) * kh * kw
        cols = self.workspaces.get("cols", (G, K, N * Ho * Wo), x.dtype, x)
        cols6 = cols.reshape(C, kh, kw, N, Ho, Wo)
        if C >= 4 * num_threads():         # split the copy over channels, or over kernel rows if few
            in_chunks(C, lambda lo, hi: xp.copyto(cols6[lo:hi], view[lo:hi]), xp)
        else:
            in_chunks(kh, lambda lo, hi: xp.copyto(cols6[:, lo:hi], view[:, lo:hi]), xp)
        self.cols_valid = True
        return cols

    def forward(self, x):
        """im2col into a reused workspace, one batched product, bias fused in the layout change."""
        check_input(self, x, 4, self.in_channels)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        Wt, b = self.params["W"], self.params["b"]
        xp = get_array_module(x, Wt)
        cols = self._fill_cols(x)                                        # (G, K, M), M = N*Ho*Wo
        prod = self.workspaces.get("prod", (G, F // G, N * Ho * Wo), x.dtype, x)
        xp.matmul(Wt.reshape(G, F // G, -1), cols, out=prod)             # (G, F/G, M)
        out = xp.empty((N, F, Ho * Wo), dtype=x.dtype)
        # (F, N, Ho*Wo) -> (N, F, Ho*Wo), adding the bias on the way
        prodT, bcol = prod.reshape(F, N, Ho * Wo).transpose(1, 0, 2), b.reshape(1, F, 1)
        in_chunks(N, lambda lo, hi: xp.add(prodT[lo:hi], bcol, out=out[lo:hi]), xp)
        self.x = x
        return out.reshape(N, F, Ho, Wo)

    def backward(self, dout):
        """dW^T = cols @ dout^T; dcols written over cols; channel-major col2im."""
        x, (N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G) = self._backward_start(dout)
        xp = get_array_module(dout)
        Wt = self.params["W"]
        M = N * Ho * Wo
        cols = self.workspaces["cols"] if self.cols_valid else self._fill_cols(x)
        K = cols.shape[1]
        dout_g = self.workspaces.get("prod", (G, F // G, M), dout.dtype, dout)
        dg3, d3 = dout_g.reshape(F, N, Ho * Wo), dout.reshape(N, F, Ho * Wo).transpose(1, 0, 2)
        in_chunks(F, lambda lo, hi: xp.copyto(dg3[lo:hi], d3[lo:hi]), xp)
        # dW_g = dout_g @ cols_g^T, computed as its transpose cols_g @ dout_g^T (threads better in OpenBLAS)
        dWt = xp.matmul(cols, dout_g.transpose(0, 2, 1))                 # (G, K, F/G)
        dW = grad_buffer(self, "W", Wt.shape, Wt.dtype, dout)
        xp.copyto(dW.reshape(G, F // G, K), dWt.transpose(0, 2, 1))
        db = grad_buffer(self, "b", (F,), Wt.dtype, dout)
        xp.sum(dout_g.reshape(F, M), axis=1, out=db)
        if not self.compute_input_grad:
            return None
        # dcols_g = W_g^T @ dout_g, into the cols workspace (cols is spent)
        xp.matmul(Wt.reshape(G, F // G, K).transpose(0, 2, 1), dout_g, out=cols)
        self.cols_valid = False
        Hp, Wp = H + 2 * ph, W + 2 * pw
        dxT = self.workspaces.get("dxT", (C, N, Hp, Wp), dout.dtype, dout)   # channel-major, padded
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


class ChunkedConv2D(Conv2D):
    r"""Conv2D by im2col a few images at a time, so that each image's columns are used while still in cache.

    :class:`FastConv2D` builds the whole batch's im2col matrix (conv1 of
    alexnet-small at batch 64: 5 MB; AlexNet's conv1 at 32: 140 MB), runs one
    product over it, and moves the (G, F/G, N*Ho*Wo) product into the
    (N, F, Ho, Wo) output in a further pass; backward makes the same trips
    the other way. This class does the same arithmetic chunk by chunk of the
    batch (``chunk_bytes`` of columns, about the CPU's L2 cache), in the
    images' own order, so that the columns, the product and the bias stay in
    cache, and its products are per image, writing (N, F, Ho, Wo) directly::

        forward, for each chunk of images n:
            cols[n, g] = im2col(xpad[n], group g)          (K, P)   K = C/G kh kw, P = Ho Wo
            out[n, g]  = W_g @ cols[n, g] + b_g            (F/G, P): out[n] in its own layout
        backward, for each chunk:
            dW_g += sum_n dout[n, g] @ cols[n, g]^T         (F/G, K)
            db   += sum_n,p dout[n, :, p]
            dcols[n, g] = W_g^T @ dout[n, g]   (written over cols[n]; it is spent)
            dx[n] = col2im(dcols[n])                         (adds kh kw shifted windows)

    The chunks' partial dW and db are added in chunk order (the same bits
    every run). With several tinyalex threads (fast/cpu.py) the chunks run
    in parallel, each product on one BLAS thread; inside a replica of
    fast/replicas.py (one thread) they run one after the other.

    Kept between forward and backward: ``x`` (the input) and ``cols_valid``
    (whether the ``cols`` workspace (N, G, K, P) still holds im2col(x): a
    backward writes dcols over it, so a second backward rebuilds it).
    """

    chunk_bytes = 1 << 20       # columns per chunk: about one L2 cache (measured: 0.5 to 4 MB within 5%)
    max_channels = 3            # conv2d_class: for layers with at most this many input channels per group

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspaces = Workspaces()
        self.x = None
        self.cols_valid = False

    _geometry = FastConv2D._geometry
    _backward_start = FastConv2D._backward_start

    def _chunks(self, x, work):
        """work(lo, hi) over chunks of the batch of about chunk_bytes of columns; one BLAS thread each if threaded."""
        xp = get_array_module(x)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        per_image = C * kh * kw * Ho * Wo * x.dtype.itemsize
        with one_blas_thread(xp):
            in_chunks(N, work, xp, item_bytes=per_image, chunk_bytes=self.chunk_bytes)

    def _fill_cols(self, x, lo, hi):
        """cols[lo:hi] = im2col of images lo..hi (padding them first into the xpad workspace)."""
        xp = get_array_module(x)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        if ph or pw:
            xpad = self.workspaces["xpad"]
            xp.copyto(xpad[lo:hi, :, ph:ph + H, pw:pw + W], x[lo:hi])
        else:
            xpad = x
        sN, sC, sH, sW = xpad.strides
        view = xp.lib.stride_tricks.as_strided(
            xpad[lo:hi], shape=(hi - lo, C, kh, kw, Ho, Wo), strides=(sN, sC, sH, sW, sH * sh, sW * sw))
        cols = self.workspaces["cols"][lo:hi]
        xp.copyto(cols.reshape(hi - lo, C, kh, kw, Ho, Wo), view)
        return cols

    def _workspaces(self, x):
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        if ph or pw:
            self.workspaces.get("xpad", (N, C, H + 2 * ph, W + 2 * pw), x.dtype, x, zero=True)
        return self.workspaces.get("cols", (N, G, (C // G) * kh * kw, Ho * Wo), x.dtype, x)

    def forward(self, x):
        """Per chunk: im2col, out[n, g] = W_g @ cols[n, g] (in out's own layout), + b."""
        check_input(self, x, 4, self.in_channels)
        N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G = self._geometry(x.shape)
        xp = get_array_module(x)
        Wg = self.params["W"].reshape(G, F // G, -1)
        b = self.params["b"].reshape(1, G, F // G, 1)
        self._workspaces(x)
        out = xp.empty((N, G, F // G, Ho * Wo), dtype=x.dtype)

        def work(lo, hi):
            cols = self._fill_cols(x, lo, hi)
            xp.matmul(Wg, cols, out=out[lo:hi])          # (G, F/G, K) @ (n, G, K, P) -> (n, G, F/G, P)
            out[lo:hi] += b

        self._chunks(x, work)
        self.x, self.cols_valid = x, True
        return out.reshape(N, F, Ho, Wo)

    def backward(self, dout):
        """Per chunk: dW, db partial sums; dcols = W^T dout over the spent columns; col2im into dx."""
        x, (N, C, H, W, F, Ho, Wo, kh, kw, sh, sw, ph, pw, G) = self._backward_start(dout)
        xp = get_array_module(dout)
        Wt = self.params["W"]
        K = (C // G) * kh * kw
        WgT = Wt.reshape(G, F // G, K).transpose(0, 2, 1)
        d4 = dout.reshape(N, G, F // G, Ho * Wo)
        refill = not self.cols_valid
        self._workspaces(x)
        Hp, Wp = H + 2 * ph, W + 2 * pw
        dx = xp.empty((N, C, H, W), dtype=dout.dtype) if self.compute_input_grad else None
        dxpad = (self.workspaces.get("dxpad", (N, C, Hp, Wp), dout.dtype, dout)
                 if self.compute_input_grad and (ph or pw) else dx)
        partial = {}                                      # lo -> (dW, db) of the chunk starting at lo

        def work(lo, hi):
            cols = self._fill_cols(x, lo, hi) if refill else self.workspaces["cols"][lo:hi]
            d = d4[lo:hi]
            dW = xp.matmul(d, cols.transpose(0, 1, 3, 2)).sum(axis=0)     # (G, F/G, K)
            partial[lo] = dW, d.sum(axis=(0, 3))
            if dx is None:
                return
            xp.matmul(WgT, d, out=cols)                   # dcols (n, G, K, P), over the spent columns
            c6 = cols.reshape(hi - lo, C, kh, kw, Ho, Wo)
            dp = dxpad[lo:hi]
            dp[...] = 0
            for i in range(kh):
                for j in range(kw):
                    # entries (n, c, i, j, y, x) go to xpad[n, c, y*sh + i, x*sw + j]
                    dp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += c6[:, :, i, j]
            if dxpad is not dx:
                xp.copyto(dx[lo:hi], dp[:, :, ph:ph + H, pw:pw + W])

        self._chunks(x, work)
        self.cols_valid = dx is None                       # dcols went over the columns
        gW = grad_buffer(self, "W", Wt.shape, Wt.dtype, dout)
        gb = grad_buffer(self, "b", (F,), Wt.dtype, dout)
        firsts = sorted(partial)
        dW_sum, db_sum = partial[firsts[0]]
        for lo in firsts[1:]:                             # in chunk order: the same sums every run
            dW_sum += partial[lo][0]                      # (the first chunk's sums are fresh arrays)
            db_sum += partial[lo][1]
        xp.copyto(gW, dW_sum.reshape(Wt.shape))
        xp.copyto(gb, db_sum.reshape(F))
        return dx


# Changing a batch-innermost (C, H, W, N) buffer back to (N, C, H, W) is done
# this many bytes at a time (measured: 27 ms in one piece, 8 to 10 ms in
# chunks of a few channels, for conv2's 32x256x27x27 output).
_TRANSPOSE_CHUNK = 1 << 20


class WinogradConv2D(Conv2D):
    r"""Conv2D by Winograd's minimal filtering F(m x m, r x r): the same numbers with fewer multiplications.

    Lavin & Gray (2015). The math, the transform matrices and how the
    backward transposes every step are in tinyalex/fast/winograd.py. Per
    m x m output tile and (filter, channel) pair, the products cost
    (m + r - 1)^2 multiply-adds instead of im2col's m^2 r^2: 4x fewer for
    F(4x4, 3x3), 6.25x for F(4x4, 5x5), less what the ragged last tiles waste.
    The price: tile transforms (which cost more than they save when a layer
    has few input channels, see :func:`conv2d_class`) and float32 round-off
    about 1e-5 of the largest output (im2col: 6e-7); float64 agrees with
    im2col to round-off. Measurements and their scripts: docs/layers.md
    ("Winograd convolution").

    Only stride 1 and square r x r kernels (any padding, map size, groups).
    ``tile`` fixes the output tile m; by default (``tile=None``) each forward
    takes the candidate of ``tiles[r]`` (3x3: 4 or 5; 5x5: 4; other sizes:
    2) that needs the fewest products for the output map (:meth:`tile_for`):
    F(5x5, 3x3) on AlexNet's 13x13 maps and alexnet-small's 15x15 conv2
    (9 tiles of 49 points against 16 of 36), F(4x4, 3x3) on 7x7 maps.

    Workspaces (tiles, transformed input and filters, products, dU, padded buffers) are kept
    in ``self.workspaces`` and reused; the transform matrices in
    ``self.constants``, cast once per dtype and device. Kept between forward
    and backward: ``x`` (the input), ``U`` (the transformed filters),
    ``geometry`` (the tiling) and ``V_valid`` (whether the ``V`` workspace
    still holds the transformed input: a backward writes dV over it, so a
    second backward rebuilds it).
    """

    # kernel size r -> the output tiles m that F(m x m, r x r) may use: a = m + r - 1 <= 8 points per axis
    # keep float32 round-off about 1e-5 (F(7x7, 3x3), a = 9: 3e-4, too much; docs/performance.md)
    tiles = {3: (4, 5), 5: (4,)}
    min_channels = 4        # conv2d_class: Winograd only with at least this many input channels per group
    # tile transforms, columns per chunk (measured: 128 KB to 1 MB within 20%; AlexNet's whole arrays 2.9x slower)
    chunk_bytes = 1 << 20

    def __init__(self, *args, tile=None, **kwargs):
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        if self.stride != (1, 1) or kh != kw:
            raise ValueError(f"WinogradConv2D needs stride 1 and a square kernel, got stride={self.stride}, "
                             f"kernel_size={self.kernel_size}; use FastConv2D")
        self.tile = None if tile is None else int(tile)
        if self.tile is not None and self.tile < 1:
            raise ValueError(f"WinogradConv2D: tile must be >= 1, got {tile}")
        self.workspaces = Workspaces()
        self.constants = {}
        self.x, self.U, self.geometry, self.V_valid = None, None, None, False

    def extra_repr(self):
        return f"{super().extra_repr()}, tile={self.tile or 'auto'}"

    def tile_for(self, Ho, Wo):
        """The output tile m for an (Ho, Wo) output: ``tile`` if fixed, else the candidate with the fewest products.

        Products per (filter, channel) pair: ceil(Ho/m) ceil(Wo/m) (m + r - 1)^2
        (whole tiles, the ragged last ones included); ties go to the smaller m.
        Measured (one thread, CPU time, 2026-12-01): F(5x5, 3x3) took 5 to 20%
        off the forward+backward of alexnet-small's conv2 and AlexNet's conv3
        to conv5; on 7x7 maps F(4x4, 3x3) needs 144 products against 196.
        """
        if self.tile is not None:
            return self.tile
        r = self.kernel_size[0]
        return min(self.tiles.get(r, (2,)), key=lambda m: (-(-Ho // m) * -(-Wo // m) * (m + r - 1) ** 2, m))

    def _transforms(self, like, m):
        """The 1-D transforms of fast/winograd.py in ``like``'s dtype, on its device (cast and copied once).

        A dict: ``BT`` (a, a), ``G`` (a, r), ``AT`` (m, a) for the forward and
        their transposes ``B``, ``GT``, ``A`` (contiguous) for the backward.
        """
        key = (m, str(like.dtype), get_array_module(like).__name__, device_of(like))
        if key not in self.constants:
            AT, G, BT = winograd_matrices(m, self.kernel_size[0])
            host = dict(BT=BT, G=G, AT=AT, B=BT.T.copy(), GT=G.T.copy(), A=AT.T.copy())
            self.constants.clear()
            self.constants[key] = {k: to_device_of(v.astype(like.dtype), like) for k, v in host.items()}
        return self.constants[key]

    def _transform(self, T, X, out, like):
        """out = T X T^T per tile (fast/winograd.py ``transform_tiles``), on chunks of columns that fit in cache."""
        xp, a = get_array_module(like), T.shape[1]
        in_chunks(X.size // (a * a), lambda lo, hi: transform_tiles(xp, T, X, out, lo, hi), xp,
                  item_bytes=a * a * X.itemsize, chunk_bytes=self.chunk_bytes)
        return out

    def _geometry(self, x_shape):
        """Shapes: tiles th x tw of m x m outputs; input tiles a x a read from a padded input (Hp, Wp)."""
        N, C, H, W = x_shape
        F, Ho, Wo = self.output_shape((C, H, W))
        m, r = self.tile_for(Ho, Wo), self.kernel_size[0]
        p_h, p_w = self.padding
        a = m + r - 1
        th, tw = -(-Ho // m), -(-Wo // m)
        Hp, Wp = th * m + r - 1, tw * m + r - 1          # >= H + 2p: the extra rows/columns are zeros
        return dict(N=N, C=C, H=H, W=W, F=F, Ho=Ho, Wo=Wo, r=r, m=m, ph=p_h, pw=p_w, a=a, th=th, tw=tw,
                    Hp=Hp, Wp=Wp, T=N * th * tw, G=self.groups)

    def _gather_tiles(self, x, g):
        """D (a*a, C, T): D[(i, j), c, (ty, tx, n)] = xpad[n, c, ty*m + i, tx*m + j].

        The padded input is kept batch-innermost, xpadT (C, Hp, Wp, N): then the
        tiles are one copy from a strided view whose innermost axis (the batch)
        is contiguous. (With the usual (N, C, H, W) layout the innermost axis
        would be the tw tiles of a row, stride m: 4 to 7 times slower.)
        """
        xp = get_array_module(x)
        m = g["m"]
        N, C, H, W, a, th, tw = g["N"], g["C"], g["H"], g["W"], g["a"], g["th"], g["tw"]
        ph, pw = g["ph"], g["pw"]
        xpadT = self.workspaces.get("xpadT", (C, g["Hp"], g["Wp"], N), x.dtype, x, zero=True)
        # the interior gets x; the border (padding and ragged-edge extension) stays zero
        xT = x.transpose(1, 2, 3, 0)
        in_chunks(C, lambda lo, hi: xp.copyto(xpadT[lo:hi, ph:ph + H, pw:pw + W], xT[lo:hi]), xp)
        sC, sH, sW, sN = xpadT.strides
        view = xp.lib.stride_tricks.as_strided(
            xpadT, shape=(a, a, C, th, tw, N), strides=(sH, sW, sC, sH * m, sW * m, sN))
        D = self.workspaces.get("D", (a * a, C, g["T"]), x.dtype, x)
        D6 = D.reshape(a, a, C, th, tw, N)
        in_chunks(C, lambda lo, hi: xp.copyto(D6[:, :, lo:hi], view[:, :, lo:hi]), xp)
        return D

    def _transform_input(self, x, g, BT):
        """V = B^T d B for every channel and tile, into the V workspace (B^T along rows, then columns)."""
        a, C, T = g["a"], g["C"], g["T"]
        D = self._gather_tiles(x, g)
        V = self.workspaces.get("V", (a * a, C, T), x.dtype, x)
        self._transform(BT, D, V, x)
        self.V_valid = True
        return V

    def forward(self, x):
        """Winograd F(m x m, r x r): transform tiles and filters, a*a batched products, transform back."""
        check_input(self, x, 4, self.in_channels)
        Wt, b = self.params["W"], self.params["b"]
        xp = get_array_module(x, Wt)
        g = self._geometry(x.shape)
        C, F, G, a, T, r, m = g["C"], g["F"], g["G"], g["a"], g["T"], g["r"], g["m"]
        K = self._transforms(x, m)
        V = self._transform_input(x, g, K["BT"])
        # U = G g G^T for every filter: g laid out (r, r, F*Cg) first
        Cg = C // G
        U = self.workspaces.get("U", (a * a, F * Cg), x.dtype, x)             # (a^2, F*Cg), columns (f, c)
        self._transform(K["G"], Wt.reshape(F * Cg, r * r).T.copy(), U, x)
        # M[xi] = U[xi] @ V[xi], batched over the a^2 points and the groups
        Ub = U.reshape(a * a * G, F // G, Cg)
        Vb = V.reshape(a * a * G, Cg, T)
        Mw = self.workspaces.get("M", (a * a, F, T), x.dtype, x)
        # one batched matmul (one BLAS call per point and group, each on all BLAS threads): on an idle
        # machine faster than splitting the points over tinyalex's threads (docs/layers.md)
        xp.matmul(Ub, Vb, out=Mw.reshape(a * a * G, F // G, T))
        # Y = A^T M A per tile
        Y = self.workspaces.get("Y", (m * m, F, T), x.dtype, x)
        self._transform(K["AT"], Mw, Y, x)
        out = self._scatter_output(Y, g, b, xp)
        self.x, self.U, self.geometry = x, U, g
        return out

    def _scatter_output(self, Y, g, b, xp):
        """out[n, f, ty*m + p, tx*m + q] = Y[(p, q), f, (ty, tx, n)] + b[f], cropped to (Ho, Wo).

        Two copies: m*m strided writes into a batch-innermost (F, th*m, tw*m, N)
        buffer (contiguous innermost axis), then one layout change to (N, F, Ho,
        Wo) that adds the bias on the way.
        """
        m = g["m"]
        N, F, Ho, Wo, th, tw = g["N"], g["F"], g["Ho"], g["Wo"], g["th"], g["tw"]
        outT = self.workspaces.get("outT", (F, th * m, tw * m, N), Y.dtype, Y)
        Y6 = Y.reshape(m, m, F, th, tw, N)

        def tiles_to_map(lo, hi):               # filters lo..hi
            for p in range(m):
                for q in range(m):
                    xp.copyto(outT[lo:hi, p::m, q::m], Y6[p, q, lo:hi])

        in_chunks(F, tiles_to_map, xp)
        out = xp.empty((N, F, Ho, Wo), dtype=Y.dtype)
        src, bcol = outT[:, :Ho, :Wo].transpose(3, 0, 1, 2), b.reshape(1, F, 1, 1)
        # a few filters at a time, so that what one chunk reads and writes stays in cache (3-4x faster)
        in_chunks(F, lambda lo, hi: xp.add(src[:, lo:hi], bcol[:, lo:hi], out=out[:, lo:hi]), xp,
                  item_bytes=N * Ho * Wo * Y.itemsize, chunk_bytes=_TRANSPOSE_CHUNK)
        return out

    def backward(self, dout):
        """dM = A dY A^T; dU = dM V^T -> dW; dV = U^T dM -> dx. Exact gradients (every step transposed)."""
        need_cache(self, "x")
        g, U = self.geometry, self.U
        m = g["m"]
        N, C, H, W, F, Ho, Wo, G, a, T, r = (g[k] for k in ("N", "C", "H", "W", "F", "Ho", "Wo", "G", "a", "T", "r"))
        th, tw = g["th"], g["tw"]
        check_dout(self, dout, (N, F, Ho, Wo))
        xp = get_array_module(dout)
        Wt = self.params["W"]
        Cg = C // G
        K = self._transforms(dout, m)
        # a second backward after one forward: dV was written over V, rebuild it
        V = self.workspaces["V"] if self.V_valid else self._transform_input(self.x, g, K["BT"])
        # dY per output tile, zero beyond (Ho, Wo): the transpose of the cropping scatter
        doutT = self.workspaces.get("outT", (F, th * m, tw * m, N), dout.dtype, dout)
        if th * m != Ho or tw * m != Wo:
            doutT[:, Ho:] = 0
            doutT[:, :, Wo:] = 0
        dsrc = dout.transpose(1, 2, 3, 0)
        in_chunks(F, lambda lo, hi: xp.copyto(doutT[lo:hi, :Ho, :Wo], dsrc[lo:hi]), xp)
        dY = self.workspaces.get("Y", (m * m, F, T), dout.dtype, dout)
        dY6 = dY.reshape(m, m, F, th, tw, N)

        def map_to_tiles(lo, hi):                # filters lo..hi
            for p in range(m):
                for q in range(m):
                    xp.copyto(dY6[p, q, lo:hi], doutT[lo:hi, p::m, q::m])

        in_chunks(F, map_to_tiles, xp)
        # dM = A dY A^T per tile
        dM = self.workspaces.get("M", (a * a, F, T), dout.dtype, dout)
        self._transform(K["A"], dY, dM, dout)
        dMb = dM.reshape(a * a * G, F // G, T)
        # dW: dU[xi] = dM[xi] @ V[xi]^T, then dg = G^T dU G per tile
        dU = self.workspaces.get("dU", (a * a * G, F // G, Cg), dout.dtype, dout)
        xp.matmul(dMb, V.reshape(a * a * G, Cg, T).transpose(0, 2, 1), out=dU)
        dg = self._transform(K["GT"], dU, self.workspaces.get("dg", (r * r, F * Cg), dout.dtype, dout), dout)
        dW = grad_buffer(self, "W", Wt.shape, Wt.dtype, dout)
        xp.copyto(dW.reshape(F * Cg, r * r), dg.T)
        db = grad_buffer(self, "b", (F,), Wt.dtype, dout)
        xp.sum(dout, axis=(0, 2, 3), out=db)
        if not self.compute_input_grad:
            return None
        # dx: dV[xi] = U[xi]^T @ dM[xi], written over V (spent once dU is known)
        Ub = U.reshape(a * a * G, F // G, Cg)
        xp.matmul(Ub.transpose(0, 2, 1), dMb, out=V.reshape(a * a * G, Cg, T))
        self.V_valid = False
        # dd = B dV B^T per tile, into the tile workspace D
        dD = self.workspaces.get("D", (a * a, C, T), dout.dtype, dout)
        self._transform(K["B"], V, dD, dout)
        dD6 = dD.reshape(a, a, C, th, tw, N)
        # scatter-add the overlapping tiles into the batch-innermost padded buffer, then crop
        dxT = self.workspaces.get("dxT", (C, g["Hp"], g["Wp"], N), dout.dtype, dout)

        def tiles_to_input(lo, hi):              # channels lo..hi
            dxT[lo:hi] = 0
            for i in range(a):
                for j in range(a):
                    dxT[lo:hi, i:i + m * th:m, j:j + m * tw:m] += dD6[i, j, lo:hi]

        in_chunks(C, tiles_to_input, xp)
        ph, pw = g["ph"], g["pw"]
        dx = xp.empty((N, C, H, W), dtype=dout.dtype)
        dxv = dxT[:, ph:ph + H, pw:pw + W].transpose(3, 0, 1, 2)
        in_chunks(C, lambda lo, hi: xp.copyto(dx[:, lo:hi], dxv[:, lo:hi]), xp,
                  item_bytes=N * H * W * dout.itemsize, chunk_bytes=_TRANSPOSE_CHUNK)
        return dx


def conv2d_class(in_channels, groups, kernel_size, stride):
    """The fast class for a Conv2D of this shape: WinogradConv2D, ChunkedConv2D or FastConv2D.

    * WinogradConv2D when the stride is 1, the kernel is a square r x r with r
      in ``WinogradConv2D.tiles`` (3x3: F(4x4, 3x3) or F(5x5, 3x3) by map
      size, 5x5: F(4x4, 5x5)) and there are at least
      ``WinogradConv2D.min_channels`` (4) input channels per group;
    * else ChunkedConv2D when there are at most ``ChunkedConv2D.max_channels``
      (3) input channels per group: the first layer, reading the images;
    * else FastConv2D (im2col over the whole batch).

    Why: Winograd does 4x (3x3) to 6.25x (5x5) fewer multiplications, but its
    tile transforms cost more than that saves when a layer has very few
    input channels (first layers, 1 or 3 channels: 1.7 to 9x slower than
    ChunkedConv2D). Since its transforms are two small products per axis
    (2026-12-01) it was faster than im2col from 4 channels per group up on
    every stride-1 3x3 and 5x5 shape of the registered models measured
    (forward+backward 1.3 to 2.7x faster; alexnet-small's conv2, 16 per
    group, 9.5 -> 6.6 ms), and 1.4 to 2x on AlexNet's conv2 to conv5;
    float32 error about 1e-5 of the largest output (im2col: 6e-7). The
    measurements and their scripts are in docs/layers.md ("Winograd
    convolution") and docs/performance.md. ChunkedConv2D's in-cache chunks
    took 17 to 60% off the forward and backward of the first layers of
    alexnet-small, alexnet-cifar, ZFNet and VGG (a tie on AlexNet's 11x11 / 4 conv1), but its per-chunk
    col2im made the backward of layers with 16 or more channels slower
    (docs/performance.md). Arguments a Conv2D would refuse give FastConv2D,
    whose constructor then names the problem.
    """
    try:
        (kh, kw), stride = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    except ValueError:
        return FastConv2D
    if not (isinstance(groups, numbers.Integral) and isinstance(in_channels, numbers.Integral) and groups >= 1):
        return FastConv2D
    if (stride == (1, 1) and kh == kw and kh in WinogradConv2D.tiles
            and in_channels // groups >= WinogradConv2D.min_channels):
        return WinogradConv2D
    if 1 <= in_channels // groups <= ChunkedConv2D.max_channels:
        return ChunkedConv2D
    return FastConv2D
