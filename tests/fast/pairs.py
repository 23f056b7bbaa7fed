"""A fast layer beside its reference twin: same parameters, same input, same upstream gradient.

The reference class (tinyalex/layers) is the specification; a fast class
(tinyalex/fast) must give the same output, input gradient and parameter
gradients, in float64 to round-off and in float32 to float32 round-off, on
every place (NumPy, the device stand-in, CuPy), with its results left on
that place.
"""
import copy

import numpy as np

from placement import assert_placed, put
from tinyalex import backend as B

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}
HOST = ("numpy", None)


def twins(fast_cls, ref_cls, *args, fast_kwargs=None, **kwargs):
    """(fast layer, reference layer) built from the same arguments, with the same parameters."""
    assert issubclass(fast_cls, ref_cls)
    fast = fast_cls(*args, **kwargs, **(fast_kwargs or {}))
    ref = ref_cls(*args, **kwargs)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def run(layer, x, dout, place=HOST):
    """forward(x), backward(dout) on ``place``: (out, dx or None, {param: grad}) as host copies.

    Everything the layer returns or stores as a gradient must stay on the place.
    """
    x, dout = put(place, layer, (x, dout))
    out = layer.forward(x)
    dx = layer.backward(dout)
    for arr in [out] + ([] if dx is None else [dx]) + list(layer.grads.values()):
        assert_placed(place, arr)
    grads = {k: B.to_host(v).copy() for k, v in layer.grads.items()}
    return B.to_host(out).copy(), (None if dx is None else B.to_host(dx).copy()), grads


def assert_same(fast, ref, x, rng, place=HOST, tol=None, dout=None):
    """fast and ref agree on out, dx and every parameter gradient (x, dout: host arrays; dout random if None)."""
    dtype = x.dtype.type
    if dout is None:
        with B.use_backend("numpy"):
            shape = ref_output_shape(ref, x)
        dout = rng.standard_normal(shape).astype(dtype)
    got, want = run(fast, x, dout, place), run(ref, x, dout, place)
    tol = tol or TOL[dtype]
    assert got[0].dtype == want[0].dtype == dtype
    np.testing.assert_allclose(got[0], want[0], **tol, err_msg="forward")
    if want[1] is None:
        assert got[1] is None
    else:
        np.testing.assert_allclose(got[1], want[1], **tol, err_msg="dx")
    assert got[2].keys() == want[2].keys()
    for k in want[2]:
        np.testing.assert_allclose(got[2][k], want[2][k], **tol, err_msg=f"grad {k}")
    return got, want


def ref_output_shape(layer, x):
    """The output shape of ``layer`` for the host array x (a throwaway forward of a copy of the layer)."""
    return copy.deepcopy(layer).forward(x).shape
