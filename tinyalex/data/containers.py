"""Dataset containers shared by every dataset in tinyalex.

All datasets follow one small interface, so the DataLoader and the Pipeline
do not care where the images come from::

    len(ds)                  number of examples N
    ds.get_batch(indices)    -> (x uint8 (n, C, H, W), y int64 (n,))
    ds[indices]              same as get_batch (an int index gives a batch of one)
    ds.labels                int64 (N,) all labels (cheap: no image decoding)
    ds.classes               list of class names; label k is classes[k]
    ds.image_shape           (C, H, W) of every image

``ArrayDataset`` keeps everything in memory; ``ImageFolderDataset``
(imagefolder.py) decodes files on demand; ``Subset`` is a view of either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def as_indices(indices, n: int) -> np.ndarray:
    """Turn ``indices`` (int, slice, sequence or array) into an int64 array in 0..n-1.

    Negative indices count from the end, as in NumPy. Raises IndexError for
    indices outside ``-n..n-1`` and TypeError for non-integer input.
    """
    if isinstance(indices, slice):
        return np.arange(n, dtype=np.int64)[indices]
    idx = np.asarray(indices)
    if idx.dtype == bool or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index out of range for dataset of length {n}")
    return np.where(idx < 0, idx + n, idx)


@dataclass
class ArrayDataset:
    """An in-memory dataset: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).

    Example::

        ds = ArrayDataset(np.zeros((2, 1, 28, 28), np.uint8), np.array([0, 1]), ["a", "b"])
        x, y = ds.get_batch([1, 0])      # x: (2, 1, 28, 28) uint8, y: [1, 0]
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list

    def __post_init__(self):
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.classes = list(self.classes)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 NCHW, got {self.images.dtype} shape {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must have shape ({len(self.images)},), got {self.labels.shape}")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must be in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple:
        """(C, H, W)."""
        return tuple(self.images.shape[1:])

    def get_batch(self, indices):
        """Images and labels at ``indices``: (uint8 (n, C, H, W), int64 (n,)). Copies."""
        idx = as_indices(indices, len(self))
        return self.images[idx], self.labels[idx]

    __getitem__ = get_batch

    def __repr__(self) -> str:
        return (f"ArrayDataset(n={len(self)}, image_shape={self.image_shape}, "
                f"classes={len(self.classes)})")


class Subset:
    """The examples ``indices`` of ``dataset``, without copying any image.

    ``Subset(ds, [5, 2]).get_batch([0])`` is ``ds.get_batch([5])``.
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = as_indices(indices, len(dataset))
        self.labels = np.asarray(dataset.labels, dtype=np.int64)[self.indices]
        self.classes = dataset.classes

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def image_shape(self) -> tuple:
        return self.dataset.image_shape

    def get_batch(self, indices):
        return self.dataset.get_batch(self.indices[as_indices(indices, len(self))])

    __getitem__ = get_batch

    def __repr__(self) -> str:
        return f"Subset(n={len(self)} of {self.dataset!r})"


class Relabeled:
    """``dataset`` with its labels renamed: label k becomes ``mapping[k]``, an index into ``classes``.

    Scores a model on data whose classes are a subset of the model's, in
    another order: ``Relabeled(cat_dog_folder, [0, 1], ["cat", "dog", "ship"])``.
    """

    def __init__(self, dataset, mapping, classes):
        self.dataset = dataset
        self.mapping = np.asarray(mapping, dtype=np.int64)
        self.classes = list(classes)
        if len(self.mapping) != len(dataset.classes) or (len(self.mapping) and (
                self.mapping.min() < 0 or self.mapping.max() >= len(self.classes))):
            raise ValueError(f"mapping must give each of the {len(dataset.classes)} classes an index "
                             f"in 0..{len(self.classes) - 1}")
        self.labels = self.mapping[np.asarray(dataset.labels, dtype=np.int64)]

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def image_shape(self) -> tuple:
        return self.dataset.image_shape

    def get_batch(self, indices):
        x, y = self.dataset.get_batch(indices)
        return x, self.mapping[np.asarray(y, dtype=np.int64)]

    __getitem__ = get_batch

    def __repr__(self) -> str:
        return f"Relabeled(n={len(self)} of {self.dataset!r})"


def train_val_split(dataset, val_fraction: float = 0.1, seed: int = 0):
    """Split ``dataset`` into (train, val) Subsets, stratified by class.

    In every class c with n_c examples, round(val_fraction * n_c) of them
    (at least 1 if n_c >= 2) chosen at random go to validation, the rest to
    training, so both parts keep the class proportions. The choice depends
    only on ``seed`` and the labels: the same call always gives the same
    split. Indices inside each part stay in dataset order.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(dataset.labels)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_val = int(round(val_fraction * len(members)))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.append(rng.permutation(members)[:n_val])
    is_val = np.zeros(len(labels), dtype=bool)
    if val:
        is_val[np.concatenate(val)] = True
    return Subset(dataset, np.flatnonzero(~is_val)), Subset(dataset, np.flatnonzero(is_val))
