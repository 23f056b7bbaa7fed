"""BatchNorm1d/2d: batch statistics in training, running averages in evaluation, as PyTorch; WithoutBias."""
import re

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import BatchNorm1d, BatchNorm2d, Conv2D, Sequential, WithoutBias

f64 = np.float64


def with_affine(layer, rng):
    """gamma and beta away from 1 and 0, so a backward that ignores them fails."""
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, layer.num_features)
    layer.params["beta"][...] = rng.standard_normal(layer.num_features)
    return layer


@pytest.mark.parametrize("layer_cls, shape", [(BatchNorm2d, (3, 4, 5, 2)), (BatchNorm1d, (6, 4)),
                                              (BatchNorm1d, (3, 4, 5))], ids=["2d", "1d (N, C)", "1d (N, C, L)"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_gradients_match_numerical(layer_cls, shape, mode, rng):
    layer = with_affine(layer_cls(4, dtype=f64), rng)
    layer.buffers["running_mean"][...] = rng.standard_normal(4)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, 4)
    layer.train(mode == "train")
    res = gradcheck(layer, rng.standard_normal(shape) * 3 + 1)
    assert set(res.errors) == {"x", "gamma", "beta"}
    assert res.passed(1e-6), str(res)


def test_batchnorm_training_output_has_zero_mean_unit_variance_per_channel(rng):
    x = rng.standard_normal((8, 3, 4, 4)) * 5 + 2
    y = BatchNorm2d(3, eps=0.0 + 1e-12, dtype=f64).forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-9)


def test_batchnorm_running_averages_follow_pytorch_momentum_and_unbiased_variance(rng):
    layer = BatchNorm1d(2, momentum=0.25, dtype=f64)
    x = rng.standard_normal((5, 2))
    layer.forward(x)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.25 * x.mean(0))
    np.testing.assert_allclose(layer.buffers["running_var"], 0.75 + 0.25 * x.var(0, ddof=1))


def test_batchnorm_eval_uses_running_statistics_not_the_batch(rng):
    layer = BatchNorm2d(2, dtype=f64).eval()
    layer.buffers["running_mean"][...] = [1.0, -1.0]
    layer.buffers["running_var"][...] = [4.0, 0.25]
    x = rng.standard_normal((2, 2, 3, 3))
    expected = (x - np.array([1.0, -1.0])[:, None, None]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5)[:, None, None]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    np.testing.assert_array_equal(layer.forward(x[:1]), layer.forward(x)[:1])    # one image alone: same answer


@pytest.mark.parametrize("layer_cls, shape", [(BatchNorm2d, (4, 3, 5, 6)), (BatchNorm1d, (7, 3)),
                                              (BatchNorm1d, (4, 3, 5))], ids=["2d", "1d (N, C)", "1d (N, C, L)"])
def test_batchnorm_matches_torch_in_training_and_evaluation(layer_cls, shape, rng):
    torch = pytest.importorskip("torch")
    ours = with_affine(layer_cls(3, eps=1e-3, momentum=0.3, dtype=f64), rng)
    theirs = getattr(torch.nn, layer_cls.__name__)(3, eps=1e-3, momentum=0.3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.params["gamma"]))
        theirs.bias.copy_(torch.tensor(ours.params["beta"]))
    for step in range(3):                                     # three training steps, then evaluation
        x = rng.standard_normal(shape) * (step + 1) + step
        dout = rng.standard_normal(shape)
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        ty.backward(torch.tensor(dout))
        np.testing.assert_allclose(ours.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.grads["gamma"], theirs.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.grads["beta"], theirs.bias.grad.numpy(), rtol=1e-10)
        theirs.zero_grad()
    np.testing.assert_allclose(ours.buffers["running_mean"], theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.buffers["running_var"], theirs.running_var.numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    dout = rng.standard_normal(shape)
    ty.backward(torch.tensor(dout))
    np.testing.assert_allclose(ours.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_batchnorm_running_statistics_are_buffers_in_the_state_dict_not_parameters():
    net = Sequential(("bn1", BatchNorm2d(3)))
    assert [n for n, _ in net.named_parameters()] == ["bn1.gamma", "bn1.beta"]
    assert list(net.state_dict()) == ["bn1.gamma", "bn1.beta", "bn1.running_mean", "bn1.running_var"]
    assert net.num_parameters() == 6


def test_batchnorm_state_dict_round_trip_restores_evaluation_output(rng):
    a, b = BatchNorm2d(3, dtype=f64), BatchNorm2d(3, dtype=f64)
    a.forward(rng.standard_normal((4, 3, 2, 2)) * 3 + 1)        # moves a's running averages
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_array_equal(a.eval().forward(x), b.eval().forward(x))


def test_batchnorm_training_refuses_one_value_per_channel():
    with pytest.raises(ValueError, match=r"BatchNorm1d.*more than 1 value per channel.*\(1, 3\)"):
        BatchNorm1d(3).forward(np.zeros((1, 3), np.float32))


def test_batchnorm_wrong_channels_raise_naming_both_shapes():
    with pytest.raises(ValueError, match=re.escape("BatchNorm2d(4, eps=1e-05, momentum=0.1): input (N, 4, ...) of rank 4: "
                                                   "expected (N, 4, ...), got shape (2, 3, 5, 5)")):
        BatchNorm2d(4).forward(np.zeros((2, 3, 5, 5), np.float32))


def test_batchnorm1d_refuses_an_image_batch():
    with pytest.raises(ValueError, match=r"rank 2 or 3.*got shape \(2, 3, 4, 4\)"):
        BatchNorm1d(3).forward(np.zeros((2, 3, 4, 4), np.float32))


def test_without_bias_has_only_the_weight_and_matches_the_conv_with_zero_bias(rng):
    conv = Conv2D(3, 4, 3, padding=1, rng=rng, dtype=f64)
    layer = WithoutBias(conv)
    assert [n for n, _ in layer.named_parameters()] == ["W"] and layer.num_parameters() == 4 * 3 * 9
    x = rng.standard_normal((2, 3, 5, 5))
    ref = Conv2D(3, 4, 3, padding=1, bias_init=0.0, dtype=f64)
    ref.params["W"][...] = conv.params["W"]
    np.testing.assert_array_equal(layer.forward(x), ref.forward(x))
    res = gradcheck(layer, x)
    assert set(res.errors) == {"x", "W"} and res.passed(1e-6), str(res)


def test_without_bias_loading_a_state_reaches_the_convolution(rng):
    layer = WithoutBias(Conv2D(2, 2, 1, dtype=f64))
    layer.load_state_dict({"W": np.full((2, 2, 1, 1), 3.0)})
    np.testing.assert_array_equal(layer.conv.params["W"], 3.0)
