"""Transforms of sections 2 and 4.1 on known inputs: exact positions and values."""
import numpy as np
import pytest
from PIL import Image

from tinyalex.data import (ArrayDataset, average_ten_crop_predictions, center_crop,
                           center_crop_batch, compute_mean_image, crop_batch, default_crop_size, five_crop,
                           fit_pca_color, hflip, pca_color_augment, pca_from_covariance,
                           random_crop, random_erase, random_flip, resize_and_center_crop,
                           rescale_shorter_side, subtract_mean, ten_crop)


def _ramp(n=2, c=3, h=6, w=7):
    """Distinct values everywhere so that every crop position is identifiable."""
    return np.arange(n * c * h * w, dtype=np.float32).reshape(n, c, h, w)


class CountingDataset(ArrayDataset):
    """An ArrayDataset that records the size of every batch requested."""

    def get_batch(self, indices):
        self.requests = getattr(self, "requests", []) + [len(np.atleast_1d(indices))]
        return super().get_batch(indices)


# ------------------------------------------------------------ single images
def test_rescale_shorter_side_keeps_aspect_ratio_for_pil_and_arrays():
    pil = Image.new("RGB", (20, 10))                       # W=20, H=10
    assert rescale_shorter_side(pil, 5).size == (10, 5)
    arr = np.zeros((30, 12, 3), np.uint8)                  # H=30, W=12
    assert rescale_shorter_side(arr, 6).shape == (15, 6, 3)
    assert rescale_shorter_side(np.zeros((8, 16), np.uint8), 4).shape == (4, 8)


def test_rescale_shorter_side_to_same_size_is_identity():
    arr = np.random.default_rng(0).integers(0, 256, (5, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rescale_shorter_side(arr, 5), arr)


def test_center_crop_positions_on_arrays_and_pil():
    arr = np.arange(7 * 9, dtype=np.uint8).reshape(7, 9)
    np.testing.assert_array_equal(center_crop(arr, 3), arr[2:5, 3:6])
    np.testing.assert_array_equal(center_crop(arr, (4, 2)), arr[1:5, 3:5])
    np.testing.assert_array_equal(np.asarray(center_crop(Image.fromarray(arr), 3)), arr[2:5, 3:6])
    with pytest.raises(ValueError, match="larger"):
        center_crop(arr, 8)


def test_resize_and_center_crop_gives_square_of_requested_size():
    pil = Image.new("RGB", (400, 300))
    assert resize_and_center_crop(pil, 256).size == (256, 256)
    assert resize_and_center_crop(np.zeros((300, 400, 3), np.uint8), 256).shape == (256, 256, 3)


# ------------------------------------------------------------ mean image
def test_mean_image_is_exact_average_on_0_1_scale():
    images = np.random.default_rng(1).integers(0, 256, (10, 3, 4, 5), dtype=np.uint8)
    ds = CountingDataset(images, np.zeros(10, np.int64), ["a"])
    mean = compute_mean_image(ds, batch_size=3)
    assert mean.dtype == np.float32 and mean.shape == (3, 4, 5)
    np.testing.assert_allclose(mean, images.mean(axis=0) / 255, rtol=1e-6)
    assert ds.requests == [3, 3, 3, 1]                      # streamed, never all at once


def test_subtract_mean_broadcasts_over_batch():
    x = np.ones((2, 1, 2, 2), np.uint8)
    m = np.array([[[0.5, 1.0], [0.0, 2.0]]], np.float32)
    out = subtract_mean(x, m)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[1, 0], [[0.5, 0.0], [1.0, -1.0]])


# ------------------------------------------------------------ crops, flips
def test_crop_batch_uses_each_images_own_offsets():
    x = _ramp()
    out = crop_batch(x, 3, top=[0, 3], left=[4, 1])
    np.testing.assert_array_equal(out[0], x[0, :, 0:3, 4:7])
    np.testing.assert_array_equal(out[1], x[1, :, 3:6, 1:4])


