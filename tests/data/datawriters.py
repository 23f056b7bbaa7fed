"""Writers of tiny datasets in the real file formats (IDX, CIFAR pickles, PNG folders)."""
import gzip
import pickle
import struct
import tarfile

import numpy as np


# ---------------------------------------------------------------- IDX files
def idx_bytes(array, magic=None):
    """The IDX encoding of a uint8 array: magic, big-endian dims, raw data."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    return (struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
            + array.tobytes())


def write_file(path, data: bytes, gz: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


FASHION_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_fashion_mnist(directory, n_train=6, n_test=4, gz=True, seed=0):
    """Write the four Fashion-MNIST IDX files; return {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        img_stem, lbl_stem = FASHION_STEMS[split]
        suffix = ".gz" if gz else ""
        write_file(directory / (img_stem + suffix), idx_bytes(images), gz)
        write_file(directory / (lbl_stem + suffix), idx_bytes(labels), gz)
        written[split] = (images, labels)
    return written


# ------------------------------------------------------------ CIFAR batches
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]


def cifar_batch_dict(n, rng, name):
    return {b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"img{i}.png".encode() for i in range(n)]}


def write_cifar10(directory, n_per_batch=3, seed=0):
    """Write cifar-10-batches-py/ content into ``directory``; return the dicts."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = cifar_batch_dict(n_per_batch, rng, name)
        with open(directory / name, "wb") as f:
            pickle.dump(batches[name], f, protocol=2)
    meta = {b"label_names": [c.encode() for c in CIFAR_NAMES], b"num_cases_per_batch": n_per_batch,
            b"num_vis": 3072}
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return batches


def make_tar_gz(src_dir, archive, arcname="cifar-10-batches-py"):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_dir, arcname=arcname)
    return archive


# ------------------------------------------------------------- image folder
def save_png(path, array):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
