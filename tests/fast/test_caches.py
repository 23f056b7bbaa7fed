"""Each fast layer's backward uses only what its own forward kept.

Two layers of the same fast class, forwards and backwards interleaved
(A forward, B forward, B backward, A backward): each must give exactly what
it gives alone, and what its reference twin gives. With the old design
(one class, state left on the layer by whichever path ran) this is the
kind of sequence that went wrong.
"""
import numpy as np
import pytest

from tinyalex.fast import (CudaConv2D, CudaLRN, CudaMaxPool2D, CudaReLU, FastBatchNorm2d, FastConv2D, FastLinear, FastLRN,
                           FastMaxPool2D, FastReLU, WinogradConv2D)
from tinyalex.layers import LRN, BatchNorm2d, Conv2D, Linear, MaxPool2D, ReLU

from .pairs import run, twins

f64 = np.float64
# (fast class, reference class, constructor arguments, input shapes of A and B)
LAYERS = [
    (FastConv2D, Conv2D, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2),
     (2, 4, 7, 7), (3, 4, 5, 6)),
    (WinogradConv2D, Conv2D, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1), (2, 4, 7, 7),
     (1, 4, 9, 5)),
    (FastLRN, LRN, dict(alpha=0.5), (2, 7, 3, 4), (3, 5, 2, 2)),
    (FastMaxPool2D, MaxPool2D, dict(kernel_size=3, stride=2), (2, 3, 9, 9), (1, 2, 7, 11)),
    (FastReLU, ReLU, {}, (2, 3, 4, 5), (4, 6)),
    (FastLinear, Linear, dict(in_features=7, out_features=5), (4, 7), (2, 7)),
    (FastBatchNorm2d, BatchNorm2d, dict(num_features=3), (2, 3, 4, 5), (3, 3, 2, 6)),
    (CudaConv2D, Conv2D, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2),
     (2, 4, 7, 7), (3, 4, 5, 6)),
    (CudaLRN, LRN, dict(alpha=0.5), (2, 7, 3, 4), (3, 5, 2, 2)),
    (CudaMaxPool2D, MaxPool2D, dict(kernel_size=3, stride=2), (2, 3, 9, 9), (1, 2, 7, 11)),
    (CudaReLU, ReLU, {}, (2, 3, 4, 5), (4, 6)),
]


def needs_rng(ref_cls):
    return ref_cls in (Conv2D, Linear)


@pytest.mark.parametrize("fast_cls,ref_cls,kwargs,shape_a,shape_b", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_interleaved_layers_each_backpropagate_their_own_forward(fast_cls, ref_cls, kwargs, shape_a, shape_b, rng):
    made = []
    for _ in range(2):
        extra = dict(rng=rng) if needs_rng(ref_cls) else {}
        made.append(twins(fast_cls, ref_cls, **kwargs, **extra, dtype=f64))
    (a, ref_a), (b, ref_b) = made
    xa, xb = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    out_a, out_b = a.forward(xa), b.forward(xb)
    da, db = rng.standard_normal(out_a.shape), rng.standard_normal(out_b.shape)
    dx_b = b.backward(db)
    grads_b = {k: v.copy() for k, v in b.grads.items()}
    dx_a = a.backward(da)
    for out, ref, x, d, dx, grads in ((out_a, ref_a, xa, da, dx_a, a.grads), (out_b, ref_b, xb, db, dx_b, grads_b)):
        want_out, want_dx, want_grads = run(ref, x, d)
        np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-12)
        for k in want_grads:
            np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("fast_cls,ref_cls,kwargs,shape_a,shape_b", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_backward_follows_the_last_forward_after_a_shape_change(fast_cls, ref_cls, kwargs, shape_a, shape_b, rng):
    extra = dict(rng=rng) if needs_rng(ref_cls) else {}
    layer, ref = twins(fast_cls, ref_cls, **kwargs, **extra, dtype=f64)
    layer.forward(rng.standard_normal(shape_a))
    x = rng.standard_normal(shape_b)
    out = layer.forward(x)
    d = rng.standard_normal(out.shape)
    dx = layer.backward(d)
    _, want_dx, want_grads = run(ref, x, d)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-12)
    for k in want_grads:
        np.testing.assert_allclose(layer.grads[k], want_grads[k], rtol=1e-10, atol=1e-12, err_msg=k)
