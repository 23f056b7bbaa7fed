"""implementations(): the reference classes themselves, or the fast ones, chosen once at build time.

No global switch: choosing never changes a class; each fast class is a
subclass of its reference class that defines its own forward and backward,
and its name shows in repr (so summary() says what runs each layer).
"""
import copy

import numpy as np
import pytest

import tinyalex.layers
from tinyalex import backend as B
from tinyalex.fast import (ChunkedConv2D, CudaConv2D, CudaLRN, CudaMaxPool2D, CudaReLU, FastBatchNorm2d, FastConv2D,
                           FastLinear, FastLRN, FastMaxPool2D, FastReLU, WinogradConv2D, implementations)
from tinyalex.layers import LRN, BatchNorm2d, Conv2D, Linear, MaxPool2D, ReLU
from tinyalex.models import build_model

REFERENCE = {FastConv2D: Conv2D, ChunkedConv2D: Conv2D, WinogradConv2D: Conv2D, FastLRN: LRN, FastMaxPool2D: MaxPool2D,
             FastReLU: ReLU, FastLinear: Linear, FastBatchNorm2d: BatchNorm2d, CudaConv2D: Conv2D, CudaLRN: LRN, CudaMaxPool2D: MaxPool2D, CudaReLU: ReLU}
NAMES = ("Conv2D", "LRN", "MaxPool2D", "ReLU", "Linear", "BatchNorm2d")


def test_fast_false_gives_exactly_the_reference_classes():
    L = implementations(fast=False)
    assert (L.Conv2D, L.LRN, L.MaxPool2D, L.ReLU, L.Linear, L.BatchNorm2d) == (Conv2D, LRN, MaxPool2D, ReLU, Linear,
                                                                               BatchNorm2d)
    assert all(getattr(L, n) is getattr(tinyalex.layers, n) for n in NAMES)


def test_fast_true_gives_the_fast_classes():
    L = implementations(fast=True)
    assert (L.LRN, L.ReLU, L.Linear, L.BatchNorm2d) == (FastLRN, FastReLU, FastLinear, FastBatchNorm2d)
    assert type(L.MaxPool2D(3, 2)) is FastMaxPool2D
    assert type(L.Conv2D(8, 4, 3)) is WinogradConv2D
    assert type(L.Conv2D(8, 4, 3, stride=2)) is FastConv2D


@pytest.mark.parametrize("args,kwargs,cls", [
    ((3, 96, 11), dict(stride=4), ChunkedConv2D),                    # AlexNet conv1: 3 channels
    ((4, 8, 3), dict(padding=1), WinogradConv2D),                    # 4 channels: Winograd from here up
    ((96, 256, 5), dict(padding=2, groups=2), WinogradConv2D),       # conv2: 48 channels per group
    ((256, 384, 3), dict(padding=1), WinogradConv2D),                # conv3
    ((32, 64, 3, 1, 2, 2), {}, WinogradConv2D),                      # 16 channels per group (positional groups)
    ((32, 64, 1), {}, FastConv2D),                                   # 1x1: no Winograd tile
    ((64, 64, 3), dict(stride=2, padding=1), FastConv2D),            # stride 2
])
def test_fast_conv2d_follows_the_auto_rule(args, kwargs, cls):
    layer = implementations(fast=True).Conv2D(*args, **kwargs, dtype=np.float64)
    assert type(layer) is cls
    assert (layer.in_channels, layer.out_channels) == args[:2]


def test_fast_factories_take_the_reference_arguments(rng):
    L = implementations(fast=True)
    conv = L.Conv2D(64, 8, 3, 1, 1, 2, weight_std=0.5, bias_init=0.25, rng=rng, dtype=np.float64)
    assert (conv.stride, conv.padding, conv.groups, conv.dtype) == ((1, 1), (1, 1), 2, np.float64)
    assert np.all(conv.params["b"] == 0.25)
    assert L.MaxPool2D(kernel_size=2, stride=2, dtype=np.float64).kernel_size == (2, 2)


