"""The Pipeline the trainer uses: fit, train/eval transforms, 10 views, checkpoints."""
import json

import numpy as np
import pytest

from tinyalex.data import ArrayDataset, Pipeline, make_synthetic, pca_color_augment


@pytest.fixture
def train_set():
    images = np.random.default_rng(0).integers(0, 256, (12, 3, 8, 8), dtype=np.uint8)
    return ArrayDataset(images, np.arange(12) % 2, ["a", "b"])


def _normalized(pipe, x):
    """(x/255 - mean image) / per-channel std, by hand."""
    return (x / 255.0 - pipe.mean_image) / pipe.channel_std[:, None, None]


def test_fit_computes_mean_image_and_std_about_it(train_set):
    pipe = Pipeline(crop=6).fit(train_set)
    x = train_set.images / 255.0
    np.testing.assert_allclose(pipe.mean_image, x.mean(axis=0), rtol=1e-6)
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(pipe.channel_std, np.sqrt((centred ** 2).mean(axis=(0, 2, 3))), rtol=1e-6)
    assert pipe.eigvecs.shape == (3, 3) and pipe.eigvals.shape == (3,)


def test_without_augmentation_train_equals_eval_equals_hand_formula(train_set):
    pipe = Pipeline(crop=None, flip=False, pca=False).fit(train_set)
    x, _ = train_set.get_batch(np.arange(4))
    expected = _normalized(pipe, x)
    np.testing.assert_allclose(pipe.eval_transform(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pipe.train_transform(x, np.random.default_rng(0)), expected, rtol=1e-5, atol=1e-6)


def test_train_transform_is_composition_in_documented_order(train_set):
    pipe = Pipeline(crop=5).fit(train_set)
    x, _ = train_set.get_batch(np.arange(6))
    out = pipe.train_transform(x, np.random.default_rng(11))
    rng = np.random.default_rng(11)
    tops, lefts = rng.integers(0, 4, 6), rng.integers(0, 4, 6)
    flips = rng.random(6) < 0.5
    centred = x / 255.0 - pipe.mean_image
    crops = np.stack([centred[n, :, tops[n]:tops[n] + 5, lefts[n]:lefts[n] + 5] for n in range(6)])
    crops = np.where(flips[:, None, None, None], crops[..., ::-1], crops)
    coloured = pca_color_augment(crops, pipe.eigvecs, pipe.eigvals, rng, 0.1)
    expected = coloured / pipe.channel_std[:, None, None]
    assert out.dtype == np.float32 and out.shape == (6, 3, 5, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_erasing_comes_last_and_blanks_to_the_mean(train_set):
    plain = Pipeline(crop=5, pca=False).fit(train_set)
    erasing = Pipeline(crop=5, pca=False, erase=1.0).fit(train_set)
    x, _ = train_set.get_batch(np.arange(6))
    a, b = plain.train_transform(x, np.random.default_rng(4)), erasing.train_transform(x, np.random.default_rng(4))
    blank = (b == 0).all(axis=1)                  # every image erased somewhere, to 0: the training mean
    assert blank.any(axis=(1, 2)).all()
    np.testing.assert_array_equal(b[:, :, ~blank.any(axis=0)], a[:, :, ~blank.any(axis=0)])
    assert erasing.config()["erase"] == 1.0 and Pipeline.from_state_dict(erasing.state_dict()).erase == 1.0
    np.testing.assert_array_equal(erasing.eval_transform(x), plain.eval_transform(x))   # training only


def test_erase_outside_0_1_is_refused_by_name():
    with pytest.raises(ValueError, match="erase must be a probability"):
        Pipeline(erase=1.5)


def test_train_transform_reproducible_by_rng(train_set):
    pipe = Pipeline(crop=5).fit(train_set)
    x, _ = train_set.get_batch(np.arange(6))
    a = pipe.train_transform(x, np.random.default_rng(1))
    b = pipe.train_transform(x, np.random.default_rng(1))
    c = pipe.train_transform(x, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_eval_transform_is_center_crop(train_set):
    pipe = Pipeline(crop=4).fit(train_set)
    x, _ = train_set.get_batch(np.arange(3))
    np.testing.assert_allclose(pipe.eval_transform(x), _normalized(pipe, x)[:, :, 2:6, 2:6], rtol=1e-5, atol=1e-6)


def test_eval_views_are_ten_crops_of_normalized_images(train_set):
    pipe = Pipeline(crop=6).fit(train_set)
    x, _ = train_set.get_batch(np.arange(3))
    views = pipe.eval_views(x)
    assert views.shape == (10, 3, 3, 6, 6) and views.dtype == np.float32
    norm = _normalized(pipe, x)
    np.testing.assert_allclose(views[0], norm[:, :, :6, :6], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(views[4], pipe.eval_transform(x), rtol=1e-6)
    np.testing.assert_array_equal(views[9], views[4][..., ::-1])


def test_eval_views_five_are_the_first_five_of_ten_and_one_is_the_centre(train_set):
    pipe = Pipeline(crop=6).fit(train_set)
    x, _ = train_set.get_batch(np.arange(3))
    np.testing.assert_array_equal(pipe.eval_views(x, 5), pipe.eval_views(x)[:5])
    np.testing.assert_array_equal(pipe.eval_views(x, 1), pipe.eval_transform(x)[None])
    with pytest.raises(ValueError, match="1, 5 or 10"):
        pipe.eval_views(x, 3)


def test_test_views_follow_the_ten_crop_and_five_crop_flags():
    assert (Pipeline().test_views, Pipeline(ten_crop=True).test_views, Pipeline(five_crop=True).test_views) \
        == (1, 10, 5)
    with pytest.raises(ValueError, match="choose one"):
        Pipeline(ten_crop=True, five_crop=True)


def test_a_saved_pipeline_without_five_crop_loads_as_centre_crop_testing(train_set):
    state = Pipeline(crop=6).fit(train_set).state_dict()
    config = json.loads(str(state["config"]))
    del config["five_crop"]                      # saved before five_crop existed
    state["config"] = np.array(json.dumps(config))
    assert Pipeline.from_state_dict(state).test_views == 1
    assert Pipeline.from_state_dict(Pipeline(crop=6, five_crop=True).fit(train_set).state_dict()).test_views == 5


def test_padding_then_same_size_crop_keeps_eval_unchanged(train_set):
    padded = Pipeline(crop=8, pad=2).fit(train_set)
    plain = Pipeline(crop=None).fit(train_set)
    x, _ = train_set.get_batch(np.arange(3))
    np.testing.assert_allclose(padded.eval_transform(x), plain.eval_transform(x))
    assert padded.train_transform(x, np.random.default_rng(0)).shape == (3, 3, 8, 8)


def test_state_dict_round_trip_through_npz(train_set, tmp_path):
    pipe = Pipeline(crop=5, pad=1, pca_std=0.2).fit(train_set)
    np.savez(tmp_path / "pipe.npz", **pipe.state_dict())
    with np.load(tmp_path / "pipe.npz") as f:
        restored = Pipeline.from_state_dict(f)
    assert restored.config() == pipe.config()
    x, _ = train_set.get_batch(np.arange(4))
    np.testing.assert_array_equal(restored.train_transform(x, np.random.default_rng(3)),
                                  pipe.train_transform(x, np.random.default_rng(3)))
    np.testing.assert_array_equal(restored.eval_views(x), pipe.eval_views(x))


def test_unfitted_pipeline_refuses_to_transform(train_set):
    with pytest.raises(RuntimeError, match="fit"):
        Pipeline(crop=4).eval_transform(train_set.images[:2])


def test_pipeline_with_nothing_to_fit_needs_no_fit():
    pipe = Pipeline(mean=False, standardize=False, pca=False, crop=2, flip=False)
    x = np.full((1, 1, 4, 4), 255, np.uint8)
    np.testing.assert_array_equal(pipe.eval_transform(x), np.ones((1, 1, 2, 2), np.float32))


def test_crop_larger_than_images_is_rejected_at_fit(train_set):
    with pytest.raises(ValueError, match="crop 9"):
        Pipeline(crop=9).fit(train_set)


def test_default_for_scales_the_paper_crop_and_skips_pca_for_gray():
    gray = Pipeline.default_for((1, 28, 28))
    assert (gray.crop, gray.pca, gray.flip, gray.mean) == (24, False, True, True)
    rgb = Pipeline.default_for((3, 32, 32), ten_crop=True)
    assert (rgb.crop, rgb.pca, rgb.ten_crop) == (28, True, True)
    assert Pipeline.default_for((3, 256, 256)).output_shape((3, 256, 256)) == (3, 227, 227)


def test_standardized_output_has_unit_scale_on_synthetic_data():
    ds = make_synthetic(n=200, image_shape=(3, 16, 16))
    pipe = Pipeline(crop=None, flip=False, pca=False).fit(ds)
    out = pipe.eval_transform(ds.images)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, rtol=1e-3)


def test_config_is_plain_json_even_from_numpy_ints(train_set):
    import json
    pipe = Pipeline(crop=np.int64(5), pad=np.int32(1))
    assert json.loads(json.dumps(pipe.config()))["crop"] == 5
