"""DataLoader: iterate over a dataset in (optionally shuffled) batches.

Reproducibility and resuming
----------------------------
Nothing random is carried from one batch to the next. Everything is derived
from the seed and the position in training:

* the order of epoch e is ``np.random.default_rng([seed, e]).permutation(N)``;
* the transform of batch b of epoch e gets the generator
  ``np.random.default_rng([seed, e, b, 1])`` (random crops, flips, PCA
  colour noise). (The trailing 1 keeps it distinct from the permutation's
  generator: NumPy's SeedSequence treats missing words as zeros.)

So the loader's whole state is three integers (seed, epoch, next batch),
``state_dict()`` returns them, and a run resumed with ``load_state_dict``
produces exactly the batches, bit for bit, that the uninterrupted run would
have produced, even when it stopped in the middle of an epoch.
"""

from __future__ import annotations

import numpy as np

from .transforms import to_float


def shard_bounds(n, rank, ranks):
    """Rows [lo, hi) of a batch of ``n`` that ``rank`` of ``ranks`` takes (contiguous; sizes differ by at most 1)."""
    return n * rank // ranks, n * (rank + 1) // ranks


def _check_int(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum or (maximum is not None and value >= maximum):
        bound = f">= {minimum}" + (f" and < {maximum}" if maximum is not None else "")
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


class DataLoader:
    """Batches ``(x float32 (n, C, h, w), y int64 (n,))`` from ``dataset``.

    Parameters
    ----------
    dataset : any object with ``len()`` and ``get_batch(indices)`` (containers.py);
        only the images of the current batch are loaded (bounded memory).
    batch_size : images per batch (the last one may be smaller unless drop_last).
    shuffle : new random order every epoch (derived from (seed, epoch)).
    seed : int in [0, 2**32), the single source of randomness.
    drop_last : drop the last incomplete batch.
    transform : ``transform(x_uint8, rng) -> float32 batch``, e.g.
        ``pipeline.train_transform`` or ``pipeline.eval_transform``;
        default ``x / 255``.
    shard : ``(rank, ranks)`` for data-parallel training: every rank visits
        the same global batches in the same order, and loads and transforms
        only its contiguous share of each (rows ``[n*rank//ranks,
        n*(rank+1)//ranks)`` of a batch of n); its transform's generator
        has the rank appended to its seed. Default ``(0, 1)``: the whole batch.

    ``for x, y in loader`` runs one epoch, starting at the saved position
    (``loader.epoch``, ``loader.batch``), and advances ``epoch`` when the
    epoch is complete. Use one iterator at a time.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, transform=None, shard=(0, 1)):
        if not hasattr(dataset, "get_batch") or not hasattr(dataset, "__len__"):
            raise ValueError("dataset must have __len__ and get_batch(indices)")
        self.dataset = dataset
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0, 2**32)
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be callable or None, got {transform!r}")
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        rank, ranks = shard
        _check_int("shard ranks", ranks, 1)
        self.rank, self.ranks = _check_int("shard rank", rank, 0, ranks), ranks
        self.transform = transform if transform is not None else to_float
        if len(dataset) == 0:
            raise ValueError("dataset is empty")
        if len(self) == 0:
            raise ValueError(f"batch_size={batch_size} > len(dataset)={len(dataset)} with "
                             "drop_last=True gives no batches")
        self.epoch = 0   # current epoch
        self.batch = 0   # index of the next batch within the current epoch

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> np.ndarray:
        """Indices of the dataset in the order epoch ``epoch`` visits them."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator handed to the transform for batch ``batch`` of ``epoch`` (and this rank, if sharded)."""
        rank = [self.rank] if self.ranks > 1 else []
        return np.random.default_rng([self.seed, epoch, batch, 1] + rank)

    def global_batch_size(self, batch: int) -> int:
        """Images in global batch ``batch`` (over all ranks): batch_size, or fewer in the last one."""
        return min(self.batch_size, len(self.dataset) - batch * self.batch_size)

    def load_batch(self, order, epoch: int, b: int):
        """Batch ``b`` of ``epoch`` (``order = self.order(epoch)``): (x, y), a function of (seed, epoch, b) only.

        Changes nothing in the loader, so another thread may call it
        (tinyalex.data.prefetch prepares the next batch this way).
        """
        indices = order[b * self.batch_size:(b + 1) * self.batch_size]
        if self.ranks > 1:                       # data parallel: this rank's share of the global batch
            lo, hi = shard_bounds(len(indices), self.rank, self.ranks)
            indices = indices[lo:hi]
        x, y = self.dataset.get_batch(indices)
        return self.transform(x, self.batch_rng(epoch, b)), np.asarray(y, dtype=np.int64)

    def __iter__(self):
        epoch, order = self.epoch, self.order(self.epoch)
        for b in range(self.batch, len(self)):
            batch = self.load_batch(order, epoch, b)
            self.batch = b + 1   # a checkpoint taken now resumes after this batch
            yield batch
        self.epoch, self.batch = epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at the beginning of ``epoch``."""
        self.epoch, self.batch = _check_int("epoch", epoch, 0), 0

    def state_dict(self) -> dict:
        """Position and seed: {'seed', 'epoch', 'batch', 'batch_size', 'num_examples'} (ints)."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch,
                "batch_size": self.batch_size, "num_examples": len(self.dataset)}

    def load_state_dict(self, state) -> None:
        """Continue from a ``state_dict()``; batch size and dataset size must match."""
        for key, mine in (("batch_size", self.batch_size), ("num_examples", len(self.dataset))):
            if key in state and int(state[key]) != mine:
                raise ValueError(f"checkpoint has {key}={int(state[key])}, this loader has {mine}; "
                                 "resuming would not reproduce the run")
        self.seed = _check_int("seed", int(state["seed"]), 0, 2**32)
        self.epoch = _check_int("epoch", int(state["epoch"]), 0)
        self.batch = _check_int("batch", int(state["batch"]), 0, len(self) + 1)

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, batch={self.batch})")
