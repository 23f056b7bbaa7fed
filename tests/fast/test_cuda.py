"""The GPU classes (tinyalex/fast/cuda.py) compute what the reference layers compute, in few operations.

Each runs beside its reference with the same parameters, input and upstream
gradient, on every place (NumPy, the device stand-in on device 1, CuPy with
a GPU): forward, dx and parameter gradients agree in float64 to round-off
and in float32 to float32 round-off; float64 gradient checks pass. Counted
on the stand-in: each pass makes a fixed number of device operations,
whatever the batch size, and never reads a value back to the host.
"""
import numpy as np
import pytest

from layers.test_conv import CONFIGS as CONV_CONFIGS
from placement import put
from tinyalex import backend as B
from tinyalex import standin
from tinyalex.fast import CudaConv2D, CudaLRN, CudaMaxPool2D, CudaReLU, FastLinear, implementations
from tinyalex.fast.cuda import add_windows, canvas_size
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import LRN, Conv2D, MaxPool2D, ReLU

from .pairs import assert_same, ref_output_shape, run, twins
from .test_conv import FAST_CASES
from .test_pooling import CASES as POOL_CASES

DTYPES = [np.float64, np.float32]
F32_CONV = dict(rtol=2e-4, atol=5e-5)


# --- add_windows: the scatter-add they share ---------------------------------------
@pytest.mark.parametrize("k,s", [(3, 2), (3, 1), (2, 2), (5, 1), (11, 4), (2, 3), ((3, 2), (1, 2))])
def test_add_windows_sums_every_window_into_its_pixels(k, s, rng):
    (kh, kw), (sh, sw) = (k if isinstance(k, tuple) else (k, k)), (s if isinstance(s, tuple) else (s, s))
    Ho, Wo = 4, 3
    win = rng.standard_normal((kh, kw, 2, Ho, Wo))
    Hc, Wc = canvas_size(Ho, kh, sh), canvas_size(Wo, kw, sw)
    got = np.zeros((2, Hc, Wc))
    add_windows(got, win, (sh, sw))
    want = np.zeros((2, Hc, Wc))
    for i in range(kh):
        for j in range(kw):
            for y in range(Ho):
                for x in range(Wo):
                    want[:, y * sh + i, x * sw + j] += win[i, j, :, y, x]
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_add_windows_refuses_a_canvas_too_small_for_the_windows():
    with pytest.raises(ValueError, match=r"canvas \(5, 6\) smaller than the 6x6 the windows need"):
        add_windows(np.zeros((5, 6)), np.ones((3, 3, 2, 2)), (2, 2))


# --- CudaConv2D -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("desc, kwargs, shape", FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_cuda_conv_equals_reference(desc, kwargs, shape, dtype, place, rng):
    fast, ref = twins(CudaConv2D, Conv2D, **kwargs, bias_init=0.3, rng=rng, dtype=dtype)
    assert_same(fast, ref, rng.standard_normal(shape).astype(dtype), rng, place,
                tol=F32_CONV if dtype == np.float32 else None)


@pytest.mark.parametrize("desc, kwargs, shape", CONV_CONFIGS, ids=[c[0] for c in CONV_CONFIGS])
def test_cuda_conv_gradients_match_numerical(desc, kwargs, shape, place, rng):
    layer = CudaConv2D(**kwargs, bias_init=0.1, rng=rng, dtype=np.float64)
    (x,) = put(place, layer, (rng.standard_normal(shape),))
    res = gradcheck(layer, x)
    assert set(res.errors) == {"x", "W", "b"}
    assert res.passed(1e-6), f"{desc}:\n{res}"


def test_cuda_conv_without_input_grad_returns_none_and_the_same_weight_grads(rng):
    fast, ref = twins(CudaConv2D, Conv2D, 3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    fast.compute_input_grad = ref.compute_input_grad = False
    got, _ = assert_same(fast, ref, rng.standard_normal((2, 3, 6, 6)), rng)
    assert got[1] is None


def test_cuda_conv_second_backward_after_one_forward_gives_the_same_gradients(rng):
    layer = CudaConv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64)
    x, dout = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((2, 6, 5, 5))
    layer.forward(x)
    dx1, dW1 = layer.backward(dout).copy(), layer.grads["W"].copy()
    dx2 = layer.backward(dout)
    np.testing.assert_array_equal(dx1, dx2)
    np.testing.assert_array_equal(dW1, layer.grads["W"])


