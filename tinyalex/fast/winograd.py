r"""Winograd convolution: the same Conv2D, with fewer multiplications.

Lavin & Gray (2015), "Fast Algorithms for Convolutional Neural Networks".
Only for stride 1 and square kernels (r x r); any padding, any map size,
groups. This file holds the math and the transform matrices;
:class:`~tinyalex.fast.conv.WinogradConv2D` (tinyalex/fast/conv.py) runs it,
and :func:`~tinyalex.fast.conv.conv2d_class` says for which layers. Read the
plain im2col ``Conv2D.forward`` (tinyalex/layers/conv.py) first, it is the
specification.

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

The transforms are matrix products too, one per axis of the tile:
:math:`B^T d B` for all channels and tiles at once is B^T applied to the
tiles' rows, then to their columns (:func:`transform_tiles`): 2a
multiply-adds per tile entry. (The Kronecker form
:math:`\mathrm{vec}(B^T d B) = (B^T \otimes B^T) \mathrm{vec}(d)`, one
(a^2 x a^2) @ (a^2 x C T) product, costs a^2; tinyalex used it until
2026-12-01, and the two products took 40 to 60% less time on the small
nets' and AlexNet's layers: docs/performance.md.)

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
float32 round-off larger than im2col's; tests/fast/test_conv.py and
docs/layers.md give the measured error. float64 agrees with im2col to
round-off.

The constant matrices are built here on the host in float64;
``WinogradConv2D`` casts them once to the data's dtype and copies them to its
device explicitly (``to_device_of``). Only ``xp`` functions touch data.
"""
from __future__ import annotations

from fractions import Fraction

from ..backend import to_host

__all__ = ["interpolation_points", "winograd_matrices", "correlate_1d", "transform_tiles"]


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


def transform_tiles(xp, T, X, out, lo=0, hi=None):
    """out = T X T^T for the tiles in columns lo..hi: X (a, a, L) -> out (b, b, L), for a (b, a) matrix T.

    X and out may be shaped (a*a, ...) and (b*b, ...): tile point (i, j) is
    row i*a + j, the L columns are every channel (or filter) and tile. Two
    products: T along the tiles' rows, ``tmp[j, i', l] = sum_i T[i', i]
    X[i, j, l]``, then along their columns, ``out[i', j', l] = sum_j T[j', j]
    tmp[j, i', l]`` (each batched over the other axis). A few columns at a
    time keep ``tmp`` in cache (WinogradConv2D runs it on chunks of about
    1 MB). The forward uses it with B^T (V), G (U) and A^T (Y); the backward
    with their transposes. Returns out.
    """
    b, a = T.shape
    X3, out3 = X.reshape(a, a, -1), out.reshape(b, b, -1)
    tmp = xp.matmul(T, X3[:, :, lo:hi].transpose(1, 0, 2))                  # (a, b, n)
    xp.matmul(T, tmp.transpose(1, 0, 2), out=out3[:, :, lo:hi])               # (b, b, n)
    return out
