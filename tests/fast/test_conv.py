"""FastConv2D, ChunkedConv2D and WinogradConv2D (tinyalex/fast/conv.py) compute what the reference Conv2D computes.

Each runs beside a reference Conv2D with the same parameters, input and
upstream gradient: forward, dx, dW and db agree in float64 (round-off) and
float32, on NumPy and the device stand-in (CuPy with a GPU), over the
reference tests' configurations and more; float64 gradient checks pass; a
second backward, ``compute_input_grad = False``, a batch-size change and
untouched inputs behave as in the reference. ChunkedConv2D runs with
chunks of one image (``chunk_bytes = 1``) so that every case has several
chunks. :func:`conv2d_class` picks each class exactly where its docstring
says.

Winograd's float32 tolerance: the transforms' entries (up to 5.25 in B^T,
products of up to 8 in the 2-D form) amplify round-off; measured with
F(4, 3) and F(4, 5) at AlexNet's channel counts the error is about 1e-5 of
the largest output (docs/layers.md), 20x im2col's. On the small shapes here
it is below 1e-5 of the largest entry; ``atol = 1e-4 * max|ref|`` leaves a
margin of 10 while still catching any wrong index (errors of order max|ref|).
"""
import copy

import numpy as np
import pytest

from layers.test_conv import CONFIGS
from placement import put
from tinyalex.fast import ChunkedConv2D, FastConv2D, WinogradConv2D, conv2d_class
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Conv2D

from .pairs import assert_same, run, twins

DTYPES = [np.float64, np.float32]


class OneImageChunks(ChunkedConv2D):
    """ChunkedConv2D with a chunk per image: many chunks even on the tests' small batches."""
    chunk_bytes = 1


IM2COL = [FastConv2D, OneImageChunks]

# (description, Conv2D arguments, input shape): the reference tests' configurations, and these
FAST_CASES = CONFIGS + [
    ("conv1-like 11x11 stride 4", dict(in_channels=3, out_channels=8, kernel_size=11, stride=4), (2, 3, 27, 27)),
    ("conv2-like 5x5 pad 2 groups 2", dict(in_channels=4, out_channels=6, kernel_size=5, padding=2, groups=2),
     (2, 4, 7, 7)),
    ("three groups", dict(in_channels=6, out_channels=9, kernel_size=3, padding=1, groups=3), (3, 6, 5, 5)),
    ("3x2 kernel, stride (2, 1), padding (1, 0)",
     dict(in_channels=2, out_channels=4, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)), (2, 2, 6, 5)),
    ("1x1, batch of one", dict(in_channels=5, out_channels=5, kernel_size=1), (1, 5, 4, 4)),
]

WINOGRAD_CASES = [
    # (C, F, k, pad, groups, N, H, W, tile)
    (4, 6, 3, 1, 1, 2, 8, 8, 4),       # even map, exact tiling
    (4, 6, 3, 1, 2, 2, 7, 7, 4),       # odd map (ragged last tile), groups 2
    (3, 4, 3, 0, 1, 2, 9, 6, 4),       # no padding, non-square map
    (4, 4, 3, 2, 2, 1, 5, 6, 4),       # padding 2 grows the map
    (2, 3, 3, 1, 1, 2, 3, 2, 4),       # map smaller than one tile
    (4, 6, 3, 1, 2, 2, 7, 7, 2),       # F(2, 3)
    (4, 6, 3, 1, 1, 2, 13, 13, 6),     # F(6, 3)
    (4, 6, 3, 1, 1, 2, 13, 13, 5),     # F(5, 3): AlexNet's 13x13 maps
    (4, 6, 3, 2, 2, 2, 13, 13, None),  # the automatic tile: F(5, 3) on alexnet-small conv2's 15x15 output
    (4, 6, 3, 1, 2, 2, 7, 7, None),    # the automatic tile: F(4, 3) on 7x7
    (4, 6, 5, 2, 2, 2, 7, 7, 4),       # 5x5, groups 2 (conv2-like)
    (3, 4, 5, 0, 1, 2, 8, 9, 4),       # 5x5, no padding, non-square
    (4, 4, 5, 1, 1, 2, 6, 6, 2),       # F(2, 5), padding 1
]


