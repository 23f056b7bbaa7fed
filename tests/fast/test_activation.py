"""FastReLU (tinyalex/fast/activation.py) computes what the reference ReLU computes.

Same output and gradient (zero at x = 0, as the reference), for any rank and
for a batch of one (no chunking), float64 and float32, NumPy and the device
stand-in; float64 gradient check; the input and dout are never written.
"""
import numpy as np
import pytest

from placement import put
from tinyalex.fast import FastReLU
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import ReLU

from .pairs import assert_same, twins


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (1, 6), (7,)])
def test_fast_relu_equals_reference_including_zeros(shape, dtype, place, rng):
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[:3] = 0
    fast, ref = twins(FastReLU, ReLU, dtype)
    assert_same(fast, ref, x, rng, place)


def test_fast_relu_gradients_match_numerical(place, rng):
    x = rng.standard_normal((3, 4, 5))
    x = np.where(np.abs(x) < 0.1, 0.5, x)          # a finite-difference step never crosses the kink
    layer = FastReLU(np.float64)
    (x,) = put(place, layer, (x,))
    assert gradcheck(layer, x).passed(1e-6)


def test_fast_relu_does_not_modify_input_or_dout(rng):
    layer = FastReLU(np.float64)
    x, dout = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    x0, d0 = x.copy(), dout.copy()
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, d0)


def test_fast_relu_on_numpy_leaves_its_zero_sample_zero_over_many_calls(rng):
    """maximum(x, zero) runs against a kept zero sample (fast/cpu.py zero_operand); nothing may write into it."""
    layer = FastReLU(np.float32)
    for _ in range(3):
        x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
        np.testing.assert_array_equal(layer.forward(x), np.where(x > 0, x, 0))
        layer.backward(rng.standard_normal(x.shape).astype(np.float32))
    zero = layer.workspaces["zero"]
    assert zero.shape == (1, 3, 4, 4) and not zero.any()
