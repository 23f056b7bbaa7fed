"""The same split code on CuPy: skipped (with the reason) where CuPy or a GPU is missing."""
import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.gradcheck import rel_error
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.models import build_model, merge_state_dict

pytestmark = pytest.mark.gpu
SMALL = dict(width=0.25, dtype=np.float64, seed=3)


def _cupy_devices():
    try:
        cp = B._import_cupy()
    except B.BackendError as exc:
        pytest.skip(f"CuPy backend unavailable: {exc}")
    return cp.cuda.runtime.getDeviceCount()


def _step(net, x, y):
    dev = net.input_device
    x, y = B.to_device(x, dev, net.backend), B.to_device(y, dev, net.backend)
    loss = SoftmaxCrossEntropy(np.float64)
    logits = net.forward(x)
    with B.device(dev):
        L = loss.forward(logits, y)
        dlogits = loss.backward()
    dx = net.backward(dlogits)
    grads = dict(net.named_gradients())
    if net.split:
        grads = merge_state_dict(grads)
    return B.to_host(logits), L.item(), B.to_host(dx), {k: B.to_host(g) for k, g in grads.items()}


@pytest.mark.parametrize("two", [False, True], ids=["devices (0, 0)", "devices (0, 1)"])
def test_split_on_cupy_equals_grouped_numpy(two):
    n = _cupy_devices()
    if two and n < 2:
        pytest.skip(f"needs two CUDA devices, found {n}")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4)
    ref = _step(build_model("alexnet-small", **SMALL).eval(), x, y)
    with B.use_backend("cupy"):
        net = build_model("alexnet-small", devices=(0, 1) if two else (0, 0), **SMALL).eval()
        got = _step(net, x, y)
    assert rel_error(ref[0], got[0]) < 1e-6 and rel_error(ref[2], got[2]) < 1e-6
    for k in ref[3]:
        assert rel_error(ref[3][k], got[3][k]) < 1e-6, k
    if two:
        assert net.transfer_bytes > 0
    else:
        assert net.transfer_bytes == 0