def winograd_tol(dtype, want):
    if dtype == np.float64:
        return dict(rtol=1e-10, atol=1e-11)
    return dict(rtol=0, atol=1e-4 * float(np.abs(want).max()))


# --- FastConv2D -------------------------------------------------------------
@pytest.mark.parametrize("cls", IM2COL)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("desc, kwargs, shape", FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_fast_conv_equals_reference(desc, kwargs, shape, dtype, place, rng, cls):
    fast, ref = twins(cls, Conv2D, **kwargs, bias_init=0.3, rng=rng, dtype=dtype)
    assert_same(fast, ref, rng.standard_normal(shape).astype(dtype), rng, place)


@pytest.mark.parametrize("cls", IM2COL)
@pytest.mark.parametrize("desc, kwargs, shape", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_fast_conv_gradients_match_numerical(desc, kwargs, shape, place, rng, cls):
    layer = cls(**kwargs, bias_init=0.1, rng=rng, dtype=np.float64)
    (x,) = put(place, layer, (rng.standard_normal(shape),))
    res = gradcheck(layer, x)
    assert set(res.errors) == {"x", "W", "b"}
    assert res.passed(1e-6), f"{desc}:\n{res}"


@pytest.mark.parametrize("cls", IM2COL)
def test_fast_conv_without_input_grad_returns_none_and_the_same_weight_grads(rng, cls):
    fast, ref = twins(cls, Conv2D, 3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    fast.compute_input_grad = ref.compute_input_grad = False
    got, _ = assert_same(fast, ref, rng.standard_normal((2, 3, 6, 6)), rng)
    assert got[1] is None


@pytest.mark.parametrize("cls", IM2COL + [WinogradConv2D])
def test_second_backward_after_one_forward_gives_the_same_gradients(cls, rng):
    layer = cls(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4, 7, 7))
    dout = rng.standard_normal((2, 6, 7, 7))
    layer.forward(x)
    dx1, dW1 = layer.backward(dout).copy(), layer.grads["W"].copy()
    dx2, dW2 = layer.backward(dout), layer.grads["W"]
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dW2, dW1, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cls", IM2COL + [WinogradConv2D])
def test_workspaces_are_reused_and_survive_a_batch_size_change(cls, rng):
    fast, ref = twins(cls, Conv2D, 3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    for n in (2, 2, 3, 2):
        x = rng.standard_normal((n, 3, 6, 6))
        np.testing.assert_allclose(fast.forward(x), ref.forward(x), rtol=1e-12, atol=1e-13)
    buffers = dict(fast.workspaces.buffers)
    fast.forward(rng.standard_normal((2, 3, 6, 6)))        # same shape as the last call: the same buffers
    assert all(fast.workspaces[name] is buf for name, buf in buffers.items())


@pytest.mark.parametrize("cls", IM2COL + [WinogradConv2D])
def test_forward_and_backward_do_not_modify_input_or_dout(cls, rng):
    layer = cls(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4, 5, 5))
    dout = rng.standard_normal((2, 6, 5, 5))
    x0, d0 = x.copy(), dout.copy()
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, d0)


# --- WinogradConv2D -----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=lambda c: "C{}F{}k{}p{}g{}N{}H{}W{}m{}".format(*c[:8], c[8] or "auto"))
def test_winograd_conv_equals_reference(case, dtype, place, rng):
    C, F, k, p, g, N, H, W, m = case
    fast, ref = twins(WinogradConv2D, Conv2D, C, F, k, padding=p, groups=g, bias_init=0.3, rng=rng, dtype=dtype,
                      fast_kwargs=dict(tile=m))
    assert fast.tile == m
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    want_m = m or {13: 5, 7: 4}[H]                     # the automatic cases above
    assert fast.tile_for(*ref.output_shape((C, H, W))[1:]) == want_m
    dout = rng.standard_normal((N, F) + ref.output_shape((C, H, W))[1:]).astype(dtype)
    got, want = run(fast, x, dout, place), run(ref, x, dout, place)
    assert got[0].dtype == got[1].dtype == got[2]["W"].dtype == dtype
    for what, a, b in (("forward", got[0], want[0]), ("dx", got[1], want[1]),
                       ("dW", got[2]["W"], want[2]["W"]), ("db", got[2]["b"], want[2]["b"])):
        np.testing.assert_allclose(a, b, **winograd_tol(dtype, b), err_msg=what)


@pytest.mark.parametrize("k,m,groups", [(3, 4, 2), (3, 2, 1), (5, 4, 1)])
def test_winograd_backward_passes_gradcheck_in_float64(k, m, groups, place, rng):
    layer = WinogradConv2D(4, 4, k, padding=1, groups=groups, bias_init=0.1, rng=rng, dtype=np.float64, tile=m)
    (x,) = put(place, layer, (rng.standard_normal((2, 4, 6, 5)),))
    res = gradcheck(layer, x)
    assert res.passed(1e-7), str(res)


def test_winograd_without_input_grad_returns_none_and_still_gives_weight_grads(rng):
    fast, ref = twins(WinogradConv2D, Conv2D, 4, 6, 3, padding=1, rng=rng, dtype=np.float64)
    fast.compute_input_grad = False
    x = rng.standard_normal((2, 4, 6, 6))
    dout = rng.standard_normal((2, 6, 6, 6))
    fast.forward(x)
    assert fast.backward(dout) is None
    ref.forward(x)
    ref.backward(dout)
    np.testing.assert_allclose(fast.grads["W"], ref.grads["W"], rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(fast.grads["b"], ref.grads["b"], rtol=1e-10, atol=1e-11)


def test_winograd_float32_error_at_alexnet_channel_counts_is_about_1e_5_of_the_output(rng):
    """conv4-like (192 channels per group, 13x13): F(4, 3) in float32 against float64."""
    layer = Conv2D(384, 8, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 384, 13, 13))
    exact = copy.deepcopy(layer).forward(x)
    w32 = WinogradConv2D(384, 8, 3, padding=1, groups=2, dtype=np.float32)
    w32.params["W"][...] = layer.params["W"]
    assert w32.tile_for(13, 13) == 5
    err = np.abs(w32.forward(x.astype(np.float32)) - exact).max() / np.abs(exact).max()
    assert err < 5e-5


def test_winograd_with_stride_2_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"needs stride 1 and a square kernel.*use FastConv2D"):
        WinogradConv2D(4, 4, 3, stride=2)


