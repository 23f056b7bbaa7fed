"""Winograd's transform matrices (tinyalex/fast/winograd.py) reproduce direct correlation.

WinogradConv2D itself is tested against the reference Conv2D in tests/fast/test_conv.py.
"""
import numpy as np
import pytest

from tinyalex.fast.winograd import correlate_1d, interpolation_points, transform_tiles, winograd_matrices

TILES = [(2, 3), (4, 3), (6, 3), (2, 5), (4, 5), (3, 2), (4, 1)]


@pytest.mark.parametrize("m,r", TILES, ids=lambda v: str(v))
def test_transform_matrices_reproduce_direct_1d_correlation(m, r, rng):
    g = rng.standard_normal(r)
    d = rng.standard_normal(m + r - 1)
    direct = np.array([np.dot(g, d[i:i + r]) for i in range(m)])
    np.testing.assert_allclose(correlate_1d(g, d, m), direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m,r", TILES, ids=lambda v: str(v))
def test_transform_matrices_have_the_documented_shapes(m, r):
    AT, G, BT = winograd_matrices(m, r)
    a = m + r - 1
    assert AT.shape == (m, a) and G.shape == (a, r) and BT.shape == (a, a)
    assert AT.dtype == G.dtype == BT.dtype == np.float64


def test_f2_3_matrices_are_lavin_and_grays_up_to_the_sign_of_the_infinity_point():
    AT, G, BT = winograd_matrices(2, 3)
    # Lavin & Gray print A^T[1, 3] = -1 and B^T[3] = (0, 1, 0, -1): both signs flipped, same algorithm
    np.testing.assert_array_equal(AT, [[1, 1, 1, 0], [0, 1, -1, 1]])
    np.testing.assert_array_equal(G, [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    np.testing.assert_array_equal(BT, [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]])


def test_interpolation_points_are_small_and_distinct():
    pts = interpolation_points(7)
    assert [float(p) for p in pts] == [0, 1, -1, 2, -2, 0.5, -0.5]


def test_bad_tile_sizes_are_refused():
    with pytest.raises(ValueError, match="m >= 1 and r >= 1"):
        winograd_matrices(0, 3)


def _transform(T, X):
    b, a = T.shape
    L = X.size // (a * a)
    return transform_tiles(np, T, X, np.empty((b * b, L)))


@pytest.mark.parametrize("b,a", [(6, 6), (4, 6), (6, 4), (6, 3), (3, 6)])
def test_transform_tiles_is_the_kronecker_product_on_every_column(b, a, rng):
    """Rows then columns equal one (T (x) T) @ vec(tile) product, vec row by row, for every column l."""
    T, X = rng.standard_normal((b, a)), rng.standard_normal((a * a, 7))
    np.testing.assert_allclose(_transform(T, X), np.kron(T, T) @ X, rtol=1e-12, atol=1e-12)


def test_transform_tiles_on_column_chunks_equals_the_whole(rng):
    T, X = rng.standard_normal((4, 6)), rng.standard_normal((36, 7))
    out = np.empty((16, 7))
    for lo, hi in [(0, 3), (3, 4), (4, 7)]:
        transform_tiles(np, T, X, out, lo, hi)
    np.testing.assert_allclose(out, _transform(T, X), rtol=1e-13, atol=1e-13)    # BLAS may order the 6-term sums per width


@pytest.mark.parametrize("m,r", [(4, 3), (4, 5), (2, 3)])
def test_2d_transforms_reproduce_direct_2d_correlation_on_one_tile(m, r, rng):
    """Y = A^T [(G g G^T) * (B^T d B)] A is the m x m correlation of an a x a tile with g."""
    a = m + r - 1
    g, d = rng.standard_normal((r, r)), rng.standard_normal((a, a))
    AT, G, BT = winograd_matrices(m, r)
    Y = _transform(AT, _transform(G, g.reshape(-1, 1)) * _transform(BT, d.reshape(-1, 1))).reshape(m, m)
    direct = np.array([[np.sum(g * d[i:i + r, j:j + r]) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(Y, direct, rtol=1e-12, atol=1e-12)
