"""DataLoader: coverage, determinism, bit-exact resume, argument checks, bounded loading."""
import numpy as np
import pytest

from tinyalex.data import ArrayDataset, DataLoader, Pipeline, make_synthetic


class SpyDataset(ArrayDataset):
    """Records the indices of every get_batch call."""

    def get_batch(self, indices):
        self.calls = getattr(self, "calls", []) + [np.asarray(indices).copy()]
        return super().get_batch(indices)


def _dataset(n=10):
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * np.ones((1, 1, 4, 4), np.uint8)
    return SpyDataset(images, np.arange(n) % 3, ["a", "b", "c"])


def _ids(x):
    """The example id stored as the pixel value (inverts the default x / 255)."""
    return np.rint(x[:, 0, 0, 0] * 255).astype(int)


def test_every_sample_once_per_epoch_with_partial_last_batch():
    loader = DataLoader(_dataset(10), batch_size=4, seed=0)
    sizes, seen = [], []
    for x, y in loader:
        sizes.append(len(x))
        seen += list(_ids(x))
        assert x.dtype == np.float32 and y.dtype == np.int64
    assert sizes == [4, 4, 2] and sorted(seen) == list(range(10))


def test_len_counts_batches_with_and_without_drop_last():
    assert len(DataLoader(_dataset(10), 4)) == 3
    assert len(DataLoader(_dataset(10), 4, drop_last=True)) == 2
    assert len(DataLoader(_dataset(8), 4)) == 2
    assert [len(x) for x, _ in DataLoader(_dataset(10), 4, drop_last=True)] == [4, 4]


def test_labels_follow_their_images():
    for x, y in DataLoader(_dataset(10), 3, seed=5):
        np.testing.assert_array_equal(y, _ids(x) % 3)


def test_same_seed_same_order_new_order_each_epoch():
    a, b = DataLoader(_dataset(), 4, seed=7), DataLoader(_dataset(), 4, seed=7)
    first = [_ids(x) for x, _ in a]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate([_ids(x) for x, _ in b]))
    second = [_ids(x) for x, _ in a]
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    other = DataLoader(_dataset(), 4, seed=8)
    assert not np.array_equal(np.concatenate(first), np.concatenate([_ids(x) for x, _ in other]))


def test_order_is_derived_from_seed_and_epoch():
    loader = DataLoader(_dataset(10), 10, seed=3)
    loader.set_epoch(4)
    x, _ = next(iter(loader))
    np.testing.assert_array_equal(_ids(x), np.random.default_rng([3, 4]).permutation(10))


def test_no_shuffle_keeps_dataset_order():
    loader = DataLoader(_dataset(10), 4, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([_ids(x) for x, _ in loader]), np.arange(10))


def test_epoch_counter_advances_after_a_full_pass():
    loader = DataLoader(_dataset(10), 4)
    list(loader)
    list(loader)
    assert loader.state_dict()["epoch"] == 2 and loader.state_dict()["batch"] == 0


def _augmenting_loader(ds, pipe):
    return DataLoader(ds, 16, seed=123, transform=pipe.train_transform)


def test_resume_mid_epoch_reproduces_uninterrupted_run_bit_for_bit():
    ds = make_synthetic(n=70, image_shape=(3, 8, 8))
    pipe = Pipeline(crop=6).fit(ds)
    uninterrupted = _augmenting_loader(ds, pipe)
    reference = [batch for _ in range(3) for batch in uninterrupted]

    run = _augmenting_loader(ds, pipe)
    got = [b for b in run]                              # epoch 0
    it = iter(run)
    got += [next(it), next(it)]                         # 2 batches of epoch 1
    state = run.state_dict()                            # checkpoint, then "crash"
    resumed = _augmenting_loader(ds, pipe)
    resumed.load_state_dict(state)
    got += list(resumed)                                # rest of epoch 1
    got += list(resumed)                                # epoch 2
    assert len(got) == len(reference)
    for (xa, ya), (xb, yb) in zip(got, reference):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_state_dict_round_trip():
    loader = DataLoader(_dataset(), 4, seed=9)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    assert state == {"seed": 9, "epoch": 0, "batch": 1, "batch_size": 4, "num_examples": 10}
    other = DataLoader(_dataset(), 4, seed=0)
    other.load_state_dict(state)
    assert other.state_dict() == state


def test_load_state_dict_rejects_a_different_batch_size():
    state = DataLoader(_dataset(), 4).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), 5).load_state_dict(state)


def test_only_the_batch_is_loaded():
    ds = _dataset(10)
    for _ in DataLoader(ds, 3, seed=1):
        pass
    assert [len(c) for c in ds.calls] == [3, 3, 3, 1]


def test_transform_receives_uint8_and_a_generator():
    seen = []

    def transform(x, rng):
        seen.append((x.dtype, type(rng)))
        return x.astype(np.float32)

    next(iter(DataLoader(_dataset(), 4, transform=transform)))
    assert seen == [(np.uint8, np.random.Generator)]


def test_default_transform_scales_to_0_1():
    x, _ = next(iter(DataLoader(_dataset(10), 10, shuffle=False)))
    np.testing.assert_allclose(x[:, 0, 0, 0], np.arange(10) / 255, rtol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_bad_batch_size_raises_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), bad)


@pytest.mark.parametrize("bad", [-1, 2**32, 0.5])
def test_bad_seed_raises_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="seed"):
        DataLoader(_dataset(), 4, seed=bad)


def test_other_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="transform"):
        DataLoader(_dataset(), 4, transform="flip")
    with pytest.raises(ValueError, match="dataset"):
        DataLoader([1, 2, 3], 4)
    with pytest.raises(ValueError, match="empty"):
        DataLoader(_dataset(0), 4)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(3), 4, drop_last=True)
