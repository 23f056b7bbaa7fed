"""Pad2D: a constant border; -inf in front of MaxPool2D gives PyTorch's padded max pooling."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import MaxPool2D, Pad2D, Sequential

f64 = np.float64


def test_pad_surrounds_each_map_with_the_value_and_keeps_the_interior(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    out = Pad2D((1, 2), value=7.0, dtype=f64).forward(x)
    assert out.shape == (2, 3, 6, 9)
    np.testing.assert_array_equal(out[:, :, 1:5, 2:7], x)
    assert np.all(out[:, :, 0] == 7.0) and np.all(out[:, :, :, -1] == 7.0)


def test_pad_gradients_match_numerical(rng):
    assert gradcheck(Pad2D(2, dtype=f64), rng.standard_normal((2, 2, 3, 4))).passed(1e-6)


@pytest.mark.parametrize("k, s, p", [(3, 2, 1), (3, 1, 1), (2, 2, 1)])
def test_minus_inf_pad_then_maxpool_matches_torch_padded_max_pool(k, s, p, rng):
    torch = pytest.importorskip("torch")
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1 - 10        # all negative: a zero border would win
    net = Sequential(Pad2D(p, value=-np.inf, dtype=f64), MaxPool2D(k, s, dtype=f64))
    out = net.forward(x)
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, k, s, p)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(net.backward(dout), tx.grad.numpy(), rtol=1e-14)


def test_pad_refuses_negative_padding():
    with pytest.raises(ValueError, match=r"Pad2D: padding must be >= 0, got \(-1, -1\)"):
        Pad2D(-1)
