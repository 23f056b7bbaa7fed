"""Shared fixtures: random generators, the NumPy backend by default, and the places a layer can run."""
import os

import numpy as np
import pytest

# Test processes give freed memory back to the system: implementations(fast=True) would otherwise
# keep each process's peak (tinyalex/fast/cpu.py keep_freed_memory), and many run side by side.
os.environ.setdefault("TINYALEX_KEEP_FREED_MEMORY", "0")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _numpy_backend():
    """Every test starts on the NumPy backend and device 0, whatever the last one did."""
    from tinyalex import backend

    with backend.use_backend("numpy"):
        yield


@pytest.fixture(params=["numpy", "standin", pytest.param("cupy", marks=pytest.mark.gpu)])
def place(request):
    """(backend name, device) with that backend active and the device current (CuPy skips without a GPU).

    The stand-in runs on device 1, not 0, so code that silently assumes device 0, creates arrays on the
    host, or reads device data back implicitly fails there. tests/placement.py moves layers and arrays.
    """
    from tinyalex import backend

    name = request.param
    if name == "cupy":
        try:
            backend._import_cupy()
        except backend.BackendError as exc:
            pytest.skip(f"CuPy backend unavailable: {exc}")
    dev = {"numpy": None, "standin": 1, "cupy": 0}[name]
    with backend.use_backend(name, dev or 0), backend.device(dev):
        yield name, dev
