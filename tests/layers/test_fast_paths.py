"""The fast paths (tinyalex/layers/fast.py) compute what the plain versions compute.

Every layer with ``impl = "fast"`` is run against the same layer with
``impl = "reference"``: same parameters, same input, same upstream gradient;
forward outputs, input gradients and parameter gradients must agree, in
float64 (to round-off) and float32, over several shapes and options.
"""
import copy

import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.layers import LRN, Conv2D, Linear, MaxPool2D, ReLU
from tinyalex.layers.fast import use_impl

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


def run(layer, x, dout, impl):
    """forward, backward with one impl; returns out, dx, {param: grad} as host copies."""
    layer = copy.deepcopy(layer)
    layer.impl = impl
    out = layer.forward(x)
    dx = layer.backward(dout)
    grads = {k: B.to_host(v).copy() for k, v in layer.grads.items()}
    return B.to_host(out).copy(), (None if dx is None else B.to_host(dx).copy()), grads


def assert_same(layer, x, rng, dtype):
    out = copy.deepcopy(layer).forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ref = run(layer, x, dout, "reference")
    fast = run(layer, x, dout, "fast")
    tol = TOL[dtype]
    np.testing.assert_allclose(fast[0], ref[0], **tol, err_msg="forward")
    if ref[1] is None:
        assert fast[1] is None
    else:
        np.testing.assert_allclose(fast[1], ref[1], **tol, err_msg="dx")
    assert fast[2].keys() == ref[2].keys()
    for k in ref[2]:
        np.testing.assert_allclose(fast[2][k], ref[2][k], **tol, err_msg=f"grad {k}")


DTYPES = [np.float64, np.float32]

CONV_CASES = [
    # (C, F, k, stride, pad, groups, N, H, W)
    (3, 8, 11, 4, 0, 1, 2, 27, 27),      # conv1-like
    (4, 6, 5, 1, 2, 2, 2, 7, 7),         # conv2-like, grouped
    (6, 9, 3, 1, 1, 3, 3, 5, 5),         # three groups
    (2, 4, (3, 2), (2, 1), (1, 0), 1, 2, 6, 5),  # rectangular kernel, stride, padding
    (5, 5, 1, 1, 0, 1, 1, 4, 4),         # 1x1
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_conv_fast_equals_reference(case, dtype, rng):
    C, F, k, s, p, g, N, H, W = case
    layer = Conv2D(C, F, k, stride=s, padding=p, groups=g, bias_init=0.3, rng=rng, dtype=dtype)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    assert_same(layer, x, rng, dtype)


def test_conv_fast_without_input_grad_returns_none_and_same_weight_grads(rng):
    layer = Conv2D(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    layer.compute_input_grad = False
    x = rng.standard_normal((2, 3, 6, 6))
    assert_same(layer, x, rng, np.float64)


def test_conv_fast_second_backward_after_one_forward_gives_the_same_gradients(rng):
    layer = Conv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4, 5, 5))
    dout = rng.standard_normal((2, 6, 5, 5))
    layer.forward(x)
    dx1 = layer.backward(dout).copy()
    dW1 = layer.grads["W"].copy()
    dx2 = layer.backward(dout)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dW1, rtol=1e-12)


def test_conv_fast_reuses_its_workspace_across_calls_and_survives_a_batch_size_change(rng):
    layer = Conv2D(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    ref = copy.deepcopy(layer)
    ref.impl = "reference"
    for n in (2, 2, 3, 2):
        x = rng.standard_normal((n, 3, 6, 6))
        np.testing.assert_allclose(layer.forward(x), ref.forward(x), rtol=1e-12)


def test_conv_fast_does_not_modify_input_or_dout(rng):
    layer = Conv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4, 5, 5))
    dout = rng.standard_normal((2, 6, 5, 5))
    x0, d0 = x.copy(), dout.copy()
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, d0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,convention,beta", [(5, "paper", 0.75), (5, "caffe", 0.75), (4, "paper", 0.75),
                                                  (3, "paper", 0.5), (5, "paper", 0.6), (11, "paper", 0.75)])
