"""prefetch: the loader's batches from a background thread, bit for bit, with the loader's position exact."""
import threading
import time

import numpy as np
import pytest

from tinyalex.data import ArrayDataset, DataLoader, Pipeline, make_synthetic, prefetch


class CountingDataset(ArrayDataset):
    """Counts get_batch calls; raises on the batch holding example ``bad`` (if set)."""

    bad = None

    def get_batch(self, indices):
        self.calls = getattr(self, "calls", 0) + 1
        if self.bad is not None and self.bad in np.asarray(indices):
            raise OSError(f"corrupt image {self.bad}")
        return super().get_batch(indices)


def _dataset(n=20):
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * np.ones((1, 1, 4, 4), np.uint8)
    return CountingDataset(images, np.arange(n) % 3, ["a", "b", "c"])


def _augmented_loader():
    ds = make_synthetic(48, image_shape=(3, 12, 12), seed=3)
    pipe = Pipeline(crop=8, pca=True).fit(ds)
    return DataLoader(ds, batch_size=10, seed=5, transform=pipe.train_transform)


def _no_worker_left():
    return not any(t.name == "tinyalex-prefetch" for t in threading.enumerate())


def test_prefetched_batches_equal_the_loaders_own_bit_for_bit():
    plain, ahead = _augmented_loader(), _augmented_loader()
    for epoch in range(2):
        want = [(x.copy(), y.copy()) for x, y in plain]
        with prefetch(ahead) as batches:
            got = list(batches)
        assert len(got) == len(want) == 5
        for (gx, gy), (wx, wy) in zip(got, want):
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)
        assert (ahead.epoch, ahead.batch) == (plain.epoch, plain.batch) == (epoch + 1, 0)
    assert _no_worker_left()


def test_the_loader_position_follows_the_batches_handed_out_not_the_ones_prepared():
    loader = DataLoader(_dataset(20), batch_size=4, seed=0)
    with prefetch(loader, depth=2) as batches:
        for i, _ in enumerate(batches):
            time.sleep(0.02)                       # the thread is ahead by now
            assert loader.batch == i + 1
            if i == 1:
                break
    assert (loader.epoch, loader.batch) == (0, 2)
    assert _no_worker_left()
    # resuming from there gives exactly the rest of the epoch
    fresh = DataLoader(_dataset(20), batch_size=4, seed=0)
    rest_want = [y for _, y in fresh][2:]
    with prefetch(loader) as batches:
        rest = [y for _, y in batches]
    assert len(rest) == 3 and all((a == b).all() for a, b in zip(rest, rest_want))


def test_the_thread_prepares_at_most_depth_batches_ahead():
    ds = _dataset(40)
    loader = DataLoader(ds, batch_size=4, seed=0)
    with prefetch(loader, depth=2) as batches:
        next(batches)
        time.sleep(0.3)
        assert ds.calls <= 1 + 2 + 1               # the one handed out, a full queue, one waiting to go in


def test_an_error_in_the_thread_is_raised_in_the_main_thread_at_its_batch():
    ds = _dataset(20)
    ds.bad = 13
    loader = DataLoader(ds, batch_size=4, shuffle=False)
    seen = []
    with pytest.raises(OSError, match="corrupt image 13"):
        with prefetch(loader) as batches:
            for _, y in batches:
                seen.append(len(y))
    assert seen == [4, 4, 4]                       # batches 0-2; batch 3 holds example 13
    assert loader.batch == 3
    assert _no_worker_left()


def test_an_exception_in_the_main_thread_stops_the_worker():
    loader = DataLoader(_dataset(40), batch_size=4, seed=0)
    with pytest.raises(KeyboardInterrupt):
        with prefetch(loader) as batches:
            next(batches)
            raise KeyboardInterrupt
    assert _no_worker_left()


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        with prefetch(DataLoader(_dataset(), batch_size=4), depth=0):
            pass
