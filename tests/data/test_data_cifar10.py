"""CIFAR-10: python pickle batches from a directory or the .tar.gz archive."""
import io
import pickle
import tarfile

import numpy as np
import pytest

from datawriters import CIFAR_NAMES, make_tar_gz, write_cifar10
from tinyalex.data import CorruptDatasetError, DatasetNotFoundError, load_cifar10, load_dataset, sources
from tinyalex.data import datasets as datasets_mod


def _expected(batches, split):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    data = np.concatenate([batches[n][b"data"] for n in names])
    labels = np.concatenate([batches[n][b"labels"] for n in names])
    return data.reshape(-1, 3, 32, 32), labels


def test_directory_reader_returns_exactly_the_pixels_written(cifar_dir):
    directory, batches = cifar_dir
    for split in ("train", "test"):
        ds = load_cifar10(directory, split=split)
        images, labels = _expected(batches, split)
        assert ds.images.dtype == np.uint8 and ds.images.shape == (len(images), 3, 32, 32)
        np.testing.assert_array_equal(ds.images, images)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.labels.dtype == np.int64
    assert ds.classes == CIFAR_NAMES


def test_channel_layout_is_red_then_green_then_blue_planes(cifar_dir):
    directory, batches = cifar_dir
    ds = load_cifar10(directory, split="test")
    row = batches["test_batch"][b"data"][0]
    np.testing.assert_array_equal(ds.images[0, 0].ravel(), row[:1024])      # red plane
    np.testing.assert_array_equal(ds.images[0, 2, 31], row[3072 - 32:])     # last blue row


def test_root_holding_the_batches_directory_works(cifar_dir):
    directory, batches = cifar_dir
    ds = load_cifar10(directory.parent, split="test")   # root/cifar-10-batches-py/
    np.testing.assert_array_equal(ds.labels, batches["test_batch"][b"labels"])


def test_tar_gz_archive_is_read_without_extracting(tmp_path):
    batches = write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    make_tar_gz(tmp_path / "src" / "cifar-10-batches-py", archive_dir / "cifar-10-python.tar.gz")
    ds = load_cifar10(archive_dir, split="train")
    images, labels = _expected(batches, "train")
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert sorted(p.name for p in archive_dir.iterdir()) == ["cifar-10-python.tar.gz"]


def test_env_var_cifar10_subdirectory_is_searched(tmp_path, monkeypatch):
    batches = write_cifar10(tmp_path / "env" / "cifar10" / "cifar-10-batches-py", seed=4)
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "env"))
    ds = load_dataset("cifar10", split="test", download=False)
    np.testing.assert_array_equal(ds.labels, batches["test_batch"][b"labels"])


def test_cache_is_searched_after_env(tmp_path, monkeypatch):
    cached = write_cifar10(tmp_path / "xdg-cache" / "tinyalex" / "cifar10" / "cifar-10-batches-py", seed=5)
    ds = load_cifar10(split="test", download=False)
    np.testing.assert_array_equal(ds.labels, cached["test_batch"][b"labels"])


def test_not_found_error_lists_every_way(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10()
    message = str(info.value)
    for way in ("--data-dir", "TINYALEX_DATA", str(tmp_path / "xdg-cache" / "tinyalex" / "cifar10"),
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "imagefolder"):
        assert way in message


def test_download_fetches_archive_into_cache(tmp_path, monkeypatch):
    batches = write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive = make_tar_gz(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "served.tar.gz")

    def fake_download(url, dest, md5=None, timeout=60.0):
        assert url == datasets_mod.CIFAR10_URL and md5 == datasets_mod.CIFAR10_MD5
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(archive.read_bytes())
        return dest

    monkeypatch.setattr(sources, "download_url", fake_download)
    ds = load_cifar10(split="test")
    np.testing.assert_array_equal(ds.labels, batches["test_batch"][b"labels"])
    assert (tmp_path / "xdg-cache" / "tinyalex" / "cifar10" / "cifar-10-python.tar.gz").is_file()


def _rewrite(directory, name, obj):
    with open(directory / name, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def test_wrong_data_shape_raises_corrupt(cifar_dir):
    directory, batches = cifar_dir
    bad = {**batches["data_batch_3"], b"data": np.zeros((3, 3000), np.uint8)}
    _rewrite(directory, "data_batch_3", bad)
    with pytest.raises(CorruptDatasetError, match="data_batch_3.*3072"):
        load_cifar10(directory)


def test_label_count_mismatch_raises_corrupt(cifar_dir):
    directory, batches = cifar_dir
    _rewrite(directory, "test_batch", {**batches["test_batch"], b"labels": [1, 2]})
    with pytest.raises(CorruptDatasetError, match="test_batch.*3 images"):
        load_cifar10(directory, split="test")


def test_label_out_of_range_raises_corrupt(cifar_dir):
    directory, batches = cifar_dir
    _rewrite(directory, "test_batch", {**batches["test_batch"], b"labels": [0, 11, 2]})
    with pytest.raises(CorruptDatasetError, match="out of range"):
        load_cifar10(directory, split="test")


def test_truncated_pickle_raises_corrupt(cifar_dir):
    directory, _ = cifar_dir
    path = directory / "data_batch_1"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CorruptDatasetError, match="data_batch_1.*unpickle"):
        load_cifar10(directory)


def test_pickle_with_foreign_code_is_refused(cifar_dir):
    directory, _ = cifar_dir

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    (directory / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(CorruptDatasetError, match="refusing to load global"):
        load_cifar10(directory, split="test")


def test_truncated_archive_raises_corrupt(tmp_path):
    write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive = make_tar_gz(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(CorruptDatasetError, match="cifar-10-python.tar.gz"):
        load_cifar10(tmp_path)


def test_archive_missing_a_batch_raises_corrupt(tmp_path):
    write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "src" / "cifar-10-batches-py" / "data_batch_4").unlink()
    make_tar_gz(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(CorruptDatasetError, match="no member data_batch_4"):
        load_cifar10(tmp_path)
