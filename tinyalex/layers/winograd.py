r"""Winograd convolution: the same Conv2D, with fewer multiplications.

Lavin & Gray (2015), "Fast Algorithms for Convolutional Neural Networks".
Only for stride 1 and square kernels (r x r); any padding, any map size,
groups. :class:`~tinyalex.layers.Conv2D` runs it when ``algorithm`` is
``"winograd"``, or ``"auto"`` picks it (see ``Conv2D``); read the plain
im2col ``Conv2D.forward`` first, it is the specification.

1-D: F(m, r)
------------
Correlate a length-r filter g with a length-a input d, a = m + r - 1, to
get m outputs, :math:`y_i = \sum_k g_k d_{i+k}`. Directly that is m r
multiplications; the minimal algorithm needs a:

.. math::
    y = A^T \left[ (G g) \odot (B^T d) \right]

A (a x m), G (a x r), B (a x a) are constant matrices. Where they come from
(Cook-Toom / Toom-Cook): pick a - 1 distinct points :math:`p_i` (0, 1, -1,
2, -2, 1/2, -1/2, ...) and the point at infinity. ``E_k`` (a x k) evaluates a
polynomial with k coefficients at these points (row i: :math:`1, p_i,
p_i^2, ...`; the infinity row picks the leading coefficient). The *linear
convolution* s = g * h (a coefficients) is found by evaluating both factors
at the a points, multiplying pointwise and interpolating:
:math:`s = E_a^{-1} [(E_r g) \odot (E_m h)]`. Correlation is the transpose
of convolution (with respect to h), so

.. math::
    y = E_m^T \left[ (E_r g) \odot (E_a^{-T} d) \right],\quad
    A = E_m,\; G = E_r,\; B^T = E_a^{-T}.

Row i of G may be divided by any :math:`f_i \ne 0` if row i of
:math:`B^T` is multiplied by it; with :math:`f_i = \prod_{j \ne i} (p_i -
p_j)` (the Lagrange denominators) :math:`B^T` has integer entries for
integer points. :func:`winograd_matrices` builds all three for any F(m, r)
(F(2,3), F(4,3), F(2,5), F(6,3), ...), in float64.

2-D: F(m x m, r x r)
--------------------
Nest the 1-D algorithm along rows and columns: an a x a input tile d and an
r x r filter g give an m x m output tile

.. math::
    Y = A^T \left[ (G g G^T) \odot (B^T d B) \right] A.

With :math:`U = G g G^T` and :math:`V = B^T d B` (a x a each), the sum over
input channels c moves inside, because everything is linear:
:math:`Y_f = A^T [\sum_c U_{f,c} \odot V_c] A`. For each of the a*a tile
points :math:`\xi` this sum is a matrix product,

.. math::
    M[\xi] = U[\xi] \, V[\xi], \quad
    U[\xi]: (F, C),\; V[\xi]: (C, T),\; M[\xi]: (F, T),

over all T = N * tiles tiles at once: a*a products of size F x C x T instead
of im2col's one product of size F x (C r^2) x (N Ho Wo). Per m x m output
tile that is a^2 multiply-adds per (filter, channel) pair instead of
m^2 r^2: for F(4, 3) 36 against 144, 4x fewer (2.25x for F(2, 3), 6.25x
for F(4, 5): 64 against 400), less what the ragged last tiles waste. With
groups, U and V are split per group and the products are batched over
(point, group).

The transforms are written as matrix products too: vectorising the tile
row by row, :math:`\mathrm{vec}(B^T d B) = (B^T \otimes B^T) \mathrm{vec}(d)`,
so V for all channels and tiles is one (a^2 x a^2) @ (a^2 x C T) product
(and likewise U with :math:`G \otimes G`, Y with :math:`A^T \otimes A^T`).
This costs a^2 multiply-adds per tile entry where the separable form
(B^T, then B) costs 2a, but it is one matrix product at BLAS speed: for
conv4's V, 13 ms against 10 ms for the separable form as two products, a
small price for one line of code.

Tiling, padding, ragged edges
-----------------------------
The output (Ho, Wo) = (H + 2p - r + 1, W + 2p - r + 1) is cut into
th x tw tiles of m x m, th = ceil(Ho / m). Output tile (ty, tx) needs input
rows ty*m .. ty*m + a - 1 of the padded input: neighbouring input tiles
overlap by r - 1. The input is padded by p on the top/left and by p plus
whatever the last tile needs on the bottom/right (zeros, so the outputs
beyond Ho x Wo are computed but thrown away). The tiles are gathered by
one copy from a strided view (as im2col does with receptive fields).

Backward: transpose every linear step
-------------------------------------
The forward is a chain of linear maps, so the exact gradients are the same
chain transposed, in reverse, all in the Winograd domain (dY is the
upstream gradient per output tile, zero outside Ho x Wo):

* :math:`dM = A\, dY A^T` per tile (one product with
  :math:`(A^T \otimes A^T)^T`).
* dW: :math:`dU[\xi] = dM[\xi] V[\xi]^T` (V kept from forward), then
  :math:`dg = G^T dU G`.
* dx: :math:`dV[\xi] = U[\xi]^T dM[\xi]`, :math:`dd = B\, dV B^T` per tile,
  and every tile's a x a gradient is added back where it was read from:
  a*a shifted strided adds (tile stride m), overlaps add up, then the
  padding is cropped (the transpose of gather-with-padding).
* db: the sum of dout over n, y, x, as in im2col.

Accuracy: the transforms' entries (up to 8 for F(4, 3), 1/4 in G) make
float32 round-off larger than im2col's; tests/layers/test_winograd.py and
docs/layers.md give the measured error. float64 agrees with im2col to
round-off.

Only ``xp`` functions touch data (NumPy, CuPy, the stand-in); the constant
matrices are built on the host in float64, cast once to the data's dtype and
copied to its device explicitly (``to_device_of``).
"""
from __future__ import annotations

