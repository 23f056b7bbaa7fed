"""Bounded device work per training step (issue 13), counted on the CPU stand-in.

A training step (forward, loss, backward, SGD update) of AlexNet and of
alexnet-small, built on the stand-in (so from the GPU classes of
tinyalex/fast/cuda.py), makes at most 400 device operations, the same
number whatever the batch size (within 5%), and never reads a device value
back to the host. ``python -m tinyalex bench --backend standin --count-ops``
prints the same counts.
"""
import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.bench import count_step, make_tinyalex_step

MAX_OPS = 400


def counted(model, batch, dtype=np.float32):
    with B.use_backend("standin", 0):
        step, _ = make_tinyalex_step(model, batch, dtype)
        return count_step(step)


@pytest.mark.parametrize("model", ["alexnet-small", "alexnet"])
def test_a_training_step_makes_at_most_400_device_operations_and_no_host_read(model):
    res = counted(model, 2)
    assert res["device_ops_per_step"] <= MAX_OPS, res["top_ops"]
    assert res["host_syncs_per_step"] == 0, res["syncs"]


@pytest.mark.parametrize("model, small, large", [
    ("alexnet-small", 8, 128),
    ("alexnet", 2, 8),
    pytest.param("alexnet", 8, 128, marks=pytest.mark.slow),          # about a minute on two cores
])
def test_the_operation_count_does_not_grow_with_the_batch(model, small, large):
    a, b = counted(model, small), counted(model, large)
    assert abs(b["device_ops_per_step"] - a["device_ops_per_step"]) <= 0.05 * a["device_ops_per_step"]
    assert a["host_syncs_per_step"] == b["host_syncs_per_step"] == 0


def test_float64_steps_count_the_same_as_float32():
    assert (counted("alexnet-small", 4, np.float64)["device_ops_per_step"]
            == counted("alexnet-small", 4, np.float32)["device_ops_per_step"])
