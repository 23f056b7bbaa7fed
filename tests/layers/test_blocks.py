"""Concat (parallel branches, channels stacked), Residual (F(x) + S(x)), ZeroPadShortcut, infer_shape."""
import re

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import (BatchNorm2d, Concat, Conv2D, Flatten, Layer, Linear, MaxPool2D, Pad2D, ReLU, Residual,
                             Sequential, WithoutBias, ZeroPadShortcut, infer_shape)

f64 = np.float64


class Scale(Layer):
    """y = a * x, a known derivative."""

    def __init__(self, a):
        super().__init__(f64)
        self.a = a

    def forward(self, x):
        return self.a * x

    def backward(self, dout):
        return self.a * dout


def inception_like(rng):
    return Concat(
        ("b1", Conv2D(3, 2, 1, rng=rng, dtype=f64)),
        ("b3", Sequential(Conv2D(3, 2, 1, rng=rng, dtype=f64), ReLU(f64), Conv2D(2, 3, 3, padding=1, rng=rng, dtype=f64))),
        ("pool", Sequential(Pad2D(1, -np.inf, f64), MaxPool2D(3, 1, f64), Conv2D(3, 1, 1, rng=rng, dtype=f64))),
        dtype=f64)


def test_concat_stacks_branch_outputs_along_channels(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    out = Concat(Scale(2.0), Scale(-1.0), dtype=f64).forward(x)
    np.testing.assert_array_equal(out, np.concatenate([2 * x, -x], axis=1))


def test_concat_backward_gives_each_branch_its_channels_and_adds_at_the_input(rng):
    x = rng.standard_normal((1, 2, 3, 3))
    layer = Concat(Scale(2.0), Scale(-1.0), dtype=f64)
    layer.forward(x)
    dout = rng.standard_normal((1, 4, 3, 3))
    np.testing.assert_allclose(layer.backward(dout), 2 * dout[:, :2] - dout[:, 2:])


def test_concat_of_inception_branches_gradients_match_numerical(rng):
    res = gradcheck(inception_like(rng), rng.standard_normal((2, 3, 5, 5)))
    assert res.passed(1e-6), str(res)
    assert "b3.2.W" in res.errors and "pool.2.b" in res.errors


def test_concat_output_shape_sums_channels(rng):
    assert inception_like(rng).output_shape((3, 5, 5)) == (6, 5, 5)


def test_concat_refuses_branches_of_different_sizes_naming_them():
    layer = Concat(("same", Scale(1.0)), ("pooled", MaxPool2D(2, 2, f64)), dtype=f64)
    with pytest.raises(ValueError, match=re.escape("equal H x W, got same (1, 2, 4, 4), pooled (1, 2, 2, 2)")):
        layer.forward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=re.escape("got same 2x4x4, pooled 2x2x2")):
        layer.output_shape((2, 4, 4))


def test_residual_identity_adds_the_input():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    layer = Residual(Scale(3.0), dtype=f64)
    np.testing.assert_array_equal(layer.forward(x), 4 * x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.full_like(x, 4.0))   # F' + 1


def basic_block(rng, cin, cout, stride):
    body = Sequential(
        ("conv1", WithoutBias(Conv2D(cin, cout, 3, stride, 1, rng=rng, dtype=f64))), ("bn1", BatchNorm2d(cout, dtype=f64)),
        ("relu1", ReLU(f64)),
        ("conv2", WithoutBias(Conv2D(cout, cout, 3, 1, 1, rng=rng, dtype=f64))), ("bn2", BatchNorm2d(cout, dtype=f64)))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential(("conv", WithoutBias(Conv2D(cin, cout, 1, stride, rng=rng, dtype=f64))),
                              ("bn", BatchNorm2d(cout, dtype=f64)))
    return Residual(body, shortcut, ReLU(f64), dtype=f64)


@pytest.mark.parametrize("cin, cout, stride", [(3, 3, 1), (3, 4, 2)], ids=["identity", "projection"])
def test_residual_block_gradients_match_numerical(cin, cout, stride, rng):
    res = gradcheck(basic_block(rng, cin, cout, stride), rng.standard_normal((2, cin, 5, 5)))
    assert res.passed(1e-6), str(res)


@pytest.mark.parametrize("cin, cout, stride", [(3, 3, 1), (3, 4, 2)], ids=["identity", "projection"])
def test_residual_block_matches_torch(cin, cout, stride, rng):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    ours = basic_block(rng, cin, cout, stride)
    body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)).double()
    short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)).double()
             if stride != 1 or cin != cout else nn.Identity())
    with torch.no_grad():
        body[0].weight.copy_(torch.tensor(ours.body["conv1"].params["W"]))
        body[3].weight.copy_(torch.tensor(ours.body["conv2"].params["W"]))
        if ours.shortcut is not None:
            short[0].weight.copy_(torch.tensor(ours.shortcut["conv"].params["W"]))
    x = rng.standard_normal((2, cin, 6, 6))
    dout = rng.standard_normal((2, cout, 6 // stride, 6 // stride))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.relu(body(tx) + short(tx))
    ty.backward(torch.tensor(dout))
    np.testing.assert_allclose(ours.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.body["conv1"].grads["W"], body[0].weight.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_residual_refuses_a_body_that_changes_the_shape_without_a_projection(rng):
    layer = Residual(Conv2D(2, 4, 3, padding=1, rng=rng, dtype=f64), dtype=f64)
    with pytest.raises(ValueError, match=r"projection shortcut.*expected body \(1, 4, 3, 3\), got shortcut \(1, 2, 3, 3\)"):
        layer.forward(np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"expected body \(4, 3, 3\), got shortcut \(2, 3, 3\)"):
        layer.output_shape((2, 3, 3))


def test_residual_parameters_are_named_body_and_shortcut(rng):
    names = [n for n, _ in basic_block(rng, 2, 4, 2).named_parameters()]
    assert names[:2] == ["body.conv1.W", "body.bn1.gamma"] and names[-3:] == ["shortcut.conv.W", "shortcut.bn.gamma",
                                                                             "shortcut.bn.beta"]


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels(rng):
    x = rng.standard_normal((2, 2, 5, 4))
    out = ZeroPadShortcut(2, 5, stride=2, dtype=f64).forward(x)
    assert out.shape == (2, 5, 3, 2)
    np.testing.assert_array_equal(out[:, :2], x[:, :, ::2, ::2])
    assert np.all(out[:, 2:] == 0)


def test_zero_pad_shortcut_gradients_match_numerical(rng):
    assert gradcheck(ZeroPadShortcut(2, 4, 2, dtype=f64), rng.standard_normal((2, 2, 5, 4))).passed(1e-6)


def test_infer_shape_follows_a_network_without_computing(rng):
    net = Sequential(Conv2D(1, 4, 3, 2, rng=rng), ReLU(), MaxPool2D(2, 2), Flatten(), Linear(4 * 3 * 3, 5, rng=rng))
    assert infer_shape(net, (1, 13, 13)) == (5,)


def test_infer_shape_names_the_linear_that_cannot_take_the_features(rng):
    net = Sequential(Flatten(), Linear(10, 5, rng=rng))
    with pytest.raises(ValueError, match=re.escape("Linear(in_features=10, out_features=5): input features: expected (10,), got (12,)")):
        infer_shape(net, (3, 2, 2))
