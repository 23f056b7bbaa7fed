"""Every layer on every backend: NumPy, the CPU device stand-in (device 1), and CuPy.

The stand-in runs on device 1, not 0, so layer code that silently assumes
device 0, creates arrays on the host, or reads device data back implicitly
fails here. CuPy cases skip (with the reason) when CuPy or a GPU is missing.
"""
import numpy as np
import pytest

from layer_cases import CASES
from placement import assert_placed, put
from tinyalex import backend
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Dropout, Layer, Linear, ReLU


@pytest.fixture(params=[False, True], ids=["reference", "fast"])
def fast(request):
    """The reference classes of tinyalex/layers and the fast classes of tinyalex/fast."""
    return request.param


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_gradients_match_numerical_on_every_backend(case, place, fast):
    layer = case.build(np.float64, fast)
    args = put(place, layer, case.inputs(np.float64))
    res = gradcheck(layer, *args, max_entries=100)    # full checks run in tests/layers
    assert res.passed(1e-6), f"{case.name} on {place}:\n{res}"


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_forward_backward_stay_on_the_device_in_float32(case, place, fast):
    host_layer = case.build(np.float32, fast)
    host_args = case.inputs(np.float32)
    with backend.use_backend("numpy"):
        ref = host_layer.forward(*host_args)

    layer = case.build(np.float32, fast)
    args = put(place, layer, host_args)
    out = layer.forward(*args)
    assert_placed(place, out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(backend.to_host(out), ref, rtol=1e-6, atol=1e-6)

    dout = backend.to_device_of(np.ones(out.shape, np.float32), out)
    dx = layer.backward(dout)
    assert_placed(place, dx)
    assert dx.dtype == np.float32
    for name, g in layer.named_gradients():
        assert_placed(place, g)
        assert g.dtype == np.float32, name


def test_dropout_draws_its_mask_on_the_device(place):
    layer = Dropout(0.5, seed=0)
    (x,) = put(place, layer, (np.ones((20, 30), np.float32),))
    out = layer.forward(x)
    assert_placed(place, out)
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