from fractions import Fraction

import numpy

from ..backend import device_of, get_array_module, to_device_of, to_host
from .base import check_dout, check_input, need_cache
from .fast import _into_grad, _workspace, in_chunks


# --------------------------------------------------------------------------
# The transform matrices
# --------------------------------------------------------------------------
def interpolation_points(count):
    """The first ``count`` finite Cook-Toom points: 0, 1, -1, 2, -2, 1/2, -1/2, 3, -3, 1/3, -1/3, ...

    Small magnitudes and their reciprocals keep the transforms' entries (and
    so the round-off) small.
    """
    pts = [Fraction(0)]
    k = 1
    while len(pts) < count:
        pts += [Fraction(k), Fraction(-k)]
        if k > 1:
            pts += [Fraction(1, k), Fraction(-1, k)]
        k += 1
    return pts[:count]


def _evaluation_matrix(points, k):
    """E (len(points)+1, k): row i = 1, p_i, ..., p_i^(k-1); last row (infinity) = 0, ..., 0, 1. Exact."""
    rows = [[p ** j for j in range(k)] for p in points]
    rows.append([Fraction(0)] * (k - 1) + [Fraction(1)])
    return rows


def _inverse(rows):
    """Exact inverse of a square matrix of Fractions (Gauss-Jordan)."""
    n = len(rows)
    aug = [list(r) + [Fraction(int(i == j)) for j in range(n)] for i, r in enumerate(rows)]
    for col in range(n):
        piv = next(i for i in range(col, n) if aug[i][col] != 0)
        aug[col], aug[piv] = aug[piv], aug[col]
        p = aug[col][col]
        aug[col] = [v / p for v in aug[col]]
        for i in range(n):
            if i != col and aug[i][col] != 0:
                f = aug[i][col]
                aug[i] = [a - f * b for a, b in zip(aug[i], aug[col])]
    return [r[n:] for r in aug]


