"""The pieces of data-parallel training that need no MPI: shards, buckets, the scaling model."""
import json

import numpy as np
import pytest

from tinyalex.cli import main
from tinyalex.data import load_dataset
from tinyalex.data.loader import DataLoader, shard_bounds
from tinyalex.models import build_model
from tinyalex.train.distributed import bucket_plan, layer_costs, ring_allreduce_seconds, scaling_table


def test_shards_cover_a_batch_once_in_order():
    for n in (1, 7, 128):
        for ranks in (1, 2, 3, 4):
            rows = [r for k in range(ranks) for r in range(*shard_bounds(n, k, ranks))]
            assert rows == list(range(n))


def test_sharded_loaders_together_yield_the_global_batches():
    ds = load_dataset("synthetic", split="train", seed=0)
    whole = DataLoader(ds, 10, seed=3)
    parts = [DataLoader(ds, 10, seed=3, shard=(r, 3)) for r in range(3)]
    for (xw, yw), *shards in zip(whole, *parts):
        assert np.array_equal(np.concatenate([y for _, y in shards]), yw)
        assert np.array_equal(np.concatenate([x for x, _ in shards]), xw)   # default transform draws nothing


def test_a_sharded_loader_draws_its_own_augmentation():
    ds = load_dataset("synthetic", split="train", seed=0)
    a, b = DataLoader(ds, 10, shard=(0, 2)), DataLoader(ds, 10, shard=(1, 2))
    one = DataLoader(ds, 10)
    assert a.batch_rng(0, 0).integers(1 << 30) != b.batch_rng(0, 0).integers(1 << 30)
    assert one.batch_rng(0, 0).integers(1 << 30) == np.random.default_rng([0, 0, 0, 1]).integers(1 << 30)


def test_global_batch_size_of_the_last_batch():
    ds = load_dataset("synthetic", split="train", seed=0)        # 512 images
    loader = DataLoader(ds, 100, shard=(1, 2))
    assert [loader.global_batch_size(b) for b in range(len(loader))] == [100] * 5 + [12]


def test_shard_rank_must_be_below_ranks():
    ds = load_dataset("synthetic", split="train", seed=0)
    with pytest.raises(ValueError, match="shard rank"):
        DataLoader(ds, 10, shard=(2, 2))


def test_buckets_keep_order_and_respect_the_size():
    sizes = [10, 10, 30, 5, 100, 1]
    plan = bucket_plan(sizes, 4, 160)                      # 40 floats per bucket
    assert [i for b in plan for i in b] == list(range(len(sizes)))
    for b in plan:
        assert len(b) == 1 or sum(sizes[i] for i in b) * 4 <= 160
    assert [4] in plan                                   # larger than a bucket: a bucket of its own


def test_alexnet_gradients_fit_in_few_buckets():
    net = build_model("alexnet")
    sizes = [p.size for p in net.parameters()]
    assert len(bucket_plan(sizes, 4, 32 << 20)) <= 9 < len(sizes)


def test_ring_allreduce_time_formula():
    assert ring_allreduce_seconds(1e9, 1, 10) == 0
    t = ring_allreduce_seconds(1e9, 4, 8, latency_s=0)   # 8 Gb/s = 1 GB/s
    assert t == pytest.approx(2 * 3 / 4 * 1.0)


def test_layer_costs_of_alexnet_match_the_paper_shapes():
    net = build_model("alexnet")
    costs = {name: (params, flops) for name, params, flops in layer_costs(net, net.input_shape)}
    assert costs["conv1"] == (34_944, 2 * 34_848 * 55 * 55)
    assert costs["fc6"] == (37_752_832, 2 * 37_748_736)
    assert sum(p for p, _ in costs.values()) == 60_965_224


def test_scaling_table_shows_the_one_weird_trick():
    net = build_model("alexnet")
    t = scaling_table(net, net.input_shape, batch_per_rank=128, images_per_s=100)
    rows = {r["layer"]: r for r in t["layers"]}
    assert t["grad_bytes"] == 60_965_224 * 4
    assert t["conv_share"]["flops"] > 0.9 and t["conv_share"]["params"] < 0.05
    assert rows["conv3"]["flops_per_grad_byte"] > 100 * rows["fc6"]["flops_per_grad_byte"]
    assert 0 < t["efficiency"]["16x10"] < t["efficiency"]["2x100"] <= 1


def test_bench_scaling_prints_the_table_computed_from_the_model(tmp_path, capsys):
    out = tmp_path / "scaling.json"
    assert main(["bench", "--scaling", "--model", "alexnet", "--batch-size", "128", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| fc6 | 37,752,832 | 151.0 |" in text and "Gradient bytes per rank per step: 243.9 MB" in text
    assert json.loads(out.read_text())["grad_bytes"] == 60_965_224 * 4
