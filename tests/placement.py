"""Putting a layer and its inputs on a test's place, and checking that results stay there.

A place is the ``(backend name, device)`` pair the ``place`` fixture of
tests/conftest.py yields (NumPy, the CPU device stand-in on device 1, CuPy).
"""
from tinyalex import backend


def put(place, layer, args):
    """Move ``layer`` to the place and return ``args`` (host arrays) copied there, explicitly."""
    name, dev = place
    layer.to(dev, name)
    return tuple(backend.to_device(a, dev, name) for a in args)


def assert_placed(place, arr):
    """``arr`` lives on the place's backend (and device)."""
    name, dev = place
    assert backend.backend_of(arr) == name
    if dev is not None:
        assert backend.device_of(arr) == dev
