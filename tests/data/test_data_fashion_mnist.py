"""Fashion-MNIST: IDX reading, search order, errors (tiny files written by the tests)."""
import gzip
import io
from pathlib import Path

import numpy as np
import pytest

from datawriters import idx_bytes, write_fashion_mnist, write_file
from tinyalex.data import (CorruptDatasetError, DatasetNotFoundError, FASHION_MNIST_CLASSES,
                           load_dataset, load_fashion_mnist, sources)
from tinyalex.data import datasets as datasets_mod

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_reader_returns_exactly_the_pixels_and_labels_written(fashion_dir):
    directory, written = fashion_dir
    for split in ("train", "test"):
        ds = load_fashion_mnist(directory, split=split)
        images, labels = written[split]
        assert ds.images.dtype == np.uint8 and ds.images.shape == (len(images), 1, 28, 28)
        np.testing.assert_array_equal(ds.images[:, 0], images)
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.classes == FASHION_MNIST_CLASSES


def test_uncompressed_idx_files_are_accepted(tmp_path):
    written = write_fashion_mnist(tmp_path / "raw", gz=False)
    ds = load_fashion_mnist(tmp_path / "raw", split="train")
    np.testing.assert_array_equal(ds.images[:, 0], written["train"][0])


def test_class_names_are_the_official_ten():
    assert FASHION_MNIST_CLASSES == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_explicit_root_may_be_a_parent_holding_fashion_mnist(tmp_path):
    written = write_fashion_mnist(tmp_path / "data" / "fashion-mnist", seed=3)
    ds = load_fashion_mnist(tmp_path / "data")
    np.testing.assert_array_equal(ds.images[:, 0], written["train"][0])


def _copies(tmp_path, monkeypatch):
    """A different copy in each search location; returns {location: train images}."""
    env = tmp_path / "env"
    monkeypatch.setenv("TINYALEX_DATA", str(env))
    locations = {
        "root": tmp_path / "explicit",
        "env": env / "fashion-mnist",
        "cache": tmp_path / "xdg-cache" / "tinyalex" / "fashion-mnist",
        "system": sources.SYSTEM_DATA_DIR / "fashion-mnist",
    }
    return {k: write_fashion_mnist(d, seed=i)["train"][0] for i, (k, d) in enumerate(locations.items())}


def _train_images(root=None):
    return load_fashion_mnist(root, download=False).images[:, 0]


def test_search_order_explicit_root_first(tmp_path, monkeypatch):
    copies = _copies(tmp_path, monkeypatch)
    np.testing.assert_array_equal(_train_images(tmp_path / "explicit"), copies["root"])


def test_search_order_env_before_cache_before_system(tmp_path, monkeypatch):
    copies = _copies(tmp_path, monkeypatch)
    np.testing.assert_array_equal(_train_images(), copies["env"])
    monkeypatch.delenv("TINYALEX_DATA")
    np.testing.assert_array_equal(_train_images(), copies["cache"])
    import shutil
    shutil.rmtree(tmp_path / "xdg-cache")
    np.testing.assert_array_equal(_train_images(), copies["system"])


def test_env_dir_itself_is_searched(tmp_path, monkeypatch):
    written = write_fashion_mnist(tmp_path / "flat")
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "flat"))
    np.testing.assert_array_equal(_train_images(), written["train"][0])


def test_cache_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert sources.user_cache_dir("fashion-mnist") == tmp_path / "elsewhere" / "tinyalex" / "fashion-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert sources.user_cache_dir() == Path.home() / ".cache" / "tinyalex"


def test_explicit_root_is_strict_no_fallback(tmp_path, monkeypatch):
    _copies(tmp_path, monkeypatch)
    with pytest.raises(DatasetNotFoundError):
        load_fashion_mnist(tmp_path / "empty-dir")


def test_incomplete_directory_is_skipped(tmp_path, monkeypatch):
    partial = tmp_path / "env" / "fashion-mnist"
    write_fashion_mnist(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "env"))
    cache_copy = write_fashion_mnist(tmp_path / "xdg-cache" / "tinyalex" / "fashion-mnist", seed=9)
    np.testing.assert_array_equal(_train_images(), cache_copy["train"][0])


