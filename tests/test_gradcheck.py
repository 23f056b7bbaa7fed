"""The gradient checker itself: it must pass right gradients and catch wrong ones."""
import numpy as np
import pytest

from tinyalex.gradcheck import check_every_layer, gradcheck, numerical_gradient, rel_error
from tinyalex.layers import Linear, ReLU


def test_rel_error_is_zero_for_equal_arrays():
    a = np.array([1.0, -2.0, 3.0])
    assert rel_error(a, a.copy()) == 0.0


def test_rel_error_is_scale_relative():
    a = np.array([100.0, 0.0])
    assert rel_error(a, a + np.array([1e-6, 1e-6])) == pytest.approx(1e-8)


def test_numerical_gradient_of_square_is_2x(rng):
    x = rng.standard_normal(5)
    g = numerical_gradient(lambda: x * x, x, np.ones(5))
    np.testing.assert_allclose(g, 2 * x, rtol=1e-8)


def test_gradcheck_passes_a_correct_linear_layer(rng):
    layer = Linear(6, 4, rng=rng, dtype=np.float64)
    assert gradcheck(layer, rng.standard_normal((3, 6))).max_error < 1e-8


class _WrongReLU(ReLU):
    """A planted bug: the gradient also leaks through negative inputs."""

    def backward(self, dout):
        return dout * 1.0


def test_gradcheck_catches_a_planted_wrong_backward(rng):
    res = gradcheck(_WrongReLU(np.float64), rng.standard_normal((4, 5)))
    assert not res.passed(1e-6)
    assert res.errors["x"] > 0.1


class _WrongBiasLinear(Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = self.grads["b"] * 1.01   # 1% wrong
        return dx


def test_gradcheck_catches_a_one_percent_wrong_parameter_gradient(rng):
    res = gradcheck(_WrongBiasLinear(5, 3, rng=rng, dtype=np.float64), rng.standard_normal((4, 5)))
    assert res.errors["b"] > 1e-3
    assert res.errors["x"] < 1e-8


def test_gradcheck_samples_entries_when_asked(rng):
    res = gradcheck(Linear(30, 20, rng=rng, dtype=np.float64), rng.standard_normal((8, 30)), max_entries=17)
    assert res.checked == {"x": 17, "W": 17, "b": 17}
    assert res.passed(1e-6)


def test_every_layer_passes_the_readme_demonstration():
    rows = check_every_layer()
    assert len(rows) >= 14
    for name, res in rows:
        assert res.passed(1e-6), f"{name}: {res}"
