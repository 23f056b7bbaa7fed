"""FastLRN (tinyalex/fast/lrn.py) computes what the reference LRN computes.

Same output and input gradient as the reference LRN for window sizes odd
and even (the shifted-add path up to 9, the reference's cumulative sums
above), both conventions, several beta, in float64 and float32, on NumPy and
the device stand-in; float64 gradient checks; float32 within float32
round-off of the exact (float64) answer at the paper's constants.
"""
import numpy as np
import pytest

from placement import put
from tinyalex.fast import FastLRN
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import LRN

from .pairs import assert_same, twins

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,convention,beta", [(5, "paper", 0.75), (5, "caffe", 0.75), (4, "paper", 0.75),
                                                  (3, "paper", 0.5), (5, "paper", 0.6), (11, "paper", 0.75)])
def test_fast_lrn_equals_reference(size, convention, beta, dtype, place, rng):
    # a large alpha makes the normalization (and any error in it) matter
    fast, ref = twins(FastLRN, LRN, size=size, alpha=0.5, beta=beta, k=2.0, convention=convention, dtype=dtype)
    assert_same(fast, ref, rng.standard_normal((2, 7, 3, 4)).astype(dtype), rng, place)


@pytest.mark.parametrize("convention", ["paper", "caffe"])
@pytest.mark.parametrize("C", [3, 5, 8], ids=["C<n", "C==n", "C>n"])
@pytest.mark.parametrize("size", [1, 2, 5, 6, 10])
def test_fast_lrn_equals_reference_for_every_channel_count_and_window(convention, C, size, rng):
    """The edges: fewer channels than the window, as many, more; windows of 1, even, odd, above 9."""
    fast, ref = twins(FastLRN, LRN, size=size, alpha=0.5, convention=convention, dtype=np.float64)
    assert_same(fast, ref, rng.standard_normal((2, C, 3, 4)) * 2, rng)


@pytest.mark.parametrize("convention", ["paper", "caffe"])
@pytest.mark.parametrize("size,alpha", [(5, 1e-4), (5, 0.5), (4, 0.5), (11, 0.5)])
def test_fast_lrn_gradients_match_numerical(convention, size, alpha, place, rng):
    layer = FastLRN(size, alpha=alpha, convention=convention, dtype=np.float64)
    (x,) = put(place, layer, (rng.standard_normal((2, 7, 2, 3)) * 2,))
    assert gradcheck(layer, x).passed(1e-6)


def test_fast_lrn_float32_with_paper_constants_stays_within_float32_round_off(rng):
    x = np.abs(rng.standard_normal((2, 16, 5, 5))).astype(np.float32) * 30
    fast = FastLRN(dtype=np.float32).forward(x)
    want = LRN(dtype=np.float64).forward(x.astype(np.float64))
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, want, rtol=3e-7 * 4, atol=0)


def test_fast_lrn_second_backward_after_one_forward_gives_the_same_gradient(rng):
    layer = FastLRN(alpha=0.5, dtype=np.float64)
    layer.forward(rng.standard_normal((2, 7, 3, 3)))
    dout = rng.standard_normal((2, 7, 3, 3))
    np.testing.assert_array_equal(layer.backward(dout), layer.backward(dout))


def test_fast_lrn_paper_beta_stays_within_float32_round_off_over_a_wide_range_of_s(rng):
    """beta = 0.75 takes s^(1/4) / s (two square roots, a division) instead of a power: from s = k to about 1e6."""
    x = (rng.random((2, 8, 6, 6)) * 10.0 ** rng.integers(-3, 3, (2, 8, 6, 6))).astype(np.float32)
    fast = FastLRN(alpha=1.0, beta=0.75, k=2.0, dtype=np.float32)
    ref = LRN(alpha=1.0, beta=0.75, k=2.0, dtype=np.float64)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(fast.forward(x), ref.forward(x.astype(np.float64)), rtol=2e-6, atol=0)
    np.testing.assert_allclose(fast.backward(dout.astype(np.float32)), ref.backward(dout), rtol=1e-4, atol=1e-6)
