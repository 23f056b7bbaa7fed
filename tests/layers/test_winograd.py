"""Winograd convolution (tinyalex/layers/winograd.py) computes what im2col computes.

* The F(m, r) transforms reproduce direct 1-D correlation.
* Conv2D with ``algorithm = "winograd"`` agrees with the plain reference
  Conv2D (forward, dW, db, dx) for 3x3 and 5x5 kernels, groups 1 and 2,
  padding 0/1/2, odd and even, square and non-square maps, maps smaller
  than a tile; and its backward passes a float64 gradient check.
* ``algorithm = "auto"`` picks what ``Conv2D.winograd_tile`` documents; bad
  values and unsupported layers raise clear errors.

float32 tolerance: the transforms' entries (up to 5.25 in B^T, products of
up to 8 in the 2-D form) amplify round-off; measured with F(4, 3) and
F(4, 5) at AlexNet's channel counts the error is about 1e-5 of the largest
output (docs/layers.md), 20x im2col's. On the small shapes here it is below
1e-5 of the largest entry; ``atol = 1e-4 * max|ref|`` leaves a margin of 10
while still catching any wrong index (errors of order max|ref|).
"""
import copy

import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Conv2D
from tinyalex.layers.winograd import correlate_1d, interpolation_points, winograd_matrices

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


def _pair(layer, tile=None):
    """(winograd layer, reference layer) with the same parameters."""
    w = copy.deepcopy(layer)
    w.algorithm = "winograd"
    if tile is not None:
        w.winograd_tiles = {layer.kernel_size[0]: tile}
    ref = copy.deepcopy(layer)
    ref.impl = "reference"
    return w, ref


def _run(layer, x, dout):
    out = layer.forward(x)
    dx = layer.backward(dout)
    return out, dx, {k: v.copy() for k, v in layer.grads.items()}


def _assert_close(a, b, dtype, what):
    if dtype == np.float64:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11, err_msg=what)
    else:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * float(np.abs(b).max()), err_msg=what)


CASES = [
    # (C, F, k, pad, groups, N, H, W, tile)
    (4, 6, 3, 1, 1, 2, 8, 8, 4),       # even map, exact tiling
    (4, 6, 3, 1, 2, 2, 7, 7, 4),       # odd map (ragged last tile), groups 2
    (3, 4, 3, 0, 1, 2, 9, 6, 4),       # no padding, non-square map
    (4, 4, 3, 2, 2, 1, 5, 6, 4),       # padding 2 grows the map
    (2, 3, 3, 1, 1, 2, 3, 2, 4),       # map smaller than one tile
    (4, 6, 3, 1, 2, 2, 7, 7, 2),       # F(2, 3)
    (4, 6, 3, 1, 1, 2, 13, 13, 6),     # F(6, 3)
    (4, 6, 5, 2, 2, 2, 7, 7, 4),       # 5x5, groups 2 (conv2-like)
    (3, 4, 5, 0, 1, 2, 8, 9, 4),       # 5x5, no padding, non-square
    (4, 4, 5, 1, 1, 2, 6, 6, 2),       # F(2, 5), padding 1
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "C{}F{}k{}p{}g{}N{}H{}W{}m{}".format(*c))
def test_winograd_forward_and_backward_equal_the_reference(case, dtype, rng):
    C, F, k, p, g, N, H, W, m = case
    layer = Conv2D(C, F, k, padding=p, groups=g, bias_init=0.3, rng=rng, dtype=dtype)
    w, ref = _pair(layer, m)
    assert w.winograd_tile() == m
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dout = rng.standard_normal(ref.forward(x).shape).astype(dtype)
    out_w, dx_w, g_w = _run(w, x, dout)
    out_r, dx_r, g_r = _run(ref, x, dout)
    assert out_w.dtype == dx_w.dtype == g_w["W"].dtype == dtype
    _assert_close(out_w, out_r, dtype, "forward")
    _assert_close(dx_w, dx_r, dtype, "dx")
    _assert_close(g_w["W"], g_r["W"], dtype, "dW")
    _assert_close(g_w["b"], g_r["b"], dtype, "db")