def test_choosing_changes_no_class():
    before = {c: dict(vars(c)) for c in (Conv2D, LRN, MaxPool2D, ReLU, Linear)}
    implementations(fast=True)
    implementations(fast=False)
    assert {c: dict(vars(c)) for c in before} == before
    for name in NAMES:
        assert not hasattr(getattr(tinyalex.layers, name), "impl")
    assert not hasattr(tinyalex.layers, "use_impl")


@pytest.mark.parametrize("fast_cls", list(REFERENCE), ids=lambda c: c.__name__)
def test_each_fast_class_subclasses_its_reference_and_owns_forward_and_backward(fast_cls):
    assert issubclass(fast_cls, REFERENCE[fast_cls])
    assert "forward" in vars(fast_cls) and "backward" in vars(fast_cls)


def test_repr_names_the_class_that_runs():
    L = implementations(fast=True)
    assert repr(L.Conv2D(3, 96, 11, stride=4)) == "ChunkedConv2D(3, 96, kernel_size=(11, 11), stride=(4, 4))"
    assert str(L.LRN()).startswith("FastLRN(size=5")
    assert repr(implementations(fast=False).Conv2D(3, 96, 11, stride=4)).startswith("Conv2D(3, 96")


def test_unknown_backend_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"backend must be one of \('numpy', 'cupy', 'standin'\) or None, got 'tpu'"):
        implementations(backend="tpu")


@pytest.mark.parametrize("backend", [None, "numpy"])
def test_numpy_and_no_backend_get_the_cpu_fast_classes(backend):
    assert implementations(True, backend).LRN is FastLRN


@pytest.mark.parametrize("backend", ["standin", "cupy"])
def test_cupy_and_the_standin_get_the_gpu_classes(backend):
    assert implementations(True, backend).LRN.__name__ == "CudaLRN"


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast"])
def test_a_model_runs_only_the_classes_it_was_built_with(fast):
    model = build_model("alexnet-small", fast=fast)
    names = {type(layer).__name__ for _, layer in model.named_layers()}
    fast_names = {c.__name__ for c in REFERENCE}
    if fast:
        assert {"ChunkedConv2D", "WinogradConv2D", "FastReLU", "FastMaxPool2D", "FastLinear"} <= names
        assert not names & set(NAMES)
    else:
        assert {"Conv2D", "ReLU", "MaxPool2D", "Linear"} <= names
        assert not names & fast_names


def test_reference_and_fast_models_compute_the_same_logits_and_gradients(rng):
    fast = build_model("alexnet-small", dtype=np.float64, seed=3).eval()
    ref = build_model("alexnet-small", dtype=np.float64, seed=3, fast=False).eval()
    x = rng.standard_normal((3,) + fast.input_shape)
    np.testing.assert_allclose(fast.forward(x), ref.forward(x), rtol=1e-10, atol=1e-12)
    d = rng.standard_normal((3, 10))
    np.testing.assert_allclose(fast.backward(d), ref.backward(d), rtol=1e-10, atol=1e-12)
    for (name, g), (_, h) in zip(fast.named_gradients(), ref.named_gradients()):
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12, err_msg=name)


def test_fast_layers_chain_on_the_device_standin_without_implicit_transfers(rng):
    L = implementations(fast=True)
    layers = [L.Conv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=np.float64), L.LRN(dtype=np.float64),
              L.MaxPool2D(3, 2, dtype=np.float64), L.ReLU(dtype=np.float64)]
    x_host = rng.standard_normal((2, 4, 7, 7))
    with B.use_backend("standin", 1):
        for layer in layers:
            host = copy.deepcopy(layer)
            layer.to(1)
            out = layer.forward(B.asarray(x_host))
            assert B.device_of(out) == 1
            dout_host = rng.standard_normal(out.shape)
            dx = layer.backward(B.asarray(dout_host))
            assert B.device_of(dx) == 1
            with B.use_backend("numpy"):
                want_out = host.forward(x_host)
                want_dx = host.backward(dout_host)
            np.testing.assert_allclose(B.to_host(out), want_out, rtol=1e-12)
            np.testing.assert_allclose(B.to_host(dx), want_dx, rtol=1e-12)
            x_host = B.to_host(out)
