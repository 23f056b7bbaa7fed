"""Shared fixtures: random generators and the float64 dtype used by gradient checks."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _numpy_backend():
    """Every test starts on the NumPy backend and device 0, whatever the last one did."""
    from tinyalex import backend

    with backend.use_backend("numpy"):
        yield