def test_crop_batch_rejects_out_of_range_offsets():
    with pytest.raises(ValueError, match="out of range"):
        crop_batch(_ramp(), 3, top=[0, 4], left=0)


def test_random_crop_draws_tops_then_lefts_from_rng():
    x = _ramp(n=4)
    out = random_crop(x, (4, 5), np.random.default_rng(42))
    rng = np.random.default_rng(42)
    tops, lefts = rng.integers(0, 3, size=4), rng.integers(0, 3, size=4)
    for n in range(4):
        np.testing.assert_array_equal(out[n], x[n, :, tops[n]:tops[n] + 4, lefts[n]:lefts[n] + 5])


def test_random_crop_covers_all_positions():
    x = _ramp(n=400, c=1, h=3, w=3)
    out = random_crop(x, 2, np.random.default_rng(0))
    corners = {(int(o[0, 0, 0]) - int(xx[0, 0, 0])) for o, xx in zip(out, x)}
    assert corners == {0, 1, 3, 4}                          # the 4 possible offsets


def test_center_crop_batch_positions():
    x = _ramp()
    np.testing.assert_array_equal(center_crop_batch(x, 3), x[:, :, 1:4, 2:5])


def test_hflip_reverses_columns_exactly():
    x = _ramp()
    np.testing.assert_array_equal(hflip(x)[..., 0], x[..., -1])
    np.testing.assert_array_equal(hflip(hflip(x)), x)


def test_random_flip_flips_exactly_the_images_chosen_by_rng():
    x = _ramp(n=8)
    out = random_flip(x, np.random.default_rng(3))
    chosen = np.random.default_rng(3).random(8) < 0.5
    assert 0 < chosen.sum() < 8
    for n in range(8):
        np.testing.assert_array_equal(out[n], x[n, :, :, ::-1] if chosen[n] else x[n])


# ------------------------------------------------------------ random erasing


def _erased(x, out):
    """(N, H, W) bool: where out was set to 0 over all channels and x was not 0."""
    return (out == 0).all(axis=1) & (x != 0).all(axis=1)


def test_random_erase_blanks_one_rectangle_in_exactly_the_images_chosen_by_rng():
    x = _ramp(n=40, h=12, w=10) + 1
    out = random_erase(x, np.random.default_rng(5), p=0.5)
    chosen = np.random.default_rng(5).random(40) < 0.5
    assert 0 < chosen.sum() < 40
    mask = _erased(x, out)
    for n in range(40):
        rows, cols = np.nonzero(mask[n])
        if not chosen[n]:
            np.testing.assert_array_equal(out[n], x[n])
            continue
        top, left, h, w = rows.min(), cols.min(), np.ptp(rows) + 1, np.ptp(cols) + 1
        assert mask[n].sum() == h * w                                    # a full rectangle
        np.testing.assert_array_equal(out[n][:, ~mask[n]], x[n][:, ~mask[n]])   # the rest untouched
        assert 0.3 / 1.5 <= h / w <= 3.3 * 1.5                           # ratio range, up to rounding


def test_random_erase_areas_stay_within_the_range_up_to_rounding_and_clipping():
    x = np.ones((2000, 1, 28, 28), np.float32)
    out = random_erase(x, np.random.default_rng(0), p=1.0, area=(0.02, 0.4))
    fraction = (out[:, 0] == 0).mean(axis=(1, 2))
    assert fraction.min() >= 0.01 and fraction.max() <= 0.5
    assert 0.17 < fraction.mean() < 0.23          # about the mean of U(0.02, 0.4), 0.21, less clipping


def test_random_erase_with_p_0_returns_the_images_unchanged():
    x = _ramp(n=5)
    np.testing.assert_array_equal(random_erase(x, np.random.default_rng(0), p=0.0), x)


def test_random_erase_reaches_every_position_of_the_image():
    x = np.ones((3000, 1, 8, 8), np.float32)
    out = random_erase(x, np.random.default_rng(1), p=1.0)
    assert (out[:, 0] == 0).any(axis=0).all()     # every pixel erased in some image, corners included


