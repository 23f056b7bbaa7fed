"""FastLinear (tinyalex/fast/linear.py) computes what the reference Linear computes.

Same output, dx, dW and db, float64 and float32, NumPy and the device
stand-in; float64 gradient check; gradients written into the existing
arrays from the second step on (as documented).
"""
import numpy as np
import pytest

from placement import put
from tinyalex.fast import FastLinear
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Linear

from .pairs import assert_same, twins


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,fin,fout", [(4, 7, 5), (1, 3, 2), (6, 16, 1)])
def test_fast_linear_equals_reference(n, fin, fout, dtype, place, rng):
    fast, ref = twins(FastLinear, Linear, fin, fout, bias_init=0.5, rng=rng, dtype=dtype)
    assert_same(fast, ref, rng.standard_normal((n, fin)).astype(dtype), rng, place)


def test_fast_linear_gradients_match_numerical(place, rng):
    layer = FastLinear(6, 4, bias_init=0.3, rng=rng, dtype=np.float64)
    (x,) = put(place, layer, (rng.standard_normal((5, 6)),))
    res = gradcheck(layer, x)
    assert set(res.errors) == {"x", "W", "b"} and res.passed(1e-6)


def test_fast_linear_writes_gradients_into_the_existing_arrays(rng):
    layer = FastLinear(6, 4, rng=rng, dtype=np.float64)
    x, dout = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
    layer.forward(x)
    layer.backward(dout)
    dW, db = layer.grads["W"], layer.grads["b"]
    layer.forward(2 * x)
    layer.backward(dout)
    assert layer.grads["W"] is dW and layer.grads["b"] is db
    np.testing.assert_allclose(dW, dout.T @ (2 * x), rtol=1e-14)
