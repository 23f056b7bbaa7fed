"""Properties every layer must have: right gradients, float32 works and stays float32, backward never
writes into dout, bad dout and early backward are refused clearly.

The layers come from tests/layer_cases.py (one small instance of each). Each test runs twice: with the
reference classes of tinyalex/layers (fast=False) and with the fast classes of tinyalex/fast (fast=True,
the default of a model), as implementations() gives them.
"""
import re

import numpy as np
import pytest

from layer_cases import CASES
from tinyalex import layers as L
from tinyalex.gradcheck import gradcheck


@pytest.fixture(params=[False, True], ids=["reference", "fast"])
def fast(request):
    """Every property holds for the reference classes and for the fast ones."""
    return request.param


def _forward(layer, args):
    return layer.forward(*args)


def _dout_like(out, rng):
    return rng.standard_normal(out.shape).astype(out.dtype) if out.ndim else np.asarray(1.0, dtype=out.dtype)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradients_match_numerical_in_float64(case, fast):
    res = gradcheck(case.build(np.float64, fast), *case.inputs(np.float64))
    assert res.passed(1e-6), f"{case.name}:\n{res}"


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_forward_matches_float64(case, fast):
    y64 = _forward(case.build(np.float64, fast), case.inputs(np.float64))
    y32 = _forward(case.build(np.float32, fast), case.inputs(np.float32))
    scale = np.abs(y64).max()
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_backward_matches_float64(case, rng, fast):
    results = {}
    for dt in (np.float64, np.float32):
        layer = case.build(dt, fast)
        out = _forward(layer, case.inputs(dt))
        dout = _dout_like(out, np.random.default_rng(3))
        results[dt] = (layer.backward(dout), dict(layer.named_gradients()))
    (dx64, g64), (dx32, g32) = results[np.float64], results[np.float32]
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5 * np.abs(dx64).max())
    for name in g64:
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-4, atol=1e-5 * np.abs(g64[name]).max())


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_outputs_and_gradients_stay_float32(case, rng, fast):
    layer = case.build(np.float32, fast)
    out = _forward(layer, case.inputs(np.float32))
    assert out.dtype == np.float32
    dx = layer.backward(_dout_like(out, rng))
    assert dx.dtype == np.float32
    for name, p in layer.named_parameters():
        assert p.dtype == np.float32, name
    for name, g in layer.named_gradients():
        assert g.dtype == np.float32, name


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float64_input_to_float32_layer_raises_naming_both_dtypes(case, fast):
    layer = case.build(np.float32, fast)
    with pytest.raises(TypeError, match=r"float64.*float32"):
        _forward(layer, case.inputs(np.float64))


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_backward_does_not_modify_dout(case, rng, fast):
    layer = case.build(np.float64, fast)
    out = _forward(layer, case.inputs(np.float64))
    dout = _dout_like(out, rng)
    kept = dout.copy()
    layer.backward(dout)
    np.testing.assert_array_equal(dout, kept)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_forward_does_not_modify_its_input(case, fast):
    args = case.inputs(np.float64)
    kept = [a.copy() for a in args]
    layer = case.build(np.float64, fast)
    layer.backward(_dout_like(_forward(layer, args), np.random.default_rng(0)))
    for a, k in zip(args, kept):
        np.testing.assert_array_equal(a, k)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_backward_before_forward_raises_naming_the_layer(case, fast):
    layer = case.build(np.float64, fast)
    with pytest.raises(ValueError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 2)))


@pytest.mark.parametrize("case", [c for c in CASES if "SoftmaxCrossEntropy" not in c.name], ids=repr)
def test_dout_of_the_wrong_shape_raises_naming_both_shapes(case, fast):
    layer = case.build(np.float64, fast)
    out = _forward(layer, case.inputs(np.float64))
    bad = np.ones((1,) + out.shape[1:])       # would broadcast silently without the check
    expected = re.escape(str(tuple(out.shape)))
    with pytest.raises(ValueError, match=rf"dout shape.*expected {expected}, got \(1, "):
        layer.backward(bad)


@pytest.mark.parametrize("case", [c for c in CASES if "SoftmaxCrossEntropy" not in c.name], ids=repr)
def test_dout_of_another_dtype_raises(case, fast):
    layer = case.build(np.float64, fast)
    out = _forward(layer, case.inputs(np.float64))
    with pytest.raises(TypeError, match=r"dout dtype float32 does not match the layer's float64"):
        layer.backward(np.ones(out.shape, np.float32))


def test_gradcheck_warns_that_float32_is_too_coarse():
    layer = L.Linear(3, 2)                                     # float32
    with pytest.warns(RuntimeWarning, match=r"dtype float32.*float64"):
        gradcheck(layer, np.ones((2, 3), np.float32))
