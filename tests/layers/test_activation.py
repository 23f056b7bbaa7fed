"""ReLU and Tanh: known answers, gradient checks, any rank, bad input."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import ReLU, Tanh

f64 = np.float64


def away_from_zero(rng, shape):
    """Inputs with |x| >= 0.1, so a finite-difference step never crosses ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.1 * np.sign(x) + 0.1 * (x == 0), x)


def test_relu_is_max_of_zero_and_x():
    x = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(ReLU(f64).forward(x), [[0, 0, 0, 0.5, 3.0]])


def test_relu_gradient_passes_only_where_input_was_positive():
    layer = ReLU(f64)
    layer.forward(np.array([[-1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(layer.backward(np.array([[5.0, 6.0, 7.0]])), [[0, 0, 7.0]])


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 5)])
def test_relu_gradients_match_numerical(shape, rng):
    assert gradcheck(ReLU(f64), away_from_zero(rng, shape)).passed(1e-6)


def test_tanh_matches_numpy(rng):
    x = rng.standard_normal((2, 3, 4, 4)) * 3
    np.testing.assert_allclose(Tanh(f64).forward(x), np.tanh(x), rtol=1e-15)


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 5)])
def test_tanh_gradients_match_numerical(shape, rng):
    assert gradcheck(Tanh(f64), rng.standard_normal(shape) * 2).passed(1e-6)


def test_tanh_gradient_is_one_minus_y_squared(rng):
    x = rng.standard_normal((4, 6))
    layer = Tanh(f64)
    y = layer.forward(x)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), 1 - y ** 2, rtol=1e-14)


def test_relu_and_tanh_have_no_parameters():
    assert ReLU().num_parameters() == 0 and Tanh().num_parameters() == 0


@pytest.mark.parametrize("cls", [ReLU, Tanh])
def test_activation_rejects_input_of_another_dtype(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}\(\): input dtype float64 does not match the layer's float32"):
        cls().forward(np.zeros((2, 3)))


@pytest.mark.parametrize("cls", [ReLU, Tanh])
def test_activation_dout_that_would_broadcast_raises(cls, rng):
    layer = cls(f64)
    layer.forward(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=rf"{cls.__name__}\(\): dout shape.*expected \(4, 3\), got \(1, 3\)"):
        layer.backward(np.ones((1, 3)))
