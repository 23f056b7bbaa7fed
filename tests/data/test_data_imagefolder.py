"""Image folders: layouts, class filtering, unreadable files, lazy decoding, resizing."""
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datawriters import save_png
from tinyalex.data import (ArrayDataset, DatasetNotFoundError, ImageFolderDataset, load_dataset,
                           load_image_folder)
from tinyalex.data import imagefolder as imagefolder_mod

CIFAR_JPG = Path("/work/shared/data/cifar10-jpg")


def _load(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_image_folder(root, **kwargs)


def test_lazy_reader_returns_exactly_the_pixels_written(image_folder):
    root, pixels = image_folder
    ds = _load(root, in_memory=False)
    assert isinstance(ds, ImageFolderDataset)
    assert ds.classes == ["cat", "dog", "fish"]
    np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 1, 2])
    x, y = ds.get_batch(np.arange(len(ds)))
    assert x.dtype == np.uint8 and x.shape == (6, 3, 8, 6) and y.dtype == np.int64
    expected = np.stack([pixels[k] for k in sorted(pixels)]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(x, expected)
    assert ds.image_shape == (3, 8, 6)


def test_in_memory_equals_lazy(image_folder):
    root, _ = image_folder
    lazy, eager = _load(root, in_memory=False), _load(root, in_memory=True)
    assert isinstance(eager, ArrayDataset)
    np.testing.assert_array_equal(eager.images, lazy.get_batch(np.arange(len(lazy)))[0])
    np.testing.assert_array_equal(eager.labels, lazy.labels)
    assert eager.classes == lazy.classes


def test_auto_in_memory_loads_small_folders(image_folder):
    root, _ = image_folder
    assert isinstance(_load(root), ArrayDataset)


def test_unreadable_file_is_skipped_with_one_warning(image_folder):
    root, _ = image_folder
    for in_memory in (False, True):
        with pytest.warns(UserWarning) as record:
            ds = load_image_folder(root, in_memory=in_memory)
        assert len(record) == 1
        message = str(record[0].message)
        assert "skipped 1 unreadable" in message and "broken.jpg" in message
        assert len(ds) == 6                      # notes.txt is ignored, not counted


def test_many_unreadable_files_are_counted_and_first_few_named(image_folder):
    root, _ = image_folder
    for i in range(6):
        (root / "fish" / f"bad{i}.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(UserWarning, match=r"skipped 7 unreadable .* and 2 more") as record:
        load_image_folder(root, in_memory=False)
    assert len(record) == 1


def test_class_filter_keeps_requested_classes_in_given_order(image_folder):
    root, pixels = image_folder
    ds = _load(root, classes=["fish", "cat"], in_memory=False)
    assert ds.classes == ["fish", "cat"]
    np.testing.assert_array_equal(ds.labels, [0, 1, 1, 1])
    x, _ = ds.get_batch([0])
    np.testing.assert_array_equal(x[0], pixels["fish/00.png"].transpose(2, 0, 1))


def test_missing_class_error_names_it_and_the_available_ones(image_folder):
    root, _ = image_folder
    with pytest.raises(ValueError, match=r"\['horse'\].*available: cat, dog, fish"):
        load_image_folder(root, classes=["cat", "horse"])


def test_train_test_layout_uses_train_classes_for_test_labels(tmp_path):
    rng = np.random.default_rng(0)
    for split, classes in (("train", ["a", "b", "c"]), ("test", ["c"])):
        for cls in classes:
            save_png(tmp_path / split / cls / "0.png", rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    test = _load(tmp_path, split="test")
    assert test.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(test.labels, [2])
    assert len(_load(tmp_path, split="train")) == 3


def test_flat_layout_has_no_test_split(image_folder):
    root, _ = image_folder
    with pytest.raises(DatasetNotFoundError, match="train_val_split"):
        load_image_folder(root, split="test")


def test_missing_folder_raises_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope")


def test_lazy_dataset_decodes_only_requested_images(image_folder, monkeypatch):
    root, _ = image_folder
    decoded = []
    real_decode = imagefolder_mod.decode_image

    def counting_decode(path, *args, **kwargs):
        decoded.append(Path(path).name)
        return real_decode(path, *args, **kwargs)

    monkeypatch.setattr(imagefolder_mod, "decode_image", counting_decode)
    ds = _load(root, in_memory=False)
    assert decoded == []                        # building the dataset decodes nothing
    ds.get_batch([4, 0])
    assert sorted(decoded) == ["00.png", "01.png"]


def test_mixed_sizes_need_image_size(tmp_path):
    save_png(tmp_path / "a" / "big.png", np.zeros((10, 12, 3), np.uint8))
    save_png(tmp_path / "a" / "small.png", np.zeros((6, 6, 3), np.uint8))
    lazy = _load(tmp_path, in_memory=False)
    with pytest.raises(ValueError, match="image_size"):
        lazy.get_batch([0, 1])
    with pytest.raises(ValueError, match="image_size"):
        _load(tmp_path, in_memory=True)
    x, _ = _load(tmp_path, image_size=5, in_memory=False).get_batch([0, 1])
    assert x.shape == (2, 3, 5, 5)


def test_crop_resize_mode_takes_the_central_square(tmp_path):
    img = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)   # H=4, W=8
    save_png(tmp_path / "a" / "x.png", img)
    x, _ = _load(tmp_path, image_size=4, resize_mode="crop").get_batch([0])
    np.testing.assert_array_equal(x[0], img[:, 2:6].transpose(2, 0, 1))
    x, _ = _load(tmp_path, image_size=(4, 8), resize_mode="stretch").get_batch([0])
    np.testing.assert_array_equal(x[0], img.transpose(2, 0, 1))


def test_grayscale_gives_one_channel(image_folder):
    root, pixels = image_folder
    ds = _load(root, grayscale=True, in_memory=False)
    x, _ = ds.get_batch([0])
    assert x.shape == (1, 1, 8, 6) and ds.image_shape == (1, 8, 6)
    expected = np.asarray(Image.fromarray(pixels["cat/00.png"]).convert("L"))
    np.testing.assert_array_equal(x[0, 0], expected)


def test_jpeg_files_are_decoded_to_rgb(tmp_path):
    img = np.full((16, 16, 3), (200, 30, 90), np.uint8)
    (tmp_path / "a").mkdir()
    Image.fromarray(img).save(tmp_path / "a" / "x.JPG", quality=95)
    x, _ = _load(tmp_path).get_batch([0])
    assert x.shape == (1, 3, 16, 16)
    assert np.abs(x[0].astype(int) - img.transpose(2, 0, 1)).max() <= 3   # JPEG is lossy


def test_limit_per_class_keeps_first_files(image_folder):
    root, _ = image_folder
    ds = _load(root, limit_per_class=1, in_memory=False)
    np.testing.assert_array_equal(ds.labels, [0, 1, 2])


def test_load_dataset_imagefolder_requires_root():
    with pytest.raises(ValueError, match="root"):
        load_dataset("imagefolder")


def test_load_dataset_imagefolder_passes_options(image_folder):
    root, _ = image_folder
    ds = _load(root, classes=["dog"])
    with pytest.warns(UserWarning, match="broken.jpg"):
        ds2 = load_dataset("imagefolder", root=root, classes=["dog"], in_memory=True)
    np.testing.assert_array_equal(ds.images, ds2.images)


@pytest.mark.skipif(not CIFAR_JPG.is_dir(), reason="CIFAR-10 JPEG copy not on this machine")
def test_cifar10_jpeg_copy_two_classes_a_few_images():
    train = load_image_folder(CIFAR_JPG, classes=["cat", "dog"], limit_per_class=20, in_memory=True)
    test = load_image_folder(CIFAR_JPG, split="test", classes=["cat", "dog"], limit_per_class=5)
    assert train.images.shape == (40, 3, 32, 32) and test.images.shape == (10, 3, 32, 32)
    np.testing.assert_array_equal(np.bincount(train.labels), [20, 20])
    assert train.classes == ["cat", "dog"]