def winograd_matrices(m, r):
    """The F(m, r) transforms (AT, G, BT), float64, with y = AT @ ((G @ g) * (BT @ d)).

    AT (m, a), G (a, r), BT (a, a), a = m + r - 1, from the a - 1 points of
    :func:`interpolation_points` and infinity (derivation in the module
    docstring). Computed exactly with fractions, then converted.
    """
    if m < 1 or r < 1:
        raise ValueError(f"winograd_matrices: need m >= 1 and r >= 1, got F({m}, {r})")
    a = m + r - 1
    pts = interpolation_points(a - 1)
    E_m, E_r, E_a = (_evaluation_matrix(pts, k) for k in (m, r, a))
    E_a_inv = _inverse(E_a)
    # |Lagrange denominators| f_i: scale G's rows down and B^T's rows up by them
    f = [Fraction(1)] * a
    for i, p in enumerate(pts):
        for j, q in enumerate(pts):
            if j != i:
                f[i] *= abs(p - q)
    AT = [[E_m[i][j] for i in range(a)] for j in range(m)]                   # E_m^T
    G = [[E_r[i][j] / f[i] for j in range(r)] for i in range(a)]              # diag(1/f) E_r
    BT = [[E_a_inv[j][i] * f[i] for j in range(a)] for i in range(a)]         # diag(f) E_a^-T
    # host float64 arrays (the backend's explicit host path)
    return tuple(to_host([[float(v) for v in row] for row in M]) for M in (AT, G, BT))


def correlate_1d(g, d, m):
    """F(m, r) on one tile: the m outputs y_i = sum_k g_k d_(i+k), by the Winograd transforms (float64)."""
    AT, G, BT = winograd_matrices(m, len(g))
    return AT @ ((G @ to_host(g).astype("float64")) * (BT @ to_host(d).astype("float64")))


def _kron(P, Q):
    """The Kronecker product P (x) Q of two host matrices: (P (x) Q)[(i, k), (j, l)] = P[i, j] Q[k, l]."""
    return (P[:, None, :, None] * Q[None, :, None, :]).reshape(P.shape[0] * Q.shape[0], P.shape[1] * Q.shape[1])


def _constants(layer, m, r, like):
    """The 2-D transforms as Kronecker products, in ``like``'s dtype and on its device (cached on the layer).

    KB = B^T (x) B^T (a^2, a^2): vec(V) = KB @ vec(d);  KG = G (x) G (a^2, r^2): vec(U) = KG @ vec(g);
    KA = A^T (x) A^T (m^2, a^2): vec(Y) = KA @ vec(M). vec() is row by row (C order).
    """
    key = (m, r, str(like.dtype), get_array_module(like).__name__, device_of(like))
    cache = layer.__dict__.setdefault("_winograd_constants", {})
    if key not in cache:
        AT, G, BT = winograd_matrices(m, r)
        host = [_kron(M, M).astype(like.dtype) for M in (BT, G, AT)]   # cast once
        cache.clear()
        cache[key] = tuple(to_device_of(M, like) for M in host)
    return cache[key]


# --------------------------------------------------------------------------
# Forward and backward
# --------------------------------------------------------------------------
# Changing a batch-innermost (C, H, W, N) buffer back to (N, C, H, W) is done
# this many bytes at a time (measured: 27 ms in one piece, 8 to 10 ms in
# chunks of a few channels, for conv2's 32x256x27x27 output).
_TRANSPOSE_CHUNK = 1 << 20