def test_not_found_error_lists_every_way(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist()
    message = str(info.value)
    for way in ("--data-dir", "TINYALEX_DATA", str(tmp_path / "xdg-cache" / "tinyalex" / "fashion-mnist"),
                "apt-get install dataset-fashion-mnist",
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "network disabled in tests"):
        assert way in message
    assert isinstance(info.value, FileNotFoundError)


def test_download_disabled_does_not_call_downloader(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(sources, "download_url", boom)
    with pytest.raises(DatasetNotFoundError):
        load_fashion_mnist(download=False)


def test_download_goes_to_cache_with_official_names(tmp_path, monkeypatch):
    source = tmp_path / "mirror"
    written = write_fashion_mnist(source)
    calls = []

    def fake_download(url, dest, md5=None, timeout=60.0):
        calls.append((url, md5))
        name = url.rsplit("/", 1)[1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((source / name).read_bytes())
        return dest

    monkeypatch.setattr(sources, "download_url", fake_download)
    ds = load_fashion_mnist()
    np.testing.assert_array_equal(ds.images[:, 0], written["train"][0])
    assert {u for u, _ in calls} == {datasets_mod.FASHION_MNIST_URL + n for n in datasets_mod.FASHION_MNIST_MD5}
    assert all(md5 == datasets_mod.FASHION_MNIST_MD5[u.rsplit("/", 1)[1]] for u, md5 in calls)
    assert (tmp_path / "xdg-cache" / "tinyalex" / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file()


# ------------------------------------------------------------ corrupt files
def _corrupt(fashion_dir, name, data: bytes, gz=True):
    directory, _ = fashion_dir
    write_file(directory / name, data, gz)
    return directory


def test_truncated_gzip_raises_corrupt(fashion_dir):
    directory, _ = fashion_dir
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CorruptDatasetError, match="train-images-idx3-ubyte.gz.*gzip"):
        load_fashion_mnist(directory)


def test_bad_magic_raises_corrupt(fashion_dir):
    images = np.zeros((6, 28, 28), np.uint8)
    directory = _corrupt(fashion_dir, "train-images-idx3-ubyte.gz", idx_bytes(images, magic=2049))
    with pytest.raises(CorruptDatasetError, match="magic number 2049"):
        load_fashion_mnist(directory)


def test_labels_file_swapped_for_images_raises_corrupt(fashion_dir):
    directory = _corrupt(fashion_dir, "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros((6, 28, 28), np.uint8)))
    with pytest.raises(CorruptDatasetError, match="train-labels.*magic"):
        load_fashion_mnist(directory)


def test_short_data_raises_corrupt(fashion_dir):
    data = idx_bytes(np.zeros((6, 28, 28), np.uint8))[:-1]
    directory = _corrupt(fashion_dir, "train-images-idx3-ubyte.gz", data)
    with pytest.raises(CorruptDatasetError, match="truncated"):
        load_fashion_mnist(directory)


def test_trailing_bytes_raise_corrupt(fashion_dir):
    data = idx_bytes(np.zeros(6, np.uint8)) + b"\x00"
    directory = _corrupt(fashion_dir, "train-labels-idx1-ubyte.gz", data)
    with pytest.raises(CorruptDatasetError, match="trailing"):
        load_fashion_mnist(directory)


def test_image_label_count_mismatch_raises_corrupt(fashion_dir):
    directory = _corrupt(fashion_dir, "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(CorruptDatasetError, match="6 images but .* 5 labels"):
        load_fashion_mnist(directory)


def test_label_out_of_range_raises_corrupt(fashion_dir):
    directory = _corrupt(fashion_dir, "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([0, 1, 10, 2], np.uint8)))
    with pytest.raises(CorruptDatasetError, match="out of range"):
        load_fashion_mnist(directory, split="test")


def test_wrong_image_size_raises_corrupt(fashion_dir):
    directory = _corrupt(fashion_dir, "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((6, 32, 32), np.uint8)))
    with pytest.raises(CorruptDatasetError, match=r"\(32, 32\)"):
        load_fashion_mnist(directory)


def test_empty_file_raises_corrupt(fashion_dir):
    directory = _corrupt(fashion_dir, "train-images-idx3-ubyte.gz", b"", gz=False)
    with pytest.raises(CorruptDatasetError, match="too short"):
        load_fashion_mnist(directory)


def test_corrupt_error_is_a_value_error():
    assert issubclass(CorruptDatasetError, ValueError)


def test_load_dataset_registry_reads_fashion_mnist(fashion_dir):
    directory, written = fashion_dir
    ds = load_dataset("fashion-mnist", root=directory, split="test")
    np.testing.assert_array_equal(ds.labels, written["test"][1])


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_fashion_mnist_train_set():
    ds = load_fashion_mnist(REAL_DIR, split="train")
    assert ds.images.shape == (60000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.min() == 0 and ds.labels.max() == 9
    np.testing.assert_array_equal(np.bincount(ds.labels), np.full(10, 6000))
