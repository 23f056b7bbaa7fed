"""FastMaxPool2D (separable maximum over sub-grids, bincount backward) matches the reference MaxPool2D.

The reference ``MaxPool2D`` is the specification: the fast class must give
the same output, pick the same winner in every window (the first maximum in
row-major order, also on ties), and send the same gradients, for overlapping
and non-overlapping windows, odd and even sizes, strides larger than the
kernel, float32 and float64, split into chunks over threads or not, and on
the device stand-in. Windows over 255 pixels (its uint8 offsets) get the
reference class from implementations().
"""
import numpy as np
import pytest

from layers.test_pooling import CONFIGS, IDS
from placement import put
from tinyalex import backend as B
from tinyalex.fast import FastMaxPool2D, implementations
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import MaxPool2D

from .pairs import run

DTYPES = [np.float32, np.float64]
# (kernel, stride, input shape): AlexNet's 3/2 with odd and even sizes, 2/2, 3/1, stride > kernel, 1x1, rectangles
CASES = [(3, 2, (2, 3, 9, 9)), (3, 2, (2, 2, 8, 10)), (3, 2, (1, 2, 3, 3)), (2, 2, (2, 3, 6, 7)),
         (3, 1, (1, 3, 6, 5)), (2, 3, (2, 2, 8, 9)), (1, 2, (1, 2, 5, 5)), ((3, 2), (2, 1), (2, 2, 7, 6)),
         (3, 3, (1, 1, 3, 3))]
CASES += [(k, s, (2, 3, 7, 8)) for k, s in CONFIGS]      # the reference tests' configurations


def fast_and_reference(k, s, x, dout, place=("numpy", None)):
    """(out, dx, winners) of FastMaxPool2D and of the reference MaxPool2D, as host arrays."""
    results = []
    for cls in (FastMaxPool2D, MaxPool2D):
        layer = cls(k, s, dtype=x.dtype)
        out, dx, _ = run(layer, x, dout, place)
        results.append((out, dx, B.to_host(layer.argmax).astype(np.int64)))
    return results


def check_same(k, s, x, dout, place=("numpy", None)):
    (out, dx, won), (out_ref, dx_ref, won_ref) = fast_and_reference(k, s, x, dout, place)
    np.testing.assert_array_equal(out, out_ref)                 # a maximum is exact
    np.testing.assert_array_equal(won, won_ref)                 # the same winner in every window
    tol = dict(rtol=1e-6, atol=1e-6) if x.dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, dx_ref, **tol)
    assert out.dtype == dx.dtype == x.dtype


def random_dout(rng, k, s, shape, dtype):
    return rng.standard_normal((shape[0],) + MaxPool2D(k, s).output_shape(shape[1:])).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,shape", CASES)
def test_fast_maxpool_matches_reference_on_random_inputs(k, s, shape, dtype, place, rng):
    x = rng.standard_normal(shape).astype(dtype)
    check_same(k, s, x, random_dout(rng, k, s, shape, dtype), place)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,shape", CASES)
def test_fast_maxpool_sends_ties_to_the_first_maximum_in_row_major_order(k, s, shape, dtype, place, rng):
    x = rng.integers(0, 3, shape).astype(dtype)                 # most windows hold a tie
    check_same(k, s, x, random_dout(rng, k, s, shape, dtype), place)


@pytest.mark.parametrize("k, s", CONFIGS, ids=IDS)
def test_fast_maxpool_gradients_match_numerical_without_ties(k, s, place, rng):
    x = rng.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) * 0.1     # values 0.1 apart: no ties
    layer = FastMaxPool2D(k, s, dtype=np.float64)
    (x,) = put(place, layer, (x,))
    assert gradcheck(layer, x).passed(1e-6)


def test_fast_maxpool_on_a_constant_input_sends_every_gradient_to_the_window_corner():
    x = np.zeros((1, 1, 7, 7), np.float32)
    layer = FastMaxPool2D(3, 2)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    want = np.zeros_like(x)
    want[0, 0, 0:5:2, 0:5:2] = 1                                # the top-left pixel of each 3x3/2 window
    np.testing.assert_array_equal(dx, want)


def test_fast_maxpool_sums_the_gradients_of_every_window_a_pixel_wins():
    x = np.zeros((1, 1, 5, 5), np.float64)
    x[0, 0, 2, 2] = 1.0                                         # inside all nine 3x3/1 windows
    layer = FastMaxPool2D(3, 1, dtype=np.float64)
    layer.forward(x)
    dout = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    dx = layer.backward(dout)
    assert dx[0, 0, 2, 2] == dout.sum()
    assert np.count_nonzero(dx) == 1


def test_fast_maxpool_reads_a_non_contiguous_input(rng):
    x = rng.standard_normal((3, 2, 9, 9)).transpose(1, 0, 3, 2)  # (2, 3, 9, 9), not C-contiguous
    dout = rng.standard_normal((2, 3, 4, 4))
    check_same(3, 2, x, dout)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_fast_maxpool_gives_the_same_result_split_into_chunks_of_single_planes(threads, rng, monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", threads)
    monkeypatch.setattr(FastMaxPool2D, "chunk_bytes", 1)         # one (n, c) plane per chunk
    x = rng.integers(0, 4, (3, 5, 11, 11)).astype(np.float32)
    dout = rng.standard_normal((3, 5, 5, 5)).astype(np.float32)
    check_same(3, 2, x, dout)


def test_fast_maxpool_backward_twice_after_one_forward_gives_the_same_gradient(rng):
    layer = FastMaxPool2D(3, 2)
    out = layer.forward(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dout), layer.backward(dout))


def test_fast_maxpool_refuses_windows_over_255_pixels_naming_the_reference():
    with pytest.raises(ValueError, match=r"at most 255 pixels, got 16x16; use the reference MaxPool2D"):
        FastMaxPool2D(16, 16)


@pytest.mark.parametrize("k,cls", [(15, FastMaxPool2D), ((15, 17), FastMaxPool2D), (16, MaxPool2D),
                                   ((1, 256), MaxPool2D)])
def test_implementations_give_the_reference_pool_for_windows_over_255_pixels(k, cls, rng):
    layer = implementations(fast=True).MaxPool2D(k, 1, dtype=np.float64)
    assert type(layer) is cls
    x = rng.standard_normal((1, 2, 17, 257))
    out = layer.forward(x)
    np.testing.assert_array_equal(out, MaxPool2D(k, 1, dtype=np.float64).forward(x))