def test_winograd_with_a_non_square_kernel_is_refused():
    with pytest.raises(ValueError, match=r"square kernel, got stride=\(1, 1\), kernel_size=\(3, 5\)"):
        WinogradConv2D(4, 4, (3, 5))


@pytest.mark.parametrize("k,Ho,m", [(3, 13, 5), (3, 15, 5), (3, 7, 4), (3, 14, 5), (3, 28, 4), (3, 32, 4),
                                    (3, 8, 4), (5, 27, 4), (5, 15, 4), (7, 13, 2)])
def test_winograd_automatic_tile_needs_the_fewest_products(k, Ho, m):
    assert WinogradConv2D(4, 4, k).tile_for(Ho, Ho) == m
    assert WinogradConv2D(4, 4, k, tile=2).tile_for(Ho, Ho) == 2          # a fixed tile wins


def test_winograd_tile_below_one_is_refused():
    with pytest.raises(ValueError, match="tile must be >= 1, got 0"):
        WinogradConv2D(4, 4, 3, tile=0)


def test_winograd_repr_names_the_class_and_its_tile():
    assert repr(WinogradConv2D(64, 8, 3, padding=1)) == \
        "WinogradConv2D(64, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), tile=auto)"


# --- which class runs -----------------------------------------------------------
@pytest.mark.parametrize("kwargs,expected", [
    (dict(in_channels=256, kernel_size=3, padding=1), 4),                 # conv3: F(4x4, 3x3)
    (dict(in_channels=384, kernel_size=3, padding=1, groups=2), 4),       # conv4/conv5
    (dict(in_channels=96, kernel_size=5, padding=2, groups=2), 4),        # conv2: F(4x4, 5x5)
    (dict(in_channels=64, kernel_size=3, padding=1), 4),                  # alexnet-small conv3: 64 channels
    (dict(in_channels=96, kernel_size=3, padding=1, groups=2), 4),        # alexnet-small conv4/5: 48 per group
    (dict(in_channels=32, kernel_size=3, padding=2, groups=2), 4),        # alexnet-small conv2: 16 per group
    (dict(in_channels=1, kernel_size=5, padding=2), "chunked"),           # alexnet-small conv1: 1 channel
    (dict(in_channels=3, kernel_size=5, padding=2), "chunked"),           # alexnet-cifar conv1: 3 channels
    (dict(in_channels=6, kernel_size=3, padding=1, groups=2), "chunked"),  # 3 per group
    (dict(in_channels=4, kernel_size=3, padding=1), 4),                   # 4 channels: Winograd from here up
    (dict(in_channels=4, kernel_size=5, padding=2), 4),                   # googlenet-small's 5x5 after a 1x1
    (dict(in_channels=16, kernel_size=1), None),                          # 1x1: no Winograd tile
    (dict(in_channels=3, kernel_size=11, stride=4), "chunked"),           # AlexNet conv1: 3 channels, stride 4
    (dict(in_channels=64, kernel_size=3, stride=2, padding=1), None),     # stride 2
    (dict(in_channels=64, kernel_size=7, padding=3), None),               # 7x7: not measured, im2col
    (dict(in_channels=64, kernel_size=(3, 5), padding=1), None),          # non-square kernel
])
def test_conv2d_class_picks_each_class_exactly_where_the_docstring_says(kwargs, expected):
    groups = kwargs.get("groups", 1)
    cls = conv2d_class(kwargs["in_channels"], groups, kwargs["kernel_size"], kwargs.get("stride", 1))
    assert cls is {None: FastConv2D, "chunked": ChunkedConv2D}.get(expected, WinogradConv2D)
    layer = cls(out_channels=2 * groups, **kwargs)
    if cls is WinogradConv2D:
        assert layer.tile is None and layer.tile_for(7, 7) == expected