# --- CudaLRN ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,convention,beta", [(5, "paper", 0.75), (5, "caffe", 0.75), (4, "paper", 0.75),
                                                  (3, "paper", 0.5), (1, "paper", 0.75), (11, "paper", 0.75)])
def test_cuda_lrn_equals_reference(size, convention, beta, dtype, place, rng):
    fast, ref = twins(CudaLRN, LRN, size=size, alpha=0.5, beta=beta, k=2.0, convention=convention, dtype=dtype)
    assert_same(fast, ref, rng.standard_normal((2, 7, 3, 4)).astype(dtype), rng, place)


@pytest.mark.parametrize("C", [3, 5, 8], ids=["C<n", "C==n", "C>n"])
@pytest.mark.parametrize("size", [2, 5, 6, 10])
def test_cuda_lrn_equals_reference_for_every_channel_count_and_window(C, size, rng):
    fast, ref = twins(CudaLRN, LRN, size=size, alpha=0.5, dtype=np.float64)
    assert_same(fast, ref, rng.standard_normal((2, C, 3, 4)) * 2, rng)


@pytest.mark.parametrize("size,alpha", [(5, 1e-4), (5, 0.5), (4, 0.5)])
def test_cuda_lrn_gradients_match_numerical(size, alpha, place, rng):
    layer = CudaLRN(size, alpha=alpha, dtype=np.float64)
    (x,) = put(place, layer, (rng.standard_normal((2, 7, 2, 3)) * 2,))
    assert gradcheck(layer, x).passed(1e-6)


# --- CudaMaxPool2D ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,shape", POOL_CASES)
def test_cuda_maxpool_equals_reference(k, s, shape, dtype, place, rng):
    x = rng.standard_normal(shape).astype(dtype)
    fast, ref = CudaMaxPool2D(k, s, dtype=dtype), MaxPool2D(k, s, dtype=dtype)
    assert_same(fast, ref, x, rng, place)


def test_cuda_maxpool_tie_routes_to_first_max(place):
    x = np.zeros((1, 1, 5, 5))                        # every window ties: each sends dout to its top-left pixel
    fast, ref = CudaMaxPool2D(3, 2, dtype=np.float64), MaxPool2D(3, 2, dtype=np.float64)
    dout = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    got, want = run(fast, x, dout, place), run(ref, x, dout, place)
    np.testing.assert_array_equal(got[1], want[1])
    assert got[1][0, 0, 2, 2] == 4.0 and got[1][0, 0, 0, 0] == 1.0


def test_cuda_maxpool_gradients_match_numerical(place, rng):
    layer = CudaMaxPool2D(3, 2, dtype=np.float64)
    (x,) = put(place, layer, (rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9) / 7.0,))   # no ties
    assert gradcheck(layer, x).passed(1e-6)


# --- CudaReLU -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_relu_equals_reference(dtype, place, rng):
    assert_same(CudaReLU(dtype), ReLU(dtype), rng.standard_normal((3, 4, 5)).astype(dtype), rng, place)


def test_cuda_relu_gradients_match_numerical(place, rng):
    layer = CudaReLU(np.float64)
    x = rng.standard_normal((3, 10))
    x[np.abs(x) < 1e-3] = 0.5                          # away from the kink
    (x,) = put(place, layer, (x,))
    assert gradcheck(layer, x).passed(1e-6)


# --- chosen for CuPy and the stand-in ---------------------------------------------------
@pytest.mark.parametrize("backend", ["cupy", "standin"])
def test_implementations_gives_the_gpu_classes_for_cupy_and_the_standin(backend):
    L = implementations(fast=True, backend=backend)
    assert (L.Conv2D, L.LRN, L.MaxPool2D, L.ReLU, L.Linear) == (CudaConv2D, CudaLRN, CudaMaxPool2D, CudaReLU,
                                                               FastLinear)


def test_implementations_keeps_the_cpu_classes_for_numpy():
    L = implementations(fast=True, backend="numpy")
    assert not {L.LRN, L.ReLU} & {CudaLRN, CudaReLU}
    assert type(L.Conv2D(3, 4, 3)).__name__ == "ChunkedConv2D"       # 3 input channels
    assert type(L.Conv2D(8, 4, 3)).__name__ == "WinogradConv2D"
    assert type(L.Conv2D(8, 4, 1)).__name__ == "FastConv2D"


