"""Fixtures for the data tests: tiny datasets written in the real file formats.

Every test runs with the data search paths isolated: no TINYALEX_DATA, the
user cache and the system directory inside tmp_path, and downloads that fail
(no test touches the network).
"""
import numpy as np
import pytest

from datawriters import save_png, write_cifar10, write_fashion_mnist
from tinyalex.data import sources


@pytest.fixture(autouse=True)
def isolated_data_paths(tmp_path, monkeypatch):
    """Point every search location into tmp_path and forbid downloads."""
    monkeypatch.delenv("TINYALEX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIR", tmp_path / "system-datasets")

    def no_download(url, dest, md5=None, timeout=60.0):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(sources, "download_url", no_download)


@pytest.fixture
def fashion_dir(tmp_path):
    directory = tmp_path / "fmnist"
    return directory, write_fashion_mnist(directory)


@pytest.fixture
def cifar_dir(tmp_path):
    directory = tmp_path / "cifar" / "cifar-10-batches-py"
    return directory, write_cifar10(directory)


@pytest.fixture
def image_folder(tmp_path):
    """root/{cat,dog,fish}/ with 3, 2, 1 PNGs of 8x6 RGB, plus a corrupt file in dog/.

    Returns (root, {relative path: HWC pixels}).
    """
    rng = np.random.default_rng(7)
    root = tmp_path / "folder"
    pixels = {}
    for cls, count in (("cat", 3), ("dog", 2), ("fish", 1)):
        for i in range(count):
            arr = rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
            save_png(root / cls / f"{i:02d}.png", arr)
            pixels[f"{cls}/{i:02d}.png"] = arr
    (root / "dog" / "broken.jpg").write_bytes(b"this is not a JPEG file")
    (root / "dog" / "notes.txt").write_text("ignored: not an image extension")
    return root, pixels
