"""Every layer on every backend: NumPy, the CPU device stand-in (device 1), and CuPy.

The stand-in runs on device 1, not 0, so layer code that silently assumes
device 0, creates arrays on the host, or reads device data back implicitly
fails here. CuPy cases skip (with the reason) when CuPy or a GPU is missing.
"""
import numpy as np
import pytest

from layer_cases import CASES
from tinyalex import backend
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Dropout, Layer, Linear, ReLU
from tinyalex.layers.fast import use_impl


@pytest.fixture(params=["fast", "reference"])
def impl(request):
    """The fast paths (default) and the plain reference implementations."""
    with use_impl(request.param):
        yield request.param


@pytest.fixture(params=["numpy", "standin", pytest.param("cupy", marks=pytest.mark.gpu)])
def place(request):
    """(backend name, device) with that backend active and the device current."""
    name = request.param
    if name == "cupy":
        try:
            backend._import_cupy()
        except backend.BackendError as exc:
            pytest.skip(f"CuPy backend unavailable: {exc}")
    dev = {"numpy": None, "standin": 1, "cupy": 0}[name]
    with backend.use_backend(name, dev or 0), backend.device(dev):
        yield name, dev


def _on(place, layer, args):
    name, dev = place
    layer.to(dev, name)
    return tuple(backend.to_device(a, dev, name) for a in args)


def _assert_placed(place, arr):
    name, dev = place
    assert backend.backend_of(arr) == name
    if dev is not None:
        assert backend.device_of(arr) == dev


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_gradients_match_numerical_on_every_backend(case, place, impl):
    layer = case.build(np.float64)
    args = _on(place, layer, case.inputs(np.float64))
    res = gradcheck(layer, *args, max_entries=100)    # full checks run in tests/layers
    assert res.passed(1e-6), f"{case.name} on {place}:\n{res}"


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_forward_backward_stay_on_the_device_in_float32(case, place, impl):
    host_layer = case.build(np.float32)
    host_args = case.inputs(np.float32)
    with backend.use_backend("numpy"):
        ref = host_layer.forward(*host_args)

    layer = case.build(np.float32)
    args = _on(place, layer, host_args)
    out = layer.forward(*args)
    _assert_placed(place, out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(backend.to_host(out), ref, rtol=1e-6, atol=1e-6)

    dout = backend.to_device_of(np.ones(out.shape, np.float32), out)
    dx = layer.backward(dout)
    _assert_placed(place, dx)
    assert dx.dtype == np.float32
    for name, g in layer.named_gradients():
        _assert_placed(place, g)
        assert g.dtype == np.float32, name


def test_dropout_draws_its_mask_on_the_device(place):
    layer = Dropout(0.5, seed=0)
    (x,) = _on(place, layer, (np.ones((20, 30), np.float32),))
    out = layer.forward(x)
    _assert_placed(place, out)
    assert 0.3 < float(backend.to_host(out != 0).mean()) < 0.7


def test_standin_catches_a_layer_fed_a_host_array_after_moving():
    """The point of the stand-in: forgetting the explicit transfer fails on the CPU."""
    layer = Linear(3, 2).to(1, "standin")
    with backend.device(1), pytest.raises(backend.DeviceMismatchError):
        layer.forward(np.ones((4, 3), np.float32))


def test_standin_catches_an_operation_outside_the_device_block():
    x = backend.to_device(np.ones((2, 2), np.float32), 1, "standin")
    with pytest.raises(backend.DeviceMismatchError, match=r"device 1 but the current device is 0"):
        ReLU().forward(x)



class TwoDevices(Layer):
    """Linear on stand-in device 0, then Linear on device 1, output back on device 0: a tower pair in small."""

    def __init__(self):
        super().__init__(np.float64)
        rng = np.random.default_rng(0)
        self.a = Linear(4, 3, rng=rng, dtype=np.float64).to(0, "standin")
        self.b = Linear(3, 2, rng=rng, dtype=np.float64).to(1, "standin")

    def children(self):
        return {"a": self.a, "b": self.b}

    def forward(self, x):
        with backend.device(0):
            h = self.a.forward(x)
        with backend.device(1):
            y = self.b.forward(backend.to_device(h, 1, "standin"))
        return backend.to_device(y, 0, "standin")

    def backward(self, dout):
        with backend.device(1):
            dh = self.b.backward(backend.to_device(dout, 1, "standin"))
        with backend.device(0):
            return self.a.backward(backend.to_device(dh, 0, "standin"))


def test_gradcheck_handles_parameters_on_another_device_than_the_output():
    net = TwoDevices()
    x = backend.to_device(np.random.default_rng(1).standard_normal((5, 4)), 0, "standin")
    res = gradcheck(net, x)
    assert set(res.errors) == {"x", "a.W", "a.b", "b.W", "b.b"}
    assert res.passed(1e-6), str(res)
