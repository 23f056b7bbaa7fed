"""Fixtures for the layer tests."""
import pytest

from tinyalex.layers.fast import use_impl


@pytest.fixture(params=["fast", "reference"])
def impl(request):
    """Run the test with the fast paths (the default, layers/fast.py) and with the plain reference code."""
    with use_impl(request.param):
        yield request.param
