"""AvgPool2d and GlobalAvgPool2d: window means, the padding's zeros counted, as PyTorch."""
import re

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import AvgPool2d, GlobalAvgPool2d

f64 = np.float64

CONFIGS = [((2, 2), None, 0), ((3, 3), (2, 2), 0), ((3, 3), (1, 1), 1), ((5, 5), (3, 3), 0), ((3, 2), (2, 1), (1, 0))]
IDS = ["2/2", "3/2 overlapping", "3/1 pad 1", "5/3 (GoogLeNet's aux heads)", "3x2 stride (2,1) pad (1,0)"]


@pytest.mark.parametrize("k, s, p", CONFIGS, ids=IDS)
def test_avgpool_gradients_match_numerical(k, s, p, rng):
    res = gradcheck(AvgPool2d(k, s, p, dtype=f64), rng.standard_normal((2, 3, 8, 7)))
    assert res.passed(1e-6), str(res)


@pytest.mark.parametrize("k, s, p", CONFIGS, ids=IDS)
def test_avgpool_matches_torch_forward_and_backward(k, s, p, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 8, 7))
    layer = AvgPool2d(k, s, p, dtype=f64)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.avg_pool2d(tx, k, s if s is not None else k, p)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_avgpool_known_answer_counts_padding_zeros():
    x = np.ones((1, 1, 2, 2))
    out = AvgPool2d(3, 1, 1, dtype=f64).forward(x)
    np.testing.assert_allclose(out[0, 0], np.full((2, 2), 4 / 9))     # 4 ones and 5 padding zeros per window


def test_avgpool_stride_defaults_to_kernel_size():
    assert AvgPool2d(2).stride == (2, 2)
    assert AvgPool2d(2).output_shape((3, 8, 8)) == (3, 4, 4)


def test_avgpool_window_larger_than_input_raises_naming_shapes():
    with pytest.raises(ValueError, match=re.escape("AvgPool2d(kernel_size=(5, 5), stride=(3, 3)): padded input at least "
                                                   "as large as the window: expected H+2p >= 5, W+2p >= 5, got 4x4")):
        AvgPool2d(5, 3).forward(np.zeros((1, 2, 4, 4), np.float32))


def test_global_avgpool_is_the_mean_of_each_map_for_any_size(rng):
    for shape in [(2, 3, 7, 7), (1, 4, 5, 2)]:
        x = rng.standard_normal(shape)
        out = GlobalAvgPool2d(f64).forward(x)
        assert out.shape == shape[:2] + (1, 1)
        np.testing.assert_allclose(out[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-14)


def test_global_avgpool_gradients_match_numerical(rng):
    assert gradcheck(GlobalAvgPool2d(f64), rng.standard_normal((2, 3, 4, 5))).passed(1e-6)


def test_global_avgpool_matches_torch_adaptive_avg_pool(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 7, 6))
    layer = GlobalAvgPool2d(f64)
    dout = rng.standard_normal((2, 3, 1, 1))
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.adaptive_avg_pool2d(tx, 1).backward(torch.tensor(dout))
    np.testing.assert_allclose(layer.forward(x), torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), 1).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-12)


def test_global_avgpool_refuses_a_flat_input():
    with pytest.raises(ValueError, match=r"GlobalAvgPool2d.*expected rank 4, got shape \(2, 3\)"):
        GlobalAvgPool2d().forward(np.zeros((2, 3), np.float32))
