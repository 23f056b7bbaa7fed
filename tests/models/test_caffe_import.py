"""Import of bvlc_alexnet.npy, checked on a small synthetic file of the same layout against an
independent reference written here in the TensorFlow port's NHWC layout (HWC flattening before fc6,
Caffe's LRN: k=1, alpha/n per term, across all channels)."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tinyalex.models import load_caffe_alexnet
from tinyalex.models.caffe_import import caffe_to_state_dict

# a miniature bvlc_alexnet: the real kernel sizes and strides, few channels; 3x99x99 input
# gives conv1 23, pool1 11, conv2 11, pool2 5, conv3-5 5, pool5 2x2 (so HWC != CHW order)
CH = {"conv1": 8, "conv2": 12, "conv3": 16, "conv4": 16, "conv5": 8}
IN_SHAPE = (3, 99, 99)


def _synthetic_weights(seed=0, classes=7):
    rng = np.random.default_rng(seed)
    w = {}
    spec = [("conv1", 11, 3), ("conv2", 5, CH["conv1"] // 2), ("conv3", 3, CH["conv2"]),
            ("conv4", 3, CH["conv3"] // 2), ("conv5", 3, CH["conv4"] // 2)]
    for name, k, cin in spec:
        W = rng.standard_normal((k, k, cin, CH[name])) * np.sqrt(2.0 / (k * k * cin))
        w[name] = [W.astype(np.float32), (rng.standard_normal(CH[name]) * 0.1).astype(np.float32)]
    for name, fin, fout in [("fc6", CH["conv5"] * 4, 20), ("fc7", 20, 20), ("fc8", 20, classes)]:
        w[name] = [(rng.standard_normal((fin, fout)) * np.sqrt(2.0 / fin)).astype(np.float32),
                   (rng.standard_normal(fout) * 0.1).astype(np.float32)]
    return w


# ---- the independent reference, NHWC as in the TensorFlow port -------------------------
def _conv(x, W, b, stride, pad, groups):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw, cg, F = W.shape
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]   # (N, Ho, Wo, C, kh, kw)
    fg = F // groups
    outs = [np.einsum("nyxcij,ijcf->nyxf", win[:, :, :, g * cg:(g + 1) * cg], W[..., g * fg:(g + 1) * fg])
            for g in range(groups)]
    return np.concatenate(outs, axis=-1) + b


def _lrn_caffe(x, n=5, alpha=1e-4, beta=0.75, k=1.0):
    C = x.shape[-1]
    out = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - n // 2), min(C, c + n // 2 + 1)
        out[..., c] = x[..., c] / (k + alpha / n * (x[..., lo:hi] ** 2).sum(-1)) ** beta
    return out


def _pool(x):
    return sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))


def _reference_forward(w, x_nchw, k=1.0):
    w = {n: [a.astype(np.float64) for a in v] for n, v in w.items()}
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    h = x_nchw.transpose(0, 2, 3, 1)                                   # NHWC
    h = _pool(_lrn_caffe(relu(_conv(h, *w["conv1"], 4, 0, 1)), k=k))
    h = _pool(_lrn_caffe(relu(_conv(h, *w["conv2"], 1, 2, 2)), k=k))
    h = relu(_conv(h, *w["conv3"], 1, 1, 1))
    h = relu(_conv(h, *w["conv4"], 1, 1, 2))
    h = _pool(relu(_conv(h, *w["conv5"], 1, 1, 2)))
    h = h.reshape(h.shape[0], -1)                                      # HWC flattening
    h = relu(h @ w["fc6"][0] + w["fc6"][1])
    h = relu(h @ w["fc7"][0] + w["fc7"][1])
    return h @ w["fc8"][0] + w["fc8"][1]


@pytest.fixture
def caffe_file(tmp_path):
    path = tmp_path / "bvlc_alexnet.npy"
    np.save(path, _synthetic_weights(), allow_pickle=True)   # the same pickled-dict layout
    return path


def _images(n=2):
    return np.random.default_rng(1).uniform(-120, 120, (n,) + IN_SHAPE)   # mean-subtracted 0..255 pixels


def test_imported_net_computes_what_the_reference_nhwc_net_computes(caffe_file):
    net = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE, dtype=np.float64)
    x = _images()
    ref = _reference_forward(_synthetic_weights(), x)
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_the_check_is_sensitive_to_lrn_k_and_fc6_order(caffe_file):
    """The reference with the paper's k=2 differs, and so does the net with CHW fc6 rows."""
    x = _images()
    good = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE, dtype=np.float64).forward(x)
    assert np.abs(_reference_forward(_synthetic_weights(), x, k=2.0) - good).max() > 1e-3 * np.abs(good).max()
    wrong = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE, dtype=np.float64, fc6_order="chw").forward(x)
    assert np.abs(wrong - good).max() > 1e-3 * np.abs(good).max()


