"""FastBatchNorm2d (tinyalex/fast/normalization.py) computes what the reference BatchNorm2d computes.

Same output, input gradient, gamma and beta gradients and running
statistics, in training and in evaluation, float64 and float32, NumPy and
the device stand-in, for batches split into several cache-sized chunks and
for a batch of one; float64 gradient check; the input and dout are never
written; the same bits on every run.
"""
import numpy as np
import pytest

from placement import put
from tinyalex import backend as B
from tinyalex.fast import FastBatchNorm2d, implementations
from tinyalex.fast import normalization as fast_normalization
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import BatchNorm2d

from .pairs import assert_same, twins


def _with_stats(fast, ref, rng, dtype):
    """Both twins get the same non-trivial gamma, beta and running statistics."""
    C = fast.num_features
    state = {"gamma": rng.uniform(0.5, 2, C), "beta": rng.standard_normal(C),
             "running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2, C)}
    state = {k: v.astype(dtype) for k, v in state.items()}
    fast.load_state_dict(state)
    ref.load_state_dict(state)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 5, 1, 1), (1, 2, 3, 3)])
def test_fast_batchnorm_equals_reference(shape, training, dtype, place, rng):
    fast, ref = twins(FastBatchNorm2d, BatchNorm2d, shape[1], dtype=dtype)
    _with_stats(fast, ref, rng, dtype)
    for layer in (fast, ref):
        layer.train() if training else layer.eval()
    x = (3 * rng.standard_normal(shape) + 1).astype(dtype)
    assert_same(fast, ref, x, rng, place)
    for k in ("running_mean", "running_var"):
        np.testing.assert_allclose(B.to_host(fast.buffers[k]), B.to_host(ref.buffers[k]), rtol=1e-6, err_msg=k)


def test_fast_batchnorm_equals_reference_over_many_chunks(monkeypatch, rng):
    """A batch of 16 images in chunks of 64 bytes: 16 chunks, each its own partial sums."""
    monkeypatch.setattr(fast_normalization, "CHUNK_BYTES", 64)
    fast, ref = twins(FastBatchNorm2d, BatchNorm2d, 3, dtype=np.float64)
    _with_stats(fast, ref, rng, np.float64)
    assert_same(fast, ref, rng.standard_normal((16, 3, 4, 4)), rng)


@pytest.mark.parametrize("training", [True, False])
def test_fast_batchnorm_gradients_match_numerical(training, place, rng):
    layer = FastBatchNorm2d(3, dtype=np.float64)
    layer.load_state_dict({"gamma": rng.uniform(0.5, 2, 3), "beta": rng.standard_normal(3),
                           "running_mean": rng.standard_normal(3), "running_var": rng.uniform(0.5, 2, 3)})
    layer.train() if training else layer.eval()
    (x,) = put(place, layer, (rng.standard_normal((4, 3, 3, 2)),))
    assert gradcheck(layer, x).passed(1e-6)


def test_fast_batchnorm_does_not_modify_input_or_dout(rng):
    layer = FastBatchNorm2d(3, dtype=np.float64)
    x, dout = rng.standard_normal((4, 3, 5, 5)), rng.standard_normal((4, 3, 5, 5))
    x0, d0 = x.copy(), dout.copy()
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, d0)


def test_fast_batchnorm_gives_the_same_bits_on_every_run(monkeypatch, rng):
    """Partial sums are added in chunk order, not in the order threads finish."""
    monkeypatch.setattr(fast_normalization, "CHUNK_BYTES", 256)
    x = rng.standard_normal((32, 4, 6, 6)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for _ in range(3):
        layer = FastBatchNorm2d(4)
        out = layer.forward(x)
        dx = layer.backward(dout)
        results.append((out, dx, layer.grads["gamma"], layer.buffers["running_var"].copy()))
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)


def test_fast_batchnorm_wrong_channels_raise_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(2, 4, 5, 5\)"):
        FastBatchNorm2d(3).forward(np.zeros((2, 4, 5, 5), np.float32))


def test_fast_batchnorm_training_refuses_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        FastBatchNorm2d(3).forward(np.zeros((1, 3, 1, 1), np.float32))


def test_implementations_give_fast_batchnorm_on_the_cpu_and_the_reference_elsewhere():
    assert implementations(fast=True).BatchNorm2d is FastBatchNorm2d
    assert implementations(fast=False).BatchNorm2d is BatchNorm2d
    assert implementations(fast=True, backend="standin").BatchNorm2d is BatchNorm2d
