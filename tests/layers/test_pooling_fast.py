"""The fast max pool (separable maximum over sub-grids, bincount backward) matches the plain one.

The plain ``MaxPool2D`` (impl "reference") is the specification: the fast
path must give the same output, pick the same winner in every window (the
first maximum in row-major order, also on ties), and send the same
gradients, for overlapping and non-overlapping windows, odd and even sizes,
strides larger than the kernel, float32 and float64, split into chunks over
threads or not, and on the device stand-in.
"""
import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.layers import MaxPool2D
from tinyalex.layers import fast as F

DTYPES = [np.float32, np.float64]
# (kernel, stride, input shape): AlexNet's 3/2 with odd and even sizes, 2/2, 3/1, stride > kernel, 1x1, rectangles
CASES = [(3, 2, (2, 3, 9, 9)), (3, 2, (2, 2, 8, 10)), (3, 2, (1, 2, 3, 3)), (2, 2, (2, 3, 6, 7)),
         (3, 1, (1, 3, 6, 5)), (2, 3, (2, 2, 8, 9)), (1, 2, (1, 2, 5, 5)), ((3, 2), (2, 1), (2, 2, 7, 6))]


def fast_and_reference(k, s, x, dout):
    """(out, dx, winners) of the fast and of the plain MaxPool2D, as host arrays."""
    results = []
    for impl in ("fast", "reference"):
        layer = MaxPool2D(k, s, dtype=x.dtype)
        layer.impl = impl
        out = layer.forward(x)
        winners = layer._fast_idx if impl == "fast" else layer.argmax
        dx = layer.backward(dout)
        results.append((B.to_host(out), B.to_host(dx), B.to_host(winners).astype(np.int64)))
    return results


def check_same(k, s, x, dout, dtype):
    (out, dx, won), (out_ref, dx_ref, won_ref) = fast_and_reference(k, s, x, dout)
    np.testing.assert_array_equal(out, out_ref)                 # a maximum is exact
    np.testing.assert_array_equal(won, won_ref)                 # the same winner in every window
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, dx_ref, **tol)
    assert out.dtype == dx.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,shape", CASES)
def test_fast_maxpool_matches_reference_on_random_inputs(k, s, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(MaxPool2D(k, s).output_shape(shape[1:])).astype(dtype)
    check_same(k, s, x, np.broadcast_to(dout, (shape[0],) + dout.shape).copy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,shape", CASES)
def test_fast_maxpool_sends_ties_to_the_first_maximum_in_row_major_order(k, s, shape, dtype, rng):
    x = rng.integers(0, 3, shape).astype(dtype)                 # most windows hold a tie
    out_shape = (shape[0],) + MaxPool2D(k, s).output_shape(shape[1:])
    check_same(k, s, x, rng.standard_normal(out_shape).astype(dtype), dtype)


def test_fast_maxpool_on_a_constant_input_sends_every_gradient_to_the_window_corner():
    x = np.zeros((1, 1, 7, 7), np.float32)
    layer = MaxPool2D(3, 2)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    want = np.zeros_like(x)
    want[0, 0, 0:5:2, 0:5:2] = 1                                # the top-left pixel of each 3x3/2 window
    np.testing.assert_array_equal(dx, want)


def test_fast_maxpool_sums_the_gradients_of_every_window_a_pixel_wins():
    x = np.zeros((1, 1, 5, 5), np.float64)
    x[0, 0, 2, 2] = 1.0                                         # inside all nine 3x3/1 windows
    layer = MaxPool2D(3, 1, dtype=np.float64)
    layer.forward(x)
    dout = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    dx = layer.backward(dout)
    assert dx[0, 0, 2, 2] == dout.sum()
    assert np.count_nonzero(dx) == 1


def test_fast_maxpool_reads_a_non_contiguous_input(rng):
    x = rng.standard_normal((3, 2, 9, 9)).transpose(1, 0, 3, 2)  # (2, 3, 9, 9), not C-contiguous
    dout = rng.standard_normal((2, 3, 4, 4))
    check_same(3, 2, x, dout, np.float64)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_fast_maxpool_gives_the_same_result_split_into_chunks_of_single_planes(threads, rng, monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", threads)
    monkeypatch.setattr(F, "_POOL_CHUNK_BYTES", 1)               # one (n, c) plane per chunk
    x = rng.integers(0, 4, (3, 5, 11, 11)).astype(np.float32)
    dout = rng.standard_normal((3, 5, 5, 5)).astype(np.float32)
    check_same(3, 2, x, dout, np.float32)


def test_fast_maxpool_backward_twice_after_one_forward_gives_the_same_gradient(rng):
    layer = MaxPool2D(3, 2)
    out = layer.forward(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dout), layer.backward(dout))


@pytest.mark.parametrize("k,s,shape", [CASES[0], CASES[3], CASES[4], CASES[5]])
def test_fast_maxpool_runs_on_the_device_standin_and_matches_the_host(k, s, shape, rng):
    x_host = rng.integers(0, 3, shape).astype(np.float32)
    dout_host = rng.standard_normal((shape[0],) + MaxPool2D(k, s).output_shape(shape[1:])).astype(np.float32)
    (want_out, want_dx, _), _ = fast_and_reference(k, s, x_host, dout_host)
    with B.use_backend("standin", 1):
        layer = MaxPool2D(k, s).to(1)
        out = layer.forward(B.asarray(x_host))
        dx = layer.backward(B.asarray(dout_host))
        assert B.device_of(out) == 1 and B.device_of(dx) == 1
        np.testing.assert_array_equal(B.to_host(out), want_out)
        np.testing.assert_array_equal(B.to_host(dx), want_dx)