@pytest.mark.parametrize("k,m,groups", [(3, 4, 2), (3, 2, 1), (5, 4, 1)])
def test_winograd_backward_passes_gradcheck_in_float64(k, m, groups, rng):
    layer = Conv2D(4, 4, k, padding=1, groups=groups, bias_init=0.1, rng=rng, dtype=np.float64)
    layer.algorithm, layer.winograd_tiles = "winograd", {k: m}
    x = rng.standard_normal((2, 4, 6, 5))
    res = gradcheck(layer, x)
    assert res.passed(1e-7), str(res)


def test_a_second_backward_after_one_forward_gives_the_same_gradients(rng):
    layer = Conv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    layer.algorithm = "winograd"
    x = rng.standard_normal((2, 4, 7, 7))
    dout = rng.standard_normal((2, 6, 7, 7))
    layer.forward(x)
    dx1, dW1 = layer.backward(dout).copy(), layer.grads["W"].copy()
    dx2, dW2 = layer.backward(dout), layer.grads["W"]
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dW2, dW1, rtol=1e-12, atol=1e-13)


def test_without_input_grad_backward_returns_none_and_still_gives_weight_grads(rng):
    layer = Conv2D(4, 6, 3, padding=1, rng=rng, dtype=np.float64)
    w, ref = _pair(layer)
    w.compute_input_grad = False
    x = rng.standard_normal((2, 4, 6, 6))
    dout = rng.standard_normal((2, 6, 6, 6))
    w.forward(x)
    assert w.backward(dout) is None
    ref.forward(x)
    ref.backward(dout)
    np.testing.assert_allclose(w.grads["W"], ref.grads["W"], rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(w.grads["b"], ref.grads["b"], rtol=1e-10, atol=1e-11)


def test_backward_follows_the_algorithm_of_the_last_forward(rng):
    layer = Conv2D(16, 8, 3, padding=1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 16, 5, 5))
    dout = rng.standard_normal((2, 8, 5, 5))
    ref = copy.deepcopy(layer)
    ref.impl = "reference"
    ref.forward(x)
    dx_ref = ref.backward(dout)
    layer.algorithm = "winograd"
    layer.forward(x)
    layer.algorithm = "im2col"              # changed between forward and backward: backward still Winograd
    np.testing.assert_allclose(layer.backward(dout), dx_ref, rtol=1e-10, atol=1e-11)
    layer.forward(x)                        # now im2col, then backward by im2col
    np.testing.assert_allclose(layer.backward(dout), dx_ref, rtol=1e-10, atol=1e-11)


def test_winograd_runs_on_standin_device_1_and_stays_there(rng):
    layer = Conv2D(4, 6, 3, padding=1, groups=2, bias_init=0.2, rng=rng, dtype=np.float32)
    w, ref = _pair(layer)
    x = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
    dout = rng.standard_normal((2, 6, 7, 7)).astype(np.float32)
    out_r, dx_r, g_r = _run(ref, x, dout)
    with B.use_backend("standin", 1), B.device(1):
        w.to(1, "standin")
        xd, dd = B.to_device(x, 1, "standin"), B.to_device(dout, 1, "standin")
        out = w.forward(xd)
        dx = w.backward(dd)
        for arr in (out, dx, w.grads["W"], w.grads["b"]):
            assert B.backend_of(arr) == "standin" and B.device_of(arr) == 1
        out, dx, dW = B.to_host(out), B.to_host(dx), B.to_host(w.grads["W"])
    _assert_close(out, out_r, np.float32, "forward")
    _assert_close(dx, dx_r, np.float32, "dx")
    _assert_close(dW, g_r["W"], np.float32, "dW")


