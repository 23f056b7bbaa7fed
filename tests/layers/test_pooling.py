"""MaxPool2D: overlapping (3/2) and plain (2/2) pooling, ties routed to the first maximum."""
import re

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import MaxPool2D

f64 = np.float64


def distinct(rng, shape):
    """Values 0.1 apart in random order: no ties, and a 1e-5 step never changes a winner."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1


def pool_loop(x, k, s):
    """Reference: forward by loops, backward sends each window's gradient to its first max."""
    (kh, kw), (sh, sw) = k, s
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((N, C, Ho, Wo))
    first = {}
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    win = x[n, c, y * sh:y * sh + kh, xx * sw:xx * sw + kw]
                    i, j = np.unravel_index(np.argmax(win), win.shape)   # argmax: first in row-major order
                    out[n, c, y, xx] = win[i, j]
                    first[n, c, y, xx] = (n, c, y * sh + i, xx * sw + j)
    return out, first


def pool_loop_backward(x_shape, first, dout):
    dx = np.zeros(x_shape)
    for pos, src in first.items():
        dx[src] += dout[pos]
    return dx


CONFIGS = [((3, 3), (2, 2)), ((2, 2), (2, 2)), ((3, 2), (2, 1)), ((2, 3), (1, 3)), ((3, 3), (1, 1))]
IDS = ["3/2 overlapping", "2/2", "3x2 window stride (2,1)", "2x3 window stride (1,3)", "3/1"]


@pytest.mark.parametrize("k, s", CONFIGS, ids=IDS)
def test_maxpool_gradients_match_numerical_without_ties(k, s, rng):
    x = distinct(rng, (2, 3, 7, 8))
    assert gradcheck(MaxPool2D(k, s, dtype=f64), x).passed(1e-6)


@pytest.mark.parametrize("k, s", CONFIGS, ids=IDS)
def test_maxpool_matches_loop_reference(k, s, rng):
    x = rng.integers(0, 4, (2, 3, 7, 8)).astype(f64)        # many ties
    layer = MaxPool2D(k, s, dtype=f64)
    out = layer.forward(x)
    ref, first = pool_loop(x, k, s)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), pool_loop_backward(x.shape, first, dout), rtol=1e-14)


@pytest.mark.parametrize("k, s", CONFIGS, ids=IDS)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_maxpool_matches_torch_forward_and_backward(k, s, ties, rng):
    torch = pytest.importorskip("torch")
    x = rng.integers(0, 3, (2, 3, 7, 8)).astype(f64) if ties else distinct(rng, (2, 3, 7, 8))
    layer = MaxPool2D(k, s, dtype=f64)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, k, s)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-14)


def test_maxpool_tie_routes_to_first_max_on_constant_input():
    """Every window of a constant image is all ties: its gradient goes to its top-left pixel."""
    x = np.ones((1, 1, 5, 5))
    layer = MaxPool2D(3, 2, dtype=f64)
    layer.forward(x)
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    expected = np.zeros((5, 5))
    expected[[0, 0, 2, 2], [0, 2, 0, 2]] = 1.0
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_maxpool_tie_routes_to_first_max_in_row_major_order():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 0, 2] = x[0, 0, 1, 0] = x[0, 0, 2, 1] = 5.0     # three tied maxima
    layer = MaxPool2D(3, 3, dtype=f64)
    assert layer.forward(x)[0, 0, 0, 0] == 5.0
    dx = layer.backward(np.full((1, 1, 1, 1), 2.0))
    assert dx[0, 0, 0, 2] == 2.0 and dx.sum() == 2.0         # (0, 2) comes first in row-major order


def test_maxpool_overlapping_windows_accumulate_gradient():
    """A maximum shared by overlapping windows collects the gradient of every window it wins."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 9.0                       # the centre lies in all four 3x3/2 windows
    layer = MaxPool2D(3, 2, dtype=f64)
    np.testing.assert_array_equal(layer.forward(x), np.full((1, 1, 2, 2), 9.0))
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert dx[0, 0, 2, 2] == 10.0 and dx.sum() == 10.0


def test_maxpool_output_sizes_follow_alexnet():
    layer = MaxPool2D(3, 2)
    assert layer.output_shape((96, 55, 55)) == (96, 27, 27)
    assert layer.output_shape((256, 27, 27)) == (256, 13, 13)
    assert layer.output_shape((256, 13, 13)) == (256, 6, 6)
    assert MaxPool2D(2, 2).output_shape((96, 55, 55)) == (96, 27, 27)   # the ablation keeps the size


def test_maxpool_window_larger_than_input_raises_naming_shapes():
    with pytest.raises(ValueError, match=re.escape("expected H >= 3, W >= 3, got 2x5")):
        MaxPool2D(3, 2).forward(np.zeros((1, 1, 2, 5), np.float32))


def test_maxpool_wrong_rank_raises():
    with pytest.raises(ValueError, match=r"MaxPool2D.*expected rank 4, got shape \(5, 5\)"):
        MaxPool2D().forward(np.zeros((5, 5), np.float32))


def test_maxpool_dout_of_wrong_shape_raises(rng):
    layer = MaxPool2D(2, 2, dtype=f64)
    layer.forward(rng.standard_normal((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=re.escape("expected (1, 2, 2, 2), got (1, 2, 2, 3)")):
        layer.backward(np.zeros((1, 2, 2, 3)))


def test_maxpool_window_larger_than_255_pixels_works_by_default(rng):
    """The fast path stores window offsets in uint8; a 16x16 window still pools (via the reference path)."""
    x = distinct(rng, (1, 2, 33, 32))
    layer = MaxPool2D(16, 16, dtype=f64)
    out = layer.forward(x)
    ref, first = pool_loop(x, (16, 16), (16, 16))
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(dout), pool_loop_backward(x.shape, first, dout))
