"""End-to-end gradient check of a tiny AlexNet (float64, sampled entries), grouped and split."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.models import build_model

TINY = dict(width=0.125, input_shape=(1, 20, 20), dtype=np.float64, seed=2, num_classes=5,
            lrn_alpha=0.05)   # a large alpha, so LRN's cross-channel term is really exercised


def _fixed_masks(net, n):
    rng = np.random.default_rng(7)
    for name, shape in net.output_shapes().items():
        if name.startswith("drop"):
            m = rng.random((n, shape[0])) >= 0.5
            step = getattr(net, name)
            if net.split:
                k = shape[0] - shape[0] // 2            # tower A's share
                step.A.set_mask(m[:, :k])
                step.B.set_mask(m[:, k:])
            else:
                step.set_mask(m)


# h = 1e-6 with ReLU: a step of 1e-5 on a bias moves many pre-activations at once and
# sometimes carries one across ReLU's kink (or swaps a max-pool winner), which is a
# property of the function, not a wrong backward. tanh is smooth and takes the usual 1e-5.
@pytest.mark.parametrize("activation,h", [("relu", 1e-6), ("tanh", 1e-5)])
@pytest.mark.parametrize("devices", [None, (0, 1)])
def test_tiny_alexnet_backward_matches_central_differences(devices, activation, h):
    net = build_model("alexnet-small", devices=devices, activation=activation, **TINY).train()
    x = np.random.default_rng(0).standard_normal((2, 1, 20, 20))
    _fixed_masks(net, 2)
    res = gradcheck(net, x, max_entries=6, seed=0, h=h)
    assert set(res.errors) >= {"x", "conv1.W" if devices is None else "conv1.A.W"}
    assert res.passed(1e-6), str(res)


def test_gradcheck_of_the_model_catches_a_wrong_layer_gradient():
    """The end-to-end check is not vacuous: a 1% error planted in conv4's backward is found."""
    net = build_model("alexnet-small", **TINY).eval()
    conv4 = net.conv4
    real = conv4.backward
    conv4.backward = lambda dout: real(dout) * 1.01
    x = np.random.default_rng(0).standard_normal((2, 1, 20, 20))
    res = gradcheck(net, x, max_entries=6, seed=0)
    assert not res.passed(1e-6)


@pytest.mark.parametrize("devices", [None, (0, 1)])
def test_tiny_alexnet_with_batch_norm_backward_matches_central_differences(devices):
    net = build_model("alexnet-small", devices=devices, batchnorm=True, lrn=False, **TINY).train()
    x = np.random.default_rng(0).standard_normal((3, 1, 20, 20))
    _fixed_masks(net, 3)
    res = gradcheck(net, x, max_entries=6, seed=0, h=1e-6)
    assert set(res.errors) >= {"bn2.gamma" if devices is None else "bn2.A.gamma"}
    # a conv's bias is cancelled by the mean its batch norm subtracts: its true gradient is 0, and
    # the relative error of two round-off-sized numbers means nothing, so those are checked for size
    biases = [k for k in res.errors if k.startswith("conv") and k.endswith(".b")]
    assert all(abs(g).max() < 1e-12 for k, g in net.named_gradients() if k in biases)
    assert max(e for k, e in res.errors.items() if k not in biases) < 1e-6, str(res)