def test_lrn_fast_equals_reference(size, convention, beta, dtype, rng):
    # a large alpha makes the normalization (and any error in it) matter
    layer = LRN(size=size, alpha=0.5, beta=beta, k=2.0, convention=convention, dtype=dtype)
    x = rng.standard_normal((2, 7, 3, 4)).astype(dtype)
    assert_same(layer, x, rng, dtype)


def test_lrn_fast_float32_with_paper_constants_stays_within_float32_round_off(rng):
    layer = LRN(dtype=np.float32)
    x = np.abs(rng.standard_normal((2, 16, 5, 5))).astype(np.float32) * 30
    fast = layer.forward(x)
    exact = LRN(dtype=np.float64)
    exact.impl = "reference"
    want = exact.forward(x.astype(np.float64))
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, want, rtol=3e-7 * 4, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,shape", [(3, 2, (2, 3, 9, 9)), (3, 2, (2, 2, 8, 10)), (2, 2, (1, 3, 6, 6)),
                                       ((3, 2), (1, 2), (2, 2, 7, 7)), (3, 3, (1, 1, 3, 3))])
def test_maxpool_fast_equals_reference(k, s, shape, dtype, rng):
    layer = MaxPool2D(k, s, dtype=dtype)
    x = rng.standard_normal(shape).astype(dtype)
    assert_same(layer, x, rng, dtype)


def test_maxpool_fast_sends_ties_to_the_first_maximum_like_reference(rng):
    layer = MaxPool2D(3, 2, dtype=np.float64)
    x = rng.integers(0, 3, (2, 3, 9, 9)).astype(np.float64)   # many ties
    assert_same(layer, x, rng, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_fast_equals_reference_including_zeros(dtype, rng):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    x[0, 0, :3] = 0
    assert_same(ReLU(dtype=dtype), x, rng, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_fast_equals_reference(dtype, rng):
    layer = Linear(7, 5, bias_init=0.5, rng=rng, dtype=dtype)
    x = rng.standard_normal((4, 7)).astype(dtype)
    assert_same(layer, x, rng, dtype)


def test_use_impl_switches_every_layer_and_restores_the_default(rng):
    layer = Conv2D(2, 3, 3, rng=rng, dtype=np.float64)
    with use_impl("reference"):
        layer.forward(rng.standard_normal((1, 2, 4, 4)))
        assert layer.cols is not None          # the plain version's cache
    assert Conv2D.impl == "fast"
    layer.forward(rng.standard_normal((1, 2, 4, 4)))
    assert layer.cols is None


def test_unknown_impl_raises_naming_the_choices(rng):
    layer = ReLU()
    layer.impl = "turbo"
    with pytest.raises(ValueError, match="fast.*reference"):
        layer.forward(np.zeros((1, 2), np.float32))


def test_fast_paths_run_under_the_device_standin_without_implicit_transfers(rng):
    layers = [Conv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64), LRN(dtype=np.float64),
              MaxPool2D(3, 2, dtype=np.float64), ReLU(dtype=np.float64)]
    x_host = rng.standard_normal((2, 4, 7, 7))
    with B.use_backend("standin", 1):
        for layer in layers:
            host = copy.deepcopy(layer)
            layer.to(1)
            x = B.asarray(x_host)
            out = layer.forward(x)
            assert B.device_of(out) == 1
            dout_host = rng.standard_normal(out.shape)
            dx = layer.backward(B.asarray(dout_host))
            assert B.device_of(dx) == 1
            with B.use_backend("numpy"):
                want_out = host.forward(x_host)
                want_dx = host.backward(dout_host)
            np.testing.assert_allclose(B.to_host(out), want_out, rtol=1e-12)
            np.testing.assert_allclose(B.to_host(dx), want_dx, rtol=1e-12)
            x_host = B.to_host(out) if out.ndim == 4 else x_host
