"""Linear (y = x W^T + b, PyTorch's layout) and Flatten."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Flatten, Linear

f64 = np.float64


def test_linear_equals_x_times_w_transpose_plus_b(rng):
    layer = Linear(5, 3, rng=rng, dtype=f64)
    layer.params["b"] = rng.standard_normal(3)
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(layer.forward(x), x @ layer.params["W"].T + layer.params["b"], rtol=1e-14)


def test_linear_weight_layout_is_out_by_in():
    layer = Linear(9216, 10)
    assert layer.params["W"].shape == (10, 9216) and layer.params["b"].shape == (10,)


def test_linear_gradients_match_numerical(rng):
    res = gradcheck(Linear(6, 4, bias_init=0.3, rng=rng, dtype=f64), rng.standard_normal((5, 6)))
    assert set(res.errors) == {"x", "W", "b"} and res.passed(1e-6)


def test_linear_backward_formulas(rng):
    layer = Linear(6, 4, rng=rng, dtype=f64)
    x, dout = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(dout), dout @ layer.params["W"], rtol=1e-14)
    np.testing.assert_allclose(layer.grads["W"], dout.T @ x, rtol=1e-14)
    np.testing.assert_allclose(layer.grads["b"], dout.sum(0), rtol=1e-14)


def test_linear_matches_torch(rng):
    torch = pytest.importorskip("torch")
    layer = Linear(6, 4, bias_init=0.5, rng=rng, dtype=f64)
    x = rng.standard_normal((3, 6))
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(layer.params["W"]), torch.tensor(layer.params["b"]))
    np.testing.assert_allclose(layer.forward(x), ref.numpy(), rtol=1e-14)


def test_linear_init_std_and_bias():
    layer = Linear(1000, 400, weight_std=0.01, bias_init=1.0, rng=np.random.default_rng(0))
    assert layer.params["W"].std() == pytest.approx(0.01, rel=0.02)
    assert np.all(layer.params["b"] == 1.0)


def test_linear_wrong_feature_count_raises_naming_both():
    with pytest.raises(ValueError, match=r"Linear\(in_features=7, out_features=5\).*expected 7, got 6"):
        Linear(7, 5).forward(np.zeros((3, 6), np.float32))


def test_linear_wrong_rank_raises_naming_shape():
    with pytest.raises(ValueError, match=r"Linear.*expected rank 2, got shape \(2, 3, 4\)"):
        Linear(4, 5).forward(np.zeros((2, 3, 4), np.float32))


def test_linear_dout_of_wrong_shape_raises(rng):
    layer = Linear(4, 5, dtype=f64)
    layer.forward(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match=r"expected \(3, 5\), got \(3, 4\)"):
        layer.backward(np.zeros((3, 4)))


def test_flatten_keeps_batch_axis_and_round_trips(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = Flatten(f64)
    out = layer.forward(x)
    assert out.shape == (2, 60)
    np.testing.assert_array_equal(out[1], x[1].ravel())            # C, H, W order, as PyTorch
    np.testing.assert_array_equal(layer.backward(out), x)


def test_flatten_gradients_match_numerical(rng):
    assert gradcheck(Flatten(f64), rng.standard_normal((2, 3, 2, 2))).passed(1e-6)


def test_flatten_rejects_rank_one_input():
    with pytest.raises(ValueError, match=r"Flatten.*expected rank >= 2, got shape \(5,\)"):
        Flatten().forward(np.zeros(5, np.float32))


def test_linear_rejects_zero_features():
    with pytest.raises(ValueError, match=r"in_features and out_features must be >= 1, got 0, 5"):
        Linear(0, 5)