def test_float32_error_at_alexnet_channel_counts_is_about_1e_5_of_the_output(rng):
    """conv4-like (192 channels per group, 13x13): F(4, 3) in float32 against float64."""
    layer = Conv2D(384, 8, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 384, 13, 13))
    exact = copy.deepcopy(layer).forward(x)
    w32 = Conv2D(384, 8, 3, padding=1, groups=2, dtype=np.float32)
    w32.params["W"][...] = layer.params["W"]
    w32.algorithm = "winograd"
    err = np.abs(w32.forward(x.astype(np.float32)) - exact).max() / np.abs(exact).max()
    assert err < 5e-5


# --- which algorithm runs -------------------------------------------------
@pytest.mark.parametrize("kwargs,expected", [
    (dict(in_channels=256, kernel_size=3, padding=1), 4),                 # conv3: F(4x4, 3x3)
    (dict(in_channels=384, kernel_size=3, padding=1, groups=2), 4),       # conv4/conv5
    (dict(in_channels=96, kernel_size=5, padding=2, groups=2), 4),        # conv2: F(4x4, 5x5)
    (dict(in_channels=64, kernel_size=3, padding=1), 4),                  # alexnet-small conv3: 64 channels
    (dict(in_channels=96, kernel_size=3, padding=1, groups=2), 4),        # alexnet-small conv4/5: 48 per group
    (dict(in_channels=32, kernel_size=3, padding=2, groups=2), None),     # alexnet-small conv2: 16 per group
    (dict(in_channels=1, kernel_size=5, padding=2), None),                # alexnet-small conv1: 1 channel
    (dict(in_channels=16, kernel_size=3, padding=1, groups=1), None),     # fewer than 32 channels
    (dict(in_channels=3, kernel_size=11, stride=4), None),                # AlexNet conv1: stride 4
    (dict(in_channels=64, kernel_size=3, stride=2, padding=1), None),     # stride 2
    (dict(in_channels=64, kernel_size=7, padding=3), None),               # 7x7: not measured, im2col
    (dict(in_channels=64, kernel_size=(3, 5), padding=1), None),          # non-square kernel
])
def test_auto_picks_winograd_exactly_where_the_docstring_says(kwargs, expected):
    groups = kwargs.get("groups", 1)
    layer = Conv2D(out_channels=2 * groups, **kwargs)
    assert layer.algorithm == "auto"
    assert layer.winograd_tile() == expected


def test_auto_forward_runs_winograd_where_it_picks_it(rng):
    layer = Conv2D(32, 4, 3, padding=1, rng=rng)
    layer.forward(rng.standard_normal((1, 32, 6, 6)).astype(np.float32))
    assert layer._winograd is not None and layer._winograd["m"] == 4


def test_reference_impl_never_runs_winograd(rng):
    layer = Conv2D(16, 4, 3, padding=1, rng=rng)
    layer.impl, layer.algorithm = "reference", "winograd"
    layer.forward(rng.standard_normal((1, 16, 6, 6)).astype(np.float32))
    assert layer._winograd is None and layer.cols is not None


def test_bad_algorithm_value_is_refused_naming_the_choices():
    layer = Conv2D(4, 4, 3)
    layer.algorithm = "fft"
    with pytest.raises(ValueError, match=r"algorithm must be one of \('auto', 'im2col', 'winograd'\), got 'fft'"):
        layer.forward(np.zeros((1, 4, 5, 5), np.float32))


def test_winograd_with_stride_2_is_refused_with_the_fix():
    layer = Conv2D(4, 4, 3, stride=2)
    layer.algorithm = "winograd"
    with pytest.raises(ValueError, match=r"needs stride 1.*use 'im2col' or 'auto'"):
        layer.forward(np.zeros((1, 4, 7, 7), np.float32))


def test_winograd_with_a_non_square_kernel_is_refused():
    layer = Conv2D(4, 4, (3, 5))
    layer.algorithm = "winograd"
    with pytest.raises(ValueError, match="square kernel"):
        layer.winograd_tile()
