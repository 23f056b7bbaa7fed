"""Conv2D: gradient checks for every option, known answers, groups as towers, bad input."""
import re

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Conv2D, col2im, im2col

f64 = np.float64


def naive_conv(x, W, b, stride, padding, groups):
    """The definition, one multiply-add at a time (six nested loops)."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    out = np.zeros((N, F, Ho, Wo))
    Fg = F // groups
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for y in range(Ho):
                for xx in range(Wo):
                    s = b[f]
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                s += W[f, c, i, j] * xp[n, g * Cg + c, y * sh + i, xx * sw + j]
                    out[n, f, y, xx] = s
    return out


# (description, Conv2D kwargs, input shape)
CONFIGS = [
    ("3x3", dict(in_channels=3, out_channels=4, kernel_size=3), (2, 3, 5, 5)),
    ("stride 2", dict(in_channels=3, out_channels=4, kernel_size=3, stride=2), (2, 3, 7, 7)),
    ("padding 1", dict(in_channels=3, out_channels=4, kernel_size=3, padding=1), (2, 3, 5, 5)),
    ("padding 2 stride 2", dict(in_channels=2, out_channels=3, kernel_size=5, stride=2, padding=2), (1, 2, 7, 6)),
    ("groups 2", dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2), (2, 4, 5, 5)),
    ("groups 4", dict(in_channels=4, out_channels=8, kernel_size=3, groups=4), (2, 4, 5, 6)),
    ("non-square kernel 3x2", dict(in_channels=3, out_channels=4, kernel_size=(3, 2)), (2, 3, 6, 5)),
    ("non-square kernel 1x4, stride (2, 1)", dict(in_channels=2, out_channels=3, kernel_size=(1, 4), stride=(2, 1)), (2, 2, 5, 7)),
    ("non-square input", dict(in_channels=2, out_channels=3, kernel_size=3, padding=(1, 0)), (2, 2, 5, 9)),
    ("kernel == padded input", dict(in_channels=2, out_channels=3, kernel_size=5, padding=1), (2, 2, 3, 3)),
    ("stride leaves a remainder", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2), (2, 2, 8, 8)),
    ("1x1 kernel", dict(in_channels=3, out_channels=2, kernel_size=1), (2, 3, 4, 4)),
    ("AlexNet conv1 shape, 11x11 stride 4", dict(in_channels=3, out_channels=2, kernel_size=11, stride=4), (1, 3, 19, 19)),
]
IDS = [c[0] for c in CONFIGS]


def make(kwargs, rng, dtype=f64):
    return Conv2D(**kwargs, bias_init=0.1, rng=rng, dtype=dtype)


@pytest.mark.parametrize("desc, kwargs, shape", CONFIGS, ids=IDS)
def test_conv_gradients_match_numerical(desc, kwargs, shape, rng):
    layer = make(kwargs, rng)
    res = gradcheck(layer, rng.standard_normal(shape))
    assert set(res.errors) == {"x", "W", "b"}
    assert res.passed(1e-6), f"{desc}:\n{res}"


@pytest.mark.parametrize("desc, kwargs, shape", CONFIGS, ids=IDS)
def test_conv_forward_matches_naive_loops(desc, kwargs, shape, rng):
    layer = make(kwargs, rng)
    layer.params["b"] = rng.standard_normal(layer.params["b"].shape)
    x = rng.standard_normal(shape)
    ref = naive_conv(x, layer.params["W"], layer.params["b"], layer.stride, layer.padding, layer.groups)
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("desc, kwargs, shape", CONFIGS, ids=IDS)
def test_conv_forward_and_backward_match_torch(desc, kwargs, shape, rng):
    torch = pytest.importorskip("torch")
    layer = make(kwargs, rng)
    x = rng.standard_normal(shape)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tW = torch.tensor(layer.params["W"], requires_grad=True)
    tb = torch.tensor(layer.params["b"], requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tW, tb, stride=layer.stride, padding=layer.padding, groups=layer.groups)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tW.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_output_shapes_follow_alexnet():
    assert Conv2D(3, 96, 11, stride=4).output_shape((3, 227, 227)) == (96, 55, 55)
    assert Conv2D(96, 256, 5, padding=2, groups=2).output_shape((96, 27, 27)) == (256, 27, 27)
    assert Conv2D(256, 384, 3, padding=1).output_shape((256, 13, 13)) == (384, 13, 13)


def test_conv_weight_layout_is_pytorchs():
    layer = Conv2D(48, 128, 5, groups=2)
    assert layer.params["W"].shape == (128, 24, 5, 5)      # (out, in/groups, kh, kw)
    assert layer.params["b"].shape == (128,)


def test_conv_default_init_is_he_and_weight_std_overrides(rng):
    he = Conv2D(64, 256, 3, rng=rng).params["W"]
    assert he.std() == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.05)
    paper = Conv2D(64, 256, 3, weight_std=0.01, bias_init=1.0, rng=rng)
    assert paper.params["W"].std() == pytest.approx(0.01, rel=0.05)
    assert np.all(paper.params["b"] == 1.0)


def test_conv_groups_2_equals_two_separate_convolutions_on_channel_halves(rng):
    """The paper's two towers: each half of the filters sees only its half of the input."""
    layer = Conv2D(4, 6, 3, padding=1, groups=2, rng=rng, dtype=f64)
    x = rng.standard_normal((2, 4, 5, 5))
    halves = []
    for g in range(2):
        tower = Conv2D(2, 3, 3, padding=1, dtype=f64)
        tower.params["W"] = layer.params["W"][3 * g:3 * g + 3]
        tower.params["b"] = layer.params["b"][3 * g:3 * g + 3]
        halves.append(tower.forward(x[:, 2 * g:2 * g + 2]))
    np.testing.assert_allclose(layer.forward(x), np.concatenate(halves, axis=1), rtol=1e-12)