def test_imported_net_uses_caffes_lrn_convention_across_all_channels(caffe_file):
    net = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE)
    lrn = net.lrn1
    assert lrn.groups == 1 and lrn.lrn.convention == "caffe" and lrn.lrn.k == 1.0
    assert lrn.lrn.alpha_eff == pytest.approx(2e-5)
    assert not net.training                                  # returned ready for inference


def test_rgb_input_order_gives_the_same_output_for_the_swapped_image(caffe_file):
    x_bgr = _images()
    bgr = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE, dtype=np.float64)
    rgb = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE, dtype=np.float64, input_order="rgb")
    np.testing.assert_allclose(rgb.forward(x_bgr[:, ::-1].copy()), bgr.forward(x_bgr), rtol=1e-10)


def test_imported_shapes_come_from_the_file(caffe_file):
    net = load_caffe_alexnet(caffe_file, input_shape=IN_SHAPE)
    p = dict(net.named_parameters())
    assert p["conv2.W"].shape == (12, 4, 5, 5) and p["fc6.W"].shape == (20, 32) and net.num_classes == 7


def test_state_dict_conversion_reorders_fc6_rows_from_hwc_to_chw():
    w = _synthetic_weights()
    state = caffe_to_state_dict(w, pool5_shape=(8, 2, 2))
    W_tf = w["fc6"][0]                                       # rows in (h, w, c) order
    for c, h, x in [(0, 0, 1), (5, 1, 0), (7, 1, 1)]:
        np.testing.assert_array_equal(state["fc6.W"][:, c * 4 + h * 2 + x], W_tf[(h * 2 + x) * 8 + c])
    np.testing.assert_array_equal(state["conv1.W"][3, 2, 4, 5], w["conv1"][0][4, 5, 2, 3])


def test_file_missing_a_layer_is_refused_naming_it(tmp_path):
    w = _synthetic_weights()
    del w["fc7"]
    with pytest.raises(KeyError, match="fc7"):
        load_caffe_alexnet(w, input_shape=IN_SHAPE)


def test_weights_with_the_wrong_grouping_are_refused_naming_layer_and_shapes():
    w = _synthetic_weights()
    w["conv2"][0] = np.zeros((5, 5, 8, 12), np.float32)     # reads all 8 maps: not grouped
    with pytest.raises(ValueError, match=r"conv2.*\(5, 5, 8, 12\)"):
        load_caffe_alexnet(w, input_shape=IN_SHAPE)


def test_weights_for_another_input_size_are_refused_naming_fc6_and_both_shapes(caffe_file):
    with pytest.raises(ValueError, match="fc6"):
        load_caffe_alexnet(caffe_file, input_shape=(3, 131, 131))


def test_missing_file_names_where_to_get_bvlc_alexnet(tmp_path):
    with pytest.raises(FileNotFoundError, match="guerzhoy"):
        load_caffe_alexnet(tmp_path / "bvlc_alexnet.npy")
