"""ArrayDataset, Subset, train_val_split, the synthetic dataset, load_dataset, downloads."""
import hashlib
import io

import numpy as np
import pytest

from tinyalex.data import (DATASET_NAMES, ArrayDataset, Subset, load_dataset, make_synthetic,
                           train_val_split)
from tinyalex.data import sources as sources_mod
from tinyalex.data.sources import download_url as real_download_url  # before the autouse patch


def _ds(n=20, classes=2):
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(2, axis=2)
    return ArrayDataset(images, np.arange(n) % classes, [str(c) for c in range(classes)])


def test_array_dataset_interface():
    ds = _ds()
    assert len(ds) == 20 and ds.image_shape == (1, 2, 1) and ds.classes == ["0", "1"]
    x, y = ds.get_batch([3, -1])
    np.testing.assert_array_equal(x[:, 0, 0, 0], [3, 19])
    np.testing.assert_array_equal(y, [1, 1])
    x2, _ = ds[[3, -1]]
    np.testing.assert_array_equal(x, x2)


def test_array_dataset_rejects_bad_arrays():
    with pytest.raises(ValueError, match="uint8 NCHW"):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), [0, 0], ["a"])
    with pytest.raises(ValueError, match="labels must have shape"):
        ArrayDataset(np.zeros((2, 1, 4, 4), np.uint8), [0], ["a"])
    with pytest.raises(ValueError, match="labels must be in"):
        ArrayDataset(np.zeros((2, 1, 4, 4), np.uint8), [0, 2], ["a", "b"])


def test_out_of_range_index_raises():
    with pytest.raises(IndexError):
        _ds().get_batch([20])


def test_subset_maps_indices_to_parent():
    sub = Subset(_ds(), [5, 2, 7])
    assert len(sub) == 3
    x, y = sub.get_batch([2, 0])
    np.testing.assert_array_equal(x[:, 0, 0, 0], [7, 5])
    np.testing.assert_array_equal(sub.labels, [1, 0, 1])


def test_train_val_split_is_disjoint_complete_and_stratified():
    ds = _ds(n=40, classes=4)
    train, val = train_val_split(ds, val_fraction=0.2, seed=0)
    assert len(train) == 32 and len(val) == 8
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted(np.concatenate([train.indices, val.indices])) == list(range(40))
    np.testing.assert_array_equal(np.bincount(val.labels), [2, 2, 2, 2])
    assert train.classes == ds.classes and train.image_shape == ds.image_shape


def test_train_val_split_is_deterministic_by_seed():
    ds = _ds(n=50, classes=5)
    a = train_val_split(ds, seed=1)[1].indices
    b = train_val_split(ds, seed=1)[1].indices
    c = train_val_split(ds, seed=2)[1].indices
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_val_split_rejects_bad_fraction():
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(_ds(), val_fraction=bad)


def test_synthetic_is_deterministic_and_configurable():
    a = make_synthetic(n=30, image_shape=(1, 12, 10), num_classes=3, seed=4)
    b = make_synthetic(n=30, image_shape=(1, 12, 10), num_classes=3, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (30, 1, 12, 10) and a.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(a.labels), [10, 10, 10])
    test = make_synthetic(n=30, image_shape=(1, 12, 10), num_classes=3, seed=4, split="test")
    assert not np.array_equal(a.images, test.images)


def test_synthetic_classes_are_learnable_by_nearest_class_mean():
    train = make_synthetic(n=300, image_shape=(3, 16, 16), num_classes=10)
    test = make_synthetic(n=100, image_shape=(3, 16, 16), num_classes=10, split="test")
    means = np.stack([train.images[train.labels == k].mean(axis=0).ravel() for k in range(10)])
    dists = ((test.images.reshape(100, -1)[:, None, :] - means[None]) ** 2).sum(axis=2)
    assert (dists.argmin(axis=1) == test.labels).mean() > 0.9


def test_load_dataset_synthetic_and_aliases():
    ds = load_dataset("synthetic", n=20, image_shape=(3, 8, 8), num_classes=4)
    assert len(ds) == 20 and ds.image_shape == (3, 8, 8)
    assert len(load_dataset("synthetic", split="test")) == 128
    assert "fashion-mnist" in DATASET_NAMES and "imagefolder" in DATASET_NAMES


def test_load_dataset_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="fashion-mnist, cifar10, imagefolder, synthetic"):
        load_dataset("imagenet")


def test_load_dataset_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_dataset("synthetic", split="validation")


# ------------------------------------------------------------ downloads
class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_url_writes_atomically_after_checksum(tmp_path, monkeypatch):
    payload = b"x" * 3_000_000
    monkeypatch.setattr(sources_mod, "urlopen", lambda url, timeout: FakeResponse(payload))
    dest = tmp_path / "cache" / "file.gz"
    real_download_url("http://example.invalid/file.gz", dest, md5=hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["file.gz"]


def test_download_url_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sources_mod, "urlopen", lambda url, timeout: FakeResponse(b"abc"))
    dest = tmp_path / "cache" / "file.gz"
    with pytest.raises(OSError, match="checksum mismatch"):
        real_download_url("http://example.invalid/file.gz", dest, md5="0" * 32)
    assert list(dest.parent.iterdir()) == []



def test_interrupted_download_keeps_old_file_and_leaves_no_partial(tmp_path, monkeypatch):
    class Broken(FakeResponse):
        def read(self, size=-1):
            if self.tell() > 0:
                raise OSError("connection reset")
            return super().read(10)

    monkeypatch.setattr(sources_mod, "urlopen", lambda url, timeout: Broken(b"y" * 100))
    dest = tmp_path / "cache" / "file.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(OSError, match="connection reset"):
        real_download_url("http://example.invalid/file.gz", dest)
    assert dest.read_bytes() == b"old" and [p.name for p in dest.parent.iterdir()] == ["file.gz"]