def test_conv_input_rows_skipped_by_the_stride_get_zero_gradient(rng):
    layer = Conv2D(1, 1, 3, stride=2, rng=rng, dtype=f64)
    x = rng.standard_normal((1, 1, 8, 8))           # windows cover rows/cols 0..6 only
    dx = layer.backward(np.ones(layer.forward(x).shape))
    assert np.all(dx[..., 7, :] == 0) and np.all(dx[..., :, 7] == 0)
    assert np.all(dx[..., 6, :6] != 0)


def test_conv_accepts_non_contiguous_input(rng):
    layer = Conv2D(3, 4, 3, rng=rng, dtype=f64)
    base = rng.standard_normal((2, 3, 6, 5))
    view = base.transpose(0, 1, 3, 2)[:, :, ::-1]       # a strided, reversed view
    np.testing.assert_allclose(layer.forward(view), layer.forward(np.ascontiguousarray(view)), rtol=1e-12)


@pytest.mark.parametrize("groups", [1, 2])
def test_col2im_is_the_adjoint_of_im2col(groups, rng):
    """<im2col(x), c> == <x, col2im(c)> for all x, c: col2im is exactly im2col transposed."""
    shape, k, s, p = (2, 4, 7, 6), (3, 2), (2, 1), (1, 2)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, p, groups)
    c = rng.standard_normal(cols.shape)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, col2im(c, shape, k, s, p, groups)), rel=1e-12)


def test_im2col_columns_are_receptive_fields():
    x = np.arange(2 * 1 * 3 * 3, dtype=f64).reshape(2, 1, 3, 3)
    cols = im2col(x, (2, 2), (1, 1), (0, 0))
    assert cols.shape == (1, 4, 2 * 2 * 2)
    np.testing.assert_array_equal(cols[0, :, 0], [0, 1, 3, 4])        # image 0, top-left window
    np.testing.assert_array_equal(cols[0, :, 7], [13, 14, 16, 17])    # image 1, bottom-right window


# -- bad input ------------------------------------------------------------------
def test_conv_wrong_rank_raises_naming_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2D\(3, 4.*expected rank 4, got shape \(3, 5, 5\)"):
        Conv2D(3, 4, 3).forward(np.zeros((3, 5, 5), np.float32))


def test_conv_wrong_channel_count_raises_naming_both_counts():
    with pytest.raises(ValueError, match=r"Conv2D\(3, 4.*expected 3, got 2 \(shape \(1, 2, 5, 5\)\)"):
        Conv2D(3, 4, 3).forward(np.zeros((1, 2, 5, 5), np.float32))


def test_conv_kernel_larger_than_padded_input_raises():
    with pytest.raises(ValueError, match=re.escape("padded input at least as large as the kernel: expected H+2p >= 7, W+2p >= 7, got 6x8")):
        Conv2D(1, 1, 7, padding=1).forward(np.zeros((1, 1, 4, 6), np.float32))


def test_conv_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"groups=4 must divide in_channels=4 and out_channels=6"):
        Conv2D(4, 6, 3, groups=4)


def test_conv_rejects_zero_stride():
    with pytest.raises(ValueError, match=r"stride >= 1"):
        Conv2D(1, 1, 3, stride=0)


def test_conv_backward_before_forward_raises():
    with pytest.raises(ValueError, match=r"Conv2D.*backward\(\) called before forward\(\)"):
        Conv2D(1, 1, 3).backward(np.zeros((1, 1, 1, 1), np.float32))


def test_conv_dout_of_wrong_spatial_size_raises_naming_both_shapes(rng):
    layer = Conv2D(2, 3, 3, dtype=f64)
    layer.forward(rng.standard_normal((2, 2, 5, 5)))
    with pytest.raises(ValueError, match=re.escape("expected (2, 3, 3, 3), got (2, 3, 3, 4)")):
        layer.backward(np.zeros((2, 3, 3, 4)))


def test_conv_accepts_numpy_integer_sizes():
    layer = Conv2D(np.int64(3), 4, np.int64(3), stride=(np.int32(2), 1), padding=np.int64(1))
    assert layer.kernel_size == (3, 3) and layer.stride == (2, 1) and layer.padding == (1, 1)


@pytest.mark.parametrize("bad", [(3, 3, 3), 2.5, "3", (3.0, 3)])
def test_conv_rejects_a_kernel_size_that_is_not_an_int_or_pair(bad):
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a pair \(h, w\) of ints"):
        Conv2D(1, 1, bad)


def test_conv_rejects_zero_channels():
    with pytest.raises(ValueError, match=r"in_channels and out_channels must be >= 1, got 0, 4"):
        Conv2D(0, 4, 3)
