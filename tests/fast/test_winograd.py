"""Winograd's transform matrices (tinyalex/fast/winograd.py) reproduce direct correlation.

WinogradConv2D itself is tested against the reference Conv2D in tests/fast/test_conv.py.
"""
import numpy as np
import pytest

from tinyalex.fast.winograd import correlate_1d, interpolation_points, kron, kron_transforms, winograd_matrices

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


def test_kron_is_numpys_kronecker_product(rng):
    P, Q = rng.standard_normal((2, 3)), rng.standard_normal((4, 5))
    np.testing.assert_array_equal(kron(P, Q), np.kron(P, Q))


@pytest.mark.parametrize("m,r", [(4, 3), (4, 5), (2, 3)])
def test_2d_transforms_reproduce_direct_2d_correlation_on_one_tile(m, r, rng):
    """vec(Y) = KA @ ((KG @ vec(g)) * (KB @ vec(d))) is the m x m correlation of an a x a tile with g."""
    a = m + r - 1
    g, d = rng.standard_normal((r, r)), rng.standard_normal((a, a))
    KB, KG, KA = kron_transforms(m, r)
    Y = (KA @ ((KG @ g.reshape(-1)) * (KB @ d.reshape(-1)))).reshape(m, m)
    direct = np.array([[np.sum(g * d[i:i + r, j:j + r]) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(Y, direct, rtol=1e-12, atol=1e-12)