@pytest.mark.parametrize("groups,kernel_size,error", [(0, 3, "groups=0 must divide"),
                                                      (1, "3", "kernel_size must be an int or a pair"),
                                                      (1, (3, 3, 3), "kernel_size must be an int or a pair")])
def test_conv2d_class_leaves_bad_arguments_to_the_constructors_error(groups, kernel_size, error):
    assert conv2d_class(64, groups, kernel_size, 1) is FastConv2D
    with pytest.raises(ValueError, match=error):
        FastConv2D(64, 64, kernel_size, groups=groups)


# --- ChunkedConv2D ------------------------------------------------------------
@pytest.mark.parametrize("threads", ["1", "2"])
def test_chunked_conv_gives_the_same_bits_every_run_and_whatever_the_threads(threads, rng, monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", threads)
    layer = OneImageChunks(3, 4, 3, padding=1, rng=rng, dtype=np.float32)
    x = rng.standard_normal((5, 3, 6, 6)).astype(np.float32)
    dout = rng.standard_normal((5, 4, 6, 6)).astype(np.float32)
    runs = []
    for _ in range(3):
        out = layer.forward(x).copy()
        dx = layer.backward(dout).copy()
        runs.append((out, dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_chunked_conv_runs_its_chunks_with_one_blas_thread_when_threaded(rng, monkeypatch):
    import threadpoolctl

    monkeypatch.setenv("TINYALEX_THREADS", "2")
    layer = OneImageChunks(3, 4, 3, padding=1, rng=rng, dtype=np.float32)
    seen, fill = [], layer._fill_cols

    def spy(x, lo, hi):
        seen.append([i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"])
        return fill(x, lo, hi)

    layer._fill_cols = spy
    layer.forward(rng.standard_normal((4, 3, 6, 6)).astype(np.float32))
    assert seen and all(s == [1] for s in seen if s)