def _geometry(layer, x_shape, m):
    """Shapes: tiles th x tw of m x m outputs; input tiles a x a read from a padded input (Hp, Wp)."""
    N, C, H, W = x_shape
    F, Ho, Wo = layer.output_shape((C, H, W))
    r = layer.kernel_size[0]
    p_h, p_w = layer.padding
    a = m + r - 1
    th, tw = -(-Ho // m), -(-Wo // m)
    Hp, Wp = th * m + r - 1, tw * m + r - 1          # >= H + 2p: the extra rows/columns are zeros
    return dict(N=N, C=C, H=H, W=W, F=F, Ho=Ho, Wo=Wo, r=r, ph=p_h, pw=p_w, a=a, th=th, tw=tw,
                Hp=Hp, Wp=Wp, T=N * th * tw, G=layer.groups)


def _gather_tiles(layer, x, g, m):
    """D (a*a, C, T): D[(i, j), c, (ty, tx, n)] = xpad[n, c, ty*m + i, tx*m + j].

    The padded input is kept batch-innermost, xpadT (C, Hp, Wp, N): then the
    tiles are one copy from a strided view whose innermost axis (the batch)
    is contiguous. (With the usual (N, C, H, W) layout the innermost axis
    would be the tw tiles of a row, stride m: 4 to 7 times slower.)
    """
    xp = get_array_module(x)
    N, C, H, W, a, th, tw = g["N"], g["C"], g["H"], g["W"], g["a"], g["th"], g["tw"]
    ph, pw = g["ph"], g["pw"]
    xpadT = _workspace(layer, "wino_xpadT", (C, g["Hp"], g["Wp"], N), x.dtype, x, zero=True)
    # the interior gets x; the border (padding and ragged-edge extension) stays zero
    xT = x.transpose(1, 2, 3, 0)
    in_chunks(C, lambda lo, hi: xp.copyto(xpadT[lo:hi, ph:ph + H, pw:pw + W], xT[lo:hi]), xp)
    sC, sH, sW, sN = xpadT.strides
    view = xp.lib.stride_tricks.as_strided(
        xpadT, shape=(a, a, C, th, tw, N), strides=(sH, sW, sC, sH * m, sW * m, sN))
    D = _workspace(layer, "wino_D", (a * a, C, g["T"]), x.dtype, x)
    D6 = D.reshape(a, a, C, th, tw, N)
    in_chunks(C, lambda lo, hi: xp.copyto(D6[:, :, lo:hi], view[:, :, lo:hi]), xp)
    return D


def conv2d_forward(layer, x, m):
    """Conv2D.forward by Winograd F(m x m, r x r). Keeps V and U for backward."""
    check_input(layer, x, 4, layer.in_channels)
    Wt, b = layer.params["W"], layer.params["b"]
    xp = get_array_module(x, Wt)
    g = _geometry(layer, x.shape, m)
    C, F, G, a, T, r = g["C"], g["F"], g["G"], g["a"], g["T"], g["r"]
    KB, KG, KA = _constants(layer, m, r, x)
    # V = B^T d B for every channel and tile: one (a^2, a^2) @ (a^2, C*T) product
    D = _gather_tiles(layer, x, g, m)
    V = _workspace(layer, "wino_V", (a * a, C, T), x.dtype, x)
    xp.matmul(KB, D.reshape(a * a, C * T), out=V.reshape(a * a, C * T))
    # U = G g G^T for every filter: (a^2, r^2) @ (r^2, F*Cg)
    Cg = C // G
    U = xp.matmul(KG, Wt.reshape(F * Cg, r * r).T)                       # (a^2, F*Cg), columns (f, c)
    # M[xi] = U[xi] @ V[xi], batched over the a^2 points and the groups
    Ub = U.reshape(a * a * G, F // G, Cg)
    Vb = V.reshape(a * a * G, Cg, T)
    Mw = _workspace(layer, "wino_M", (a * a, F, T), x.dtype, x)
    # one batched matmul (one BLAS call per point and group, each on all BLAS threads): on an idle
    # machine faster than splitting the points over tinyalex's threads (docs/layers.md)
    xp.matmul(Ub, Vb, out=Mw.reshape(a * a * G, F // G, T))
    # Y = A^T M A per tile: (m^2, a^2) @ (a^2, F*T)
    Y = _workspace(layer, "wino_Y", (m * m, F, T), x.dtype, x)
    xp.matmul(KA, Mw.reshape(a * a, F * T), out=Y.reshape(m * m, F * T))
    out = _scatter_output(layer, Y, g, m, b, xp)
    layer.cols = None                       # the im2col caches: not used by this path
    layer._fast_x = None
    layer._winograd = dict(m=m, x=x, U=U, geometry=g, V_spent=False)
    layer.x_shape = x.shape
    return out


def _scatter_output(layer, Y, g, m, b, xp):
    """out[n, f, ty*m + p, tx*m + q] = Y[(p, q), f, (ty, tx, n)] + b[f], cropped to (Ho, Wo).

    Two copies: m*m strided writes into a batch-innermost (F, th*m, tw*m, N)
    buffer (contiguous innermost axis), then one layout change to (N, F, Ho,
    Wo) that adds the bias on the way.
    """
    N, F, Ho, Wo, th, tw = g["N"], g["F"], g["Ho"], g["Wo"], g["th"], g["tw"]
    outT = _workspace(layer, "wino_outT", (F, th * m, tw * m, N), Y.dtype, Y)
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


def conv2d_backward(layer, dout):
    """Conv2D.backward by Winograd: dM = A dY A^T; dU = dM V^T -> dW; dV = U^T dM -> dx. Exact gradients."""
    need_cache(layer, "_winograd")
    st = layer._winograd
    m, g, U = st["m"], st["geometry"], st["U"]
    N, C, H, W, F, Ho, Wo, G, a, T, r = (g[k] for k in ("N", "C", "H", "W", "F", "Ho", "Wo", "G", "a", "T", "r"))
    th, tw = g["th"], g["tw"]
    check_dout(layer, dout, (N, F, Ho, Wo))
    xp = get_array_module(dout)
    Wt = layer.params["W"]
    Cg = C // G
    KB, KG, KA = _constants(layer, m, r, dout)
    V = layer._workspaces["wino_V"]
    if st["V_spent"]:                       # a second backward after one forward: rebuild V
        D = _gather_tiles(layer, st["x"], g, m)
        xp.matmul(KB, D.reshape(a * a, C * T), out=V.reshape(a * a, C * T))
    # dY per output tile, zero beyond (Ho, Wo): the transpose of the cropping scatter
    doutT = _workspace(layer, "wino_outT", (F, th * m, tw * m, N), dout.dtype, dout)
    if th * m != Ho or tw * m != Wo:
        doutT[:, Ho:] = 0
        doutT[:, :, Wo:] = 0
    dsrc = dout.transpose(1, 2, 3, 0)
    in_chunks(F, lambda lo, hi: xp.copyto(doutT[lo:hi, :Ho, :Wo], dsrc[lo:hi]), xp)
    dY = _workspace(layer, "wino_Y", (m * m, F, T), dout.dtype, dout)
    dY6 = dY.reshape(m, m, F, th, tw, N)

    def map_to_tiles(lo, hi):                # filters lo..hi
        for p in range(m):
            for q in range(m):
                xp.copyto(dY6[p, q, lo:hi], doutT[lo:hi, p::m, q::m])

    in_chunks(F, map_to_tiles, xp)
    # dM = (A^T (x) A^T)^T dY
    dM = _workspace(layer, "wino_M", (a * a, F, T), dout.dtype, dout)
    xp.matmul(KA.T, dY.reshape(m * m, F * T), out=dM.reshape(a * a, F * T))
    dMb = dM.reshape(a * a * G, F // G, T)
    # dW: dU[xi] = dM[xi] @ V[xi]^T, then dg = (G (x) G)^T dU
    dU = xp.empty((a * a * G, F // G, Cg), dtype=dout.dtype)
    xp.matmul(dMb, V.reshape(a * a * G, Cg, T).transpose(0, 2, 1), out=dU)
    dg = xp.matmul(KG.T, dU.reshape(a * a, F * Cg))                           # (r^2, F*Cg)
    dW = _into_grad(layer, "W", Wt.shape, Wt.dtype, dout)
    xp.copyto(dW.reshape(F * Cg, r * r), dg.T)
    db = _into_grad(layer, "b", (F,), Wt.dtype, dout)
    xp.sum(dout, axis=(0, 2, 3), out=db)
    if not getattr(layer, "compute_input_grad", True):
        return None
    # dx: dV[xi] = U[xi]^T @ dM[xi], written over V (spent once dU is known)
    Ub = U.reshape(a * a * G, F // G, Cg)
    xp.matmul(Ub.transpose(0, 2, 1), dMb, out=V.reshape(a * a * G, Cg, T))
    st["V_spent"] = True
    # dd = (B^T (x) B^T)^T dV per tile, into the tile workspace D
    dD = _workspace(layer, "wino_D", (a * a, C, T), dout.dtype, dout)
    xp.matmul(KB.T, V.reshape(a * a, C * T), out=dD.reshape(a * a, C * T))
    dD6 = dD.reshape(a, a, C, th, tw, N)
    # scatter-add the overlapping tiles into the batch-innermost padded buffer, then crop
    dxT = _workspace(layer, "wino_dxT", (C, g["Hp"], g["Wp"], N), dout.dtype, dout)

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