def test_a_model_built_on_the_standin_runs_the_gpu_classes():
    from tinyalex.models import build_model
    with B.use_backend("standin"):
        net = build_model("alexnet-small")
    kinds = {type(layer) for _, layer in net.named_layers()}
    assert {CudaConv2D, CudaMaxPool2D, CudaReLU, FastLinear} <= kinds
    assert type(net.lrn1.lrn) is CudaLRN          # GroupLRN wraps the LRN class


# --- operation counts on the stand-in -----------------------------------------------------
def _count_pass(layer, shape, rng):
    """(forward ops, backward ops, host syncs) of one steady-state pass on stand-in device 1."""
    with B.use_backend("standin", 1), B.device(1):
        x, = put(("standin", 1), layer, (rng.standard_normal(shape).astype(np.float32),))
        out = layer.forward(x)
        dout = B.to_device(np.ones(out.shape, np.float32), 1, "standin")
        layer.backward(dout)                              # workspaces made
        with standin.count() as f:
            layer.forward(x)
        with standin.count() as b:
            layer.backward(dout)
    return f.device_ops, b.device_ops, f.host_syncs + b.host_syncs


@pytest.mark.parametrize("make, shape, fwd, bwd", [
    (lambda: CudaConv2D(8, 16, 5, padding=2, groups=2), (1, 8, 9, 9), 4, 6 + 25),
    (lambda: CudaConv2D(8, 16, 3, padding=1), (1, 8, 9, 9), 4, 6 + 9),
    (lambda: CudaConv2D(3, 8, 11, stride=4), (1, 3, 31, 31), 3, 6 + 9),     # no padding: no copy into xpad
    (lambda: CudaLRN(5), (1, 8, 5, 5), 10, 10),
    (lambda: CudaMaxPool2D(3, 2), (1, 8, 9, 9), 3, 8),
    (lambda: CudaReLU(), (1, 8, 9, 9), 1, 2),
], ids=["conv5x5", "conv3x3", "conv11x11s4", "lrn", "maxpool", "relu"])
def test_each_pass_makes_a_fixed_number_of_operations_and_no_host_read(make, shape, fwd, bwd, rng):
    small = _count_pass(make(), shape, rng)
    large = _count_pass(make(), (16,) + shape[1:], rng)
    assert small == large == (fwd, bwd, 0)


# --- AlexNet's own sizes, float32 (what pytest -m gpu runs on CuPy) -------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: CudaConv2D(96, 256, 5, padding=2, groups=2, rng=np.random.default_rng(0)), (2, 96, 27, 27)),
    (lambda: CudaConv2D(256, 384, 3, padding=1, rng=np.random.default_rng(0)), (2, 256, 13, 13)),
    (lambda: CudaConv2D(3, 96, 11, stride=4, rng=np.random.default_rng(0)), (2, 3, 227, 227)),
    (lambda: CudaLRN(), (2, 96, 27, 27)),
    (lambda: CudaMaxPool2D(3, 2), (2, 96, 55, 55)),
], ids=["conv2", "conv3", "conv1", "lrn1", "pool1"])
def test_cuda_layers_at_alexnet_sizes_match_the_reference_in_float32(make, shape, place, rng):
    fast = make()
    ref = {CudaConv2D: Conv2D, CudaLRN: LRN, CudaMaxPool2D: MaxPool2D}[type(fast)]
    if ref is Conv2D:
        ref = Conv2D(fast.in_channels, fast.out_channels, fast.kernel_size, fast.stride, fast.padding, fast.groups)
        ref.load_state_dict(fast.state_dict())
    else:
        ref = ref(*((3, 2) if ref is MaxPool2D else ()))
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(ref_output_shape(ref, x)).astype(np.float32)
    got, want = run(fast, x, dout, place), run(ref, x, dout, place)
    for g, w, what in zip(got[:2], want[:2], ("forward", "dx")):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * float(np.abs(w).max()), err_msg=what)
    for k in want[2]:
        np.testing.assert_allclose(got[2][k], want[2][k], rtol=0, atol=1e-5 * float(np.abs(want[2][k]).max()),
                                   err_msg=k)