# ------------------------------------------------------------ PCA colour
def test_pca_from_known_covariance_recovers_eigenpairs():
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(3, 3)))
    cov = q @ np.diag([4.0, 1.0, 0.25]) @ q.T
    vecs, vals = pca_from_covariance(cov)
    np.testing.assert_allclose(vals, [4.0, 1.0, 0.25], rtol=1e-12)
    for i in range(3):                                       # same axes up to sign
        assert abs(abs(vecs[:, i] @ q[:, i]) - 1) < 1e-12
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, cov, atol=1e-12)
    assert np.all(vecs[np.abs(vecs).argmax(axis=0), range(3)] > 0)   # sign convention


def test_fit_pca_color_uses_covariance_of_all_pixels_on_0_1_scale():
    images = np.random.default_rng(2).integers(0, 256, (6, 3, 4, 4), dtype=np.uint8)
    ds = ArrayDataset(images, np.zeros(6, np.int64), ["a"])
    vecs, vals = fit_pca_color(ds, batch_size=4)
    pixels = images.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0     # (3, all pixels)
    cov = np.cov(pixels, bias=True)
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, cov, atol=1e-12)
    assert np.all(np.diff(vals) <= 0)


def test_pca_color_augment_equals_hand_computation():
    x = np.zeros((2, 3, 2, 2), np.float32)
    vecs = np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])   # columns p_i
    vals = np.array([2.0, 0.5, 0.1])
    out = pca_color_augment(x, vecs, vals, np.random.default_rng(9), std=0.1)
    alpha = np.random.default_rng(9).normal(0.0, 0.1, size=(2, 3))
    for n in range(2):
        delta = sum(vecs[:, i] * alpha[n, i] * vals[i] for i in range(3))
        for c in range(3):
            np.testing.assert_allclose(out[n, c], np.full((2, 2), delta[c]), rtol=1e-6)
    assert out.dtype == np.float32


def test_pca_color_augment_same_shift_for_every_pixel_of_an_image():
    x = _ramp()
    out = pca_color_augment(x, np.eye(3), np.ones(3), np.random.default_rng(0))
    shift = out - x
    np.testing.assert_allclose(shift, shift[:, :, :1, :1] * np.ones_like(shift), atol=1e-5)


# ------------------------------------------------------------ 10 views
def test_ten_crop_positions_and_flips_exact():
    x = _ramp(h=5, w=6)
    views = ten_crop(x, 3)
    assert views.shape == (10, 2, 3, 3, 3)
    expected = [x[:, :, 0:3, 0:3], x[:, :, 0:3, 3:6], x[:, :, 2:5, 0:3], x[:, :, 2:5, 3:6],
                x[:, :, 1:4, 1:4]]
    for k in range(5):
        np.testing.assert_array_equal(views[k], expected[k])
        np.testing.assert_array_equal(views[5 + k], expected[k][..., ::-1])


def test_five_crop_is_the_ten_views_without_their_mirrors():
    x = _ramp(h=5, w=6)
    views = five_crop(x, 3)
    assert views.shape == (5, 2, 3, 3, 3)
    np.testing.assert_array_equal(views, ten_crop(x, 3)[:5])


def test_average_ten_crop_predictions_both_layouts():
    probs = np.random.default_rng(0).random((10, 4, 3))
    np.testing.assert_allclose(average_ten_crop_predictions(probs), probs.mean(axis=0))
    np.testing.assert_allclose(average_ten_crop_predictions(probs.reshape(40, 3)), probs.mean(axis=0))
    with pytest.raises(ValueError):
        average_ten_crop_predictions(np.zeros((9, 3)))


def test_default_crop_sizes():
    assert default_crop_size(256) == 227
    assert default_crop_size(32) == 28
    assert default_crop_size(28) == 24
    assert default_crop_size(64) == 56
