"""Gradient checking: compare a layer's backward with central differences.

For a layer y = f(x; W) and a fixed random upstream gradient ``dout``, the
scalar L = sum(y * dout) has dL/dx = backward(dout). Each entry is checked
against the central difference (as in CS231n's ``eval_numerical_gradient_array``)

    dL/dx[i] ~ sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2 h)

computed in float64. The error reported for each tensor is the relative
max-norm error

    err = max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|)

which, unlike an entrywise ratio, does not blow up at entries that are
nearly zero; a wrong backward gives errors near 1, float64 round-off about
1e-10. Use float64 layers (``dtype=np.float64``): in float32 the differences
are swamped by round-off.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy

from . import layers as L
from .backend import device, device_of, to_device_of, to_host
from .fast import FastConv2D, FastLinear, FastLRN, FastMaxPool2D, FastReLU, WinogradConv2D

__all__ = ["rel_error", "numerical_gradient", "gradcheck", "GradCheckResult", "assert_gradients_close"]


def rel_error(analytic, numeric) -> float:
    """max|a - n| / max(max|a|, max|n|), on host copies; 0 if both are zero."""
    a = numpy.asarray(to_host(analytic), dtype=numpy.float64)
    n = numpy.asarray(to_host(numeric), dtype=numpy.float64)
    if a.shape != n.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {n.shape}")
    scale = max(numpy.abs(a).max(initial=0.0), numpy.abs(n).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(numpy.abs(a - n).max() / scale)


def numerical_gradient(f, x, dout, h=1e-5, indices=None):
    """Central-difference gradient of sum(f(x) * dout) with respect to x.

    ``f`` is called with no arguments and must read ``x``, which is perturbed
    in place (and restored). ``indices`` (flat positions) limits the check to
    a sample; the returned array is NaN elsewhere. Returns a host array.
    """
    grad = numpy.full(x.shape, numpy.nan)
    flat_indices = range(x.size) if indices is None else indices
    dev = device_of(x)             # x may live on another device than the output (two towers)
    dout = numpy.asarray(to_host(dout), dtype=numpy.float64)

    def set_entry(i, value):
        with device(dev):
            x[i] = value

    def output():                  # a float64 host copy: the output may be a view of x
        return numpy.array(to_host(f()), dtype=numpy.float64)

    for flat in flat_indices:
        i = numpy.unravel_index(int(flat), x.shape)
        old = x[i].item()
        set_entry(i, old + h)
        pos = output()
        set_entry(i, old - h)
        neg = output()
        set_entry(i, old)
        grad[i] = ((pos - neg) * dout).sum() / (2 * h)
    return grad


@dataclass
class GradCheckResult:
    """Relative errors per checked tensor ("x" for the input, then parameter names)."""

    errors: dict = field(default_factory=dict)
    checked: dict = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    def passed(self, tol=1e-6) -> bool:
        return self.max_error < tol

    def __str__(self):
        rows = [f"{'tensor':<12} {'entries':>8} {'rel. error':>11}"]
        for k, e in self.errors.items():
            rows.append(f"{k:<12} {self.checked[k]:>8} {e:>11.2e}")
        return "\n".join(rows)


def _sample(size, max_entries, rng):
    if max_entries is None or size <= max_entries:
        return None
    return rng.choice(size, max_entries, replace=False)


def gradcheck(layer, x, *extra, dout=None, h=1e-5, seed=0, max_entries=None, params=True) -> GradCheckResult:
    """Check ``layer.backward`` for the input ``x`` and every parameter.

    ``extra`` are further forward arguments that are not differentiated (the
    labels of a loss). ``dout`` defaults to a random array (or 1 for a scalar
    output). ``max_entries`` checks a random sample of each tensor's entries.
    The layer should be float64; its state (mode, dropout mask) must make
    forward deterministic.
    """
    low = sorted({str(t.dtype) for t in [x, *layer.parameters()] if t.dtype != numpy.float64})
    if low:
        warnings.warn(
            f"gradcheck of {layer}: tensors of dtype {', '.join(low)}; central differences with "
            f"h={h} drown in their round-off, so the errors will look large even for a right backward. "
            "Build the layer and its input in float64 (dtype=np.float64, x.astype(np.float64)).",
            RuntimeWarning, stacklevel=2)
    rng = numpy.random.default_rng(seed)

    def run():
        return layer.forward(x, *extra)

    out = run()
    if dout is None:
        if out.ndim == 0:
            dout = 1.0
        else:
            host = rng.standard_normal(out.shape).astype(out.dtype)
            dout = to_device_of(host, out)
    dx = layer.backward(dout)
    result = GradCheckResult()

    def check(name, analytic, tensor):
        idx = _sample(tensor.size, max_entries, rng)
        num = numerical_gradient(run, tensor, dout, h, idx)
        a = numpy.asarray(to_host(analytic), dtype=numpy.float64)
        if idx is not None:
            a, num = a.ravel()[idx], num.ravel()[idx]
        result.errors[name] = rel_error(a, num)
        result.checked[name] = tensor.size if idx is None else len(idx)

    check("x", dx, x)
    if params:
        grads = {name: g for name, g in layer.named_gradients()}
        for name, p in list(layer.named_parameters()):
            if grads.get(name) is None:
                raise ValueError(f"gradcheck: {layer}: backward() left no gradient for parameter {name!r}")
            check(name, grads[name], p)
    return result


def assert_gradients_close(layer, x, *extra, tol=1e-6, **kwargs) -> GradCheckResult:
    """Run :func:`gradcheck` and raise AssertionError (with the table) above ``tol``."""
    res = gradcheck(layer, x, *extra, **kwargs)
    if not res.passed(tol):
        raise AssertionError(f"gradient check of {layer} failed (tolerance {tol:.0e}):\n{res}")
    return res


def check_every_layer(seed=0):
    """Gradient-check one small instance of every tinyalex layer (float64), reference and fast classes.

    Returns a list of (description, GradCheckResult). This is the README's
    first demonstration and the table ``python -m tinyalex gradcheck`` prints.
    """
    f64 = numpy.float64
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 9, 8))
    drop = L.Dropout(0.5, dtype=f64)
    drop.set_mask(rng.random(x.shape) >= 0.5)
    paper_drop = L.Dropout(0.5, mode="paper", dtype=f64)
    paper_drop.set_mask(rng.random(x.shape) >= 0.5)
    cases = [
        ("Conv2D 3x3 pad 1", L.Conv2D(4, 6, 3, padding=1, rng=rng, dtype=f64), (x,)),
        ("Conv2D 3x2 stride 2 groups 2", L.Conv2D(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=rng, dtype=f64), (x,)),
        ("ReLU", L.ReLU(f64), (x,)),
        ("Tanh", L.Tanh(f64), (x,)),
        ("LRN paper (alpha=1e-4)", L.LRN(dtype=f64), (x,)),
        ("LRN paper, alpha=0.5", L.LRN(alpha=0.5, dtype=f64), (x,)),
        ("LRN caffe, alpha=0.5", L.LRN(alpha=0.5, convention="caffe", dtype=f64), (x,)),
        ("MaxPool2D 3/2 (overlapping)", L.MaxPool2D(3, 2, dtype=f64), (x,)),
        ("MaxPool2D 2/2", L.MaxPool2D(2, 2, dtype=f64), (x,)),
        ("Dropout inverted", drop, (x,)),
        ("Dropout paper form", paper_drop, (x,)),
        ("Linear", L.Linear(7, 5, rng=rng, dtype=f64), (rng.standard_normal((3, 7)),)),
        ("Flatten", L.Flatten(f64), (x,)),
        ("SoftmaxCrossEntropy", L.SoftmaxCrossEntropy(f64),
         (rng.standard_normal((4, 10)) * 50, rng.integers(0, 10, 4))),
        # the fast classes of tinyalex/fast (what a model runs by default)
        ("FastConv2D 3x2 stride 2 groups 2", FastConv2D(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=rng,
                                                        dtype=f64), (x,)),
        ("WinogradConv2D 3x3 pad 1", WinogradConv2D(4, 6, 3, padding=1, rng=rng, dtype=f64), (x,)),
        ("WinogradConv2D 5x5 groups 2", WinogradConv2D(4, 6, 5, padding=2, groups=2, rng=rng, dtype=f64),
         (x,)),
        ("FastReLU", FastReLU(f64), (x,)),
        ("FastLRN paper, alpha=0.5", FastLRN(alpha=0.5, dtype=f64), (x,)),
        ("FastMaxPool2D 3/2 (overlapping)", FastMaxPool2D(3, 2, dtype=f64), (x,)),
        ("FastLinear", FastLinear(7, 5, rng=rng, dtype=f64), (rng.standard_normal((3, 7)),)),
    ]
    return [(name, gradcheck(layer, *args, seed=seed)) for name, layer, args in cases]


def register_cli(subparsers):
    p = subparsers.add_parser(
        "gradcheck", help="gradient-check every layer and print a table",
        description="Compare every layer's hand-written backward pass with central differences (float64).")
    p.add_argument("--tol", type=float, default=1e-6, help="largest relative error that passes")
    p.add_argument("--seed", type=int, default=0, help="random seed for inputs and weights")
    p.set_defaults(func=_cli_main)


def _cli_main(args):
    rows = check_every_layer(args.seed)
    print(f"{'layer':<32} {'worst rel. error':>16}  result")
    ok = True
    for name, res in rows:
        good = res.passed(args.tol)
        ok &= good
        print(f"{name:<32} {res.max_error:>16.2e}  {'pass' if good else 'FAIL'}")
    print(f"\n{sum(r.passed(args.tol) for _, r in rows)} of {len(rows)} layers pass (tolerance {args.tol:.0e})")
    return 0 if ok else 1
