"""Automatic checks for the classroom exercises.

Every exercise is an :class:`Exercise`: the functions the student writes,
its points, a hint, and its test *cases*. A case holds the inputs and the
answers of tinyalex's own layers (the references). Checking is split in two:

* :meth:`Exercise.run` calls the student's functions on a case's inputs and
  returns their outputs as plain arrays (this is the only part that runs the
  student's code);
* :meth:`Exercise.verdict` compares those outputs with the references and
  decides PASS or FAIL.

In a notebook both halves run in the student's process
(``check_conv_forward(globals())``): students check themselves. The grader
(grade.py) runs only :meth:`Exercise.run` in a fresh process per submission
and judges the returned arrays in its own process, where the submission
cannot reach the references, the cases' answers or the verdict.

Backward exercises get the reference forward pass's cache first (in the
layout the handout's code reads), so a bug in a forward pass costs one
point, not two; when that fails they get the student's own forward cache,
since a docstring says the cache is "whatever your backward needs".

The public cases are fixed: students run them. :func:`hidden_cases` draws
more from a seed at grading time (shapes, strides, paddings, groups,
non-square kernels, ties in max pooling, large logits). Everything is
float64 NumPy with small shapes.
"""
from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass, field

import numpy as np

from .. import layers as L
from ..gradcheck import rel_error
from ..layers.lrn import window_sum as reference_window_sum
from ..train.sgd import SGD

# What ``from tinyalex.exercises.checks import *`` gives a student: the check functions, nothing
# that computes a reference answer.
__all__ = ["CheckResult", "Report", "run_all", "check_all"] + [
    "check_conv_forward", "check_conv_backward", "check_window_sum", "check_lrn_forward",
    "check_lrn_backward", "check_maxpool_backward", "check_dropout",
    "check_softmax_cross_entropy", "check_sgd_momentum_update", "check_batchnorm_backward",
    "check_residual_backward",
]

F64 = np.float64
TOL = 1e-7          # float64 against tinyalex's layers: round-off is ~1e-15
HANDOUT_CACHE = "the handout's cache from the reference forward"
OWN_CACHE = "the cache of your own forward"


class Mismatch(AssertionError):
    """A comparison failed outright (wrong shape, not an array, modified input...)."""


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------
@dataclass
class CheckResult:
    """The verdict of one exercise: ``passed``, the worst relative error and each measurement."""

    name: str
    passed: bool
    error: float | None = None                        # worst relative error (None: did not get that far)
    measurements: list = field(default_factory=list)  # (what, relative error, tolerance)
    message: str = ""                                 # why it failed (exception, mismatch, cheat)
    hint: str = ""

    def report(self, details=False, hints=True) -> str:
        """One line per exercise; every comparison listed when it failed (or with ``details``)."""
        verdict = "PASS" if self.passed else "FAIL"
        err = "" if self.error is None else f"  worst relative error {self.error:.1e}"
        lines = [f"[{verdict}] {self.name:<24}{err}  ({len(self.measurements)} comparisons)"]
        for what, e, tol in self.measurements if (details or not self.passed) else ():
            flag = "ok " if e < tol else "BAD"
            lines.append(f"       {flag} {what:<62} {e:.1e}  (tolerance {tol:.0e})")
        if self.message:
            lines.append(f"       {self.message}")
        if hints and not self.passed and self.hint:
            lines.append(f"       hint: {self.hint}")
        return "\n".join(lines)

    @property
    def reason(self) -> str:
        """A short reason for a failure: the message, else the first comparison over tolerance."""
        if self.passed:
            return ""
        if self.message:
            return self.message
        bad = [w for w, e, tol in self.measurements if not e < tol]
        return f"wrong answer: {bad[0]}" if bad else "no comparison made"

    def __str__(self):
        return self.report()

    def __repr__(self):
        return f"CheckResult({self.name!r}, {'PASS' if self.passed else 'FAIL'})"


@dataclass
class Report:
    """All checks of one implementation."""

    results: list

    @property
    def score(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def all_passed(self) -> bool:
        return self.score == self.total

    def __repr__(self):
        return f"Report(score {self.score}/{self.total})"


@dataclass
class Case:
    """One test: ``inputs`` for the student's functions, ``expected`` outputs from the references.

    ``expected`` maps an output name to its reference array; a name starting
    with ``after:`` is an argument that must come back unchanged.
    ``compare`` (optional) replaces the element-wise comparison.
    """

    label: str
    inputs: dict
    expected: dict
    compare: object = None


def describe_exception(e: BaseException) -> str:
    """A student's exception as one line: what, message, and the line it came from."""
    if isinstance(e, NotImplementedError):
        return f"not implemented yet ({e})" if str(e) else "not implemented yet"
    if isinstance(e, Mismatch):
        return f"wrong answer: {e}"
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r}); remove it, a function must return its result"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (line {tb[-1].lineno} in {tb[-1].name})" if tb else ""
    return f"raised {type(e).__name__}: {e}{where}"


def as_array(value, what) -> np.ndarray:
    """A student's output as a float64 array, or Mismatch naming what it was."""
    try:
        a = np.asarray(value, dtype=F64)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} is not a numeric array (got {type(value).__name__})") from None
    return a


class _Functions(dict):
    def __missing__(self, name):
        raise Mismatch(f"no function named {name!r} found: define {name}(...) with this exact name")


class Exercise:
    """One exercise: the functions written, points, hint, cases, and how to run them.

    ``functions`` are the student's functions it calls, ``written`` those the
    exercise is about (the others, forward passes, only give the cache of the
    OWN_CACHE attempt). ``attempts`` maps an attempt's name to
    ``run(fns, inputs) -> {name: array}`` (fns: the student's functions by
    name). An exercise passes when one attempt passes every case.
    """

    def __init__(self, name, functions, points, hint, attempts, public, hidden, written=None):
        self.name, self.functions, self.points = name, tuple(functions), points
        self.written = tuple(written or functions)
        self.hint, self.attempts = hint, attempts
        self.public_cases, self.hidden_cases = public, hidden

    def functions_of(self, impl) -> dict:
        """The student's functions by name, from a module, an object or a dict (notebook globals()).

        A missing one raises :class:`Mismatch` when an attempt asks for it.
        """
        fns = _Functions()
        for name in self.functions:
            fn = impl.get(name) if isinstance(impl, dict) else getattr(impl, name, None)
            if callable(fn):
                fns[name] = fn
        return fns

    def run(self, impl, cases) -> dict:
        """Run the student's code on every case, every attempt; never raises for the student's code.

        Returns {attempt: [outputs of case 0, ...]} where an outputs dict may
        hold ``"!error"`` (the exception, described). An attempt stops at its
        first exception.
        """
        runs = {}
        fns = self.functions_of(impl)
        for attempt, run in self.attempts.items():
            outs = []
            for case in cases:
                try:
                    got = run(fns, copy.deepcopy(case.inputs))
                    outs.append({k: as_array(v, k) for k, v in got.items()})
                except KeyboardInterrupt:
                    raise
                except BaseException as e:       # SystemExit too: a student's sys.exit() is a failure
                    outs.append({"!error": describe_exception(e)})
                    break
            runs[attempt] = outs
        return runs

    def verdict(self, cases, runs) -> CheckResult:
        """Compare the outputs of each attempt with the references; the best attempt counts."""
        results = [self._verdict_of(attempt, cases, outs) for attempt, outs in runs.items()]
        if not results:
            return CheckResult(self.name, False, message="no result came back", hint=self.hint)
        best = next((r for r in results if r.passed), None)
        if best is None:   # the attempt that got furthest: most comparisons within tolerance
            best = max(results, key=lambda r: (sum(e < t for _, e, t in r.measurements), -len(r.measurements)))
        best.hint = self.hint(best) if callable(self.hint) else self.hint
        return best

    def _verdict_of(self, attempt, cases, outs) -> CheckResult:
        rows, message = [], ""
        tag = f" [{attempt}]" if len(self.attempts) > 1 else ""
        for case, got in zip(cases, outs):
            if "!error" in got:
                message = str(got["!error"])
                break
            try:
                if case.compare is not None:
                    rows.extend(case.compare(case, got))
                else:
                    rows.extend(_compare(case, got))
            except Mismatch as e:
                message = f"wrong answer: {e}"
                break
        if not message and len(outs) < len(cases):
            message = "did not finish every case"
        bad = [w for w, e, tol in rows if not e < tol]
        if not message and bad and tag:
            message = f"wrong answer: {bad[0]}"
        if message and tag and not message.startswith("not implemented"):
            message += f" (with {attempt})"
        errors = [e for _, e, _ in rows]
        passed = not message and bool(rows) and all(e < tol for _, e, tol in rows)
        return CheckResult(self.name, passed, max(errors) if errors else None, rows, message)

    def check(self, impl, verbose=True, hints=True) -> CheckResult:
        """Run and judge the public cases in this process (the notebook's check cells)."""
        cases = self.public_cases()
        with reference_scope(self, impl):
            runs = self.run(impl, cases)
        result = self.verdict(cases, runs)
        if verbose:
            print(result.report(hints=hints))
        return result


def _compare(case, got):
    rows = []
    for key, expected in case.expected.items():
        if key not in got:
            raise Mismatch(f"{case.label}: no {key} came back")
        value = got[key]
        if key.startswith("after:"):
            if value.shape != np.shape(expected) or not np.array_equal(value, expected):
                raise Mismatch(f"{case.label}: the function modified its argument {key[6:]}; compute new arrays instead")
            continue
        what = f"{key} {case.label}"
        if value.shape != np.shape(expected):
            raise Mismatch(f"{what}: shape {value.shape}, expected {np.shape(expected)}")
        if not np.all(np.isfinite(value)):
            raise Mismatch(f"{what}: contains NaN or inf")
        rows.append((what, rel_error(value, expected), TOL))
    return rows


class reference_scope:
    """While an exercise runs, the earlier exercises it builds on are the references.

    An LRN exercise gets the reference ``window_sum``, the residual block the
    reference ``conv_forward`` and ``conv_backward`` (in the handout's
    layout), so a bug in those costs their own points only. The student's
    globals are restored afterwards.
    """

    def __init__(self, exercise, impl):
        self.exercise, self.impl, self.saved = exercise, impl, []

    def __enter__(self):
        given = _GIVEN.get(self.exercise.name, {})
        for name in self.exercise.functions:
            fn = self.impl.get(name) if isinstance(self.impl, dict) else getattr(self.impl, name, None)
            g = getattr(fn, "__globals__", None)
            for helper, reference in given.items():
                if isinstance(g, dict) and helper in g and g[helper] is not reference:
                    self.saved.append((g, helper, g[helper]))
                    g[helper] = reference
        return self

    def __exit__(self, *exc):
        for g, helper, value in reversed(self.saved):
            g[helper] = value
        return False



# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------
def reference_conv(W, b, stride, padding, groups=1):
    """tinyalex's Conv2D (reference path, float64) with the given weights."""
    F, Cg, kh, kw = W.shape
    conv = L.Conv2D(Cg * groups, F, (kh, kw), stride=stride, padding=padding, groups=groups, dtype=F64)
    conv.impl = "reference"
    conv.params["W"][...] = W
    conv.params["b"][...] = b
    return conv


def reference_lrn(size, alpha, beta, k):
    lrn = L.LRN(size=size, alpha=alpha, beta=beta, k=k, convention="paper", dtype=F64)
    lrn.impl = "reference"
    return lrn


def reference_pool(k, s):
    pool = L.MaxPool2D(k, s, dtype=F64)
    pool.impl = "reference"
    return pool


def reference_conv_forward(x, W, b, stride=1, padding=0, groups=1):
    """Conv2D's forward in the handout's layout: (out, (x.shape, cols, W, stride, padding, groups))."""
    ref = reference_conv(W, b, stride, padding, groups)
    out = ref.forward(x)
    return out, (x.shape, ref.cols, W, stride, padding, groups)


def reference_conv_backward(dout, cache):
    """Conv2D's backward from the handout's cache: (dx, dW, db)."""
    x_shape, cols, W, stride, padding, groups = cache
    ref = reference_conv(W, np.zeros(W.shape[0]), stride, padding, groups)
    ref.x_shape, ref.cols, ref.out_shape = x_shape, cols, dout.shape
    return ref.backward(dout), ref.grads["W"], ref.grads["b"]


def reference_sgd(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
    """The paper's rule (section 5), written out: v <- mu v - wd lr w - lr dw; w <- w + v."""
    v = momentum * v - weight_decay * lr * w - lr * dw
    return w + v, v


# ---------------------------------------------------------------------------
# 1-2. convolution
# ---------------------------------------------------------------------------
def _conv_case(x, W, b, stride, padding, groups, label, backward_rng=None):
    ref = reference_conv(W, b, stride, padding, groups)
    out = ref.forward(x)
    inputs = dict(x=x, W=W, b=b, stride=stride, padding=padding, groups=groups)
    kh, kw = W.shape[2:]
    tag = f"{label}: x {x.shape}, W {W.shape}, stride {stride}, pad {padding}" + (f", groups {groups}" if groups > 1 else "")
    if backward_rng is None:
        return Case(tag, inputs, {"out": out})
    dout = backward_rng.standard_normal(out.shape)
    dx = ref.backward(dout)
    cols = L.im2col(x, (kh, kw), (stride, stride), (padding, padding), groups)
    inputs.update(dout=dout, cache=(x.shape, cols, W, stride, padding, groups))
    return Case(tag, inputs, {"dx": dx, "dW": ref.grads["W"], "db": ref.grads["b"]})


CONV_CASES = [  # (N, C, H, W, F, kh, kw, stride, padding, groups)
    (2, 3, 7, 7, 4, 3, 3, 1, 0, 1),
    (2, 3, 8, 7, 4, 3, 3, 2, 1, 1),
    (1, 2, 9, 9, 3, 5, 5, 2, 2, 1),
    (2, 4, 6, 5, 4, 3, 2, 1, 1, 2),     # non-square kernel, two groups (the paper's towers)
]


def _conv_random(rng, N, C, H, W_, F, kh, kw, s, p, g, label, backward):
    x = rng.standard_normal((N, C, H, W_))
    W, b = rng.standard_normal((F, C // g, kh, kw)), rng.standard_normal(F)
    return _conv_case(x, W, b, s, p, g, label, rng if backward else None)


def _conv_public(backward):
    def cases():
        rng = np.random.default_rng(2 if backward else 1)
        out = []
        if not backward:
            x = np.arange(16, dtype=F64).reshape(1, 1, 4, 4)
            out.append(Case("known answer: 2x2 box filter on a 4x4 ramp, bias 1",
                            dict(x=x, W=np.ones((1, 1, 2, 2)), b=np.array([1.0]), stride=1, padding=0, groups=1),
                            {"out": np.array([[11, 15, 19], [27, 31, 35], [43, 47, 51]], dtype=F64).reshape(1, 1, 3, 3)}))
        for c in CONV_CASES:
            out.append(_conv_random(rng, *c, "vs Conv2D", backward))
        return out
    return cases


def _conv_hidden(backward):
    def cases(rng):
        out = []
        for _ in range(4):
            g = int(rng.integers(1, 3))
            C, F = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 4))
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            s, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
            H, W_ = max(kh, int(rng.integers(3, 10))), max(kw, int(rng.integers(3, 10)))
            out.append(_conv_random(rng, int(rng.integers(1, 4)), C, H, W_, F, kh, kw, s, p, g,
                                    "hidden case vs Conv2D", backward))
        return out
    return cases


def _conv_args(i):
    extra = {"groups": i["groups"]} if i["groups"] != 1 else {}
    return (i["x"], i["W"], i["b"], i["stride"], i["padding"]), extra


def _run_conv_forward(fns, i):
    args, extra = _conv_args(i)
    out, _cache = fns["conv_forward"](*args, **extra)
    return {"out": out}


def _run_conv_backward_handout(fns, i):
    dout = i["dout"]
    dx, dW, db = fns["conv_backward"](dout, i["cache"])
    return {"dx": dx, "dW": dW, "db": db, "after:dout": dout}


def _run_conv_backward_own(fns, i):
    args, extra = _conv_args(i)
    _out, cache = fns["conv_forward"](*args, **extra)
    dout = i["dout"]
    dx, dW, db = fns["conv_backward"](dout, cache)
    return {"dx": dx, "dW": dW, "db": db, "after:dout": dout}


def _wrong_outputs(result):
    """The names of the outputs (dx, dW, ...) with a comparison over tolerance."""
    return {w.split(" ")[0] for w, e, tol in result.measurements if not e < tol}


def _conv_backward_hint(result):
    bad = _wrong_outputs(result)
    if bad == {"dx"}:
        return ("dW and db are right, dx is not: dcols is the transpose of the weight matrix times dout_mat, "
                "with W used exactly as in the forward pass (not flipped), group by group; then col2im with the "
                "forward's kernel size, stride, padding and groups.")
    if "dW" in bad:
        return ("dW pairs dout_mat with the columns of the forward pass, group by group; check the order of the "
                "axes when you lay dout out as a matrix and when you reshape back to W's shape.")
    if bad == {"db"}:
        return "db sums dout over every axis except the filter axis."
    return ("lay dout out like the forward product (filters first, then batch and positions); each gradient is "
            "one matrix product per group with a matrix the forward pass kept.")


# ---------------------------------------------------------------------------
# 3-5. local response normalization
# ---------------------------------------------------------------------------
def _window_public():
    ones = np.ones((1, 6, 1, 1))
    cases = [Case("known answer: size 5 over 6 channels of ones = 3 4 5 5 4 3", dict(a=ones, size=5),
                  {"out": np.array([3, 4, 5, 5, 4, 3], dtype=F64).reshape(1, 6, 1, 1)})]
    rng = np.random.default_rng(3)
    for C, size in [(7, 5), (7, 3), (6, 4), (5, 1), (3, 5)]:
        a = rng.standard_normal((2, C, 3, 2))
        cases.append(Case(f"vs window_sum, {C} channels, size {size}", dict(a=a, size=size),
                          {"out": reference_window_sum(a, size)}))
    return cases


def _window_hidden(rng):
    cases = []
    for _ in range(3):
        C, size = int(rng.integers(1, 9)), int(rng.integers(1, 8))
        a = rng.standard_normal((int(rng.integers(1, 3)), C, int(rng.integers(1, 4)), int(rng.integers(1, 4))))
        cases.append(Case(f"hidden case: {C} channels, size {size}", dict(a=a, size=size),
                          {"out": reference_window_sum(a, size)}))
    return cases


def _lrn_case(x, size, alpha, beta, k, label, backward_rng=None):
    ref = reference_lrn(size, alpha, beta, k)
    out = ref.forward(x)
    inputs = dict(x=x, size=size, alpha=alpha, beta=beta, k=k)
    tag = f"{label}: LRN(size={size}, alpha={alpha:.3g}, beta={beta:.3g}, k={k:.3g}), x {x.shape}"
    if backward_rng is None:
        return Case(tag, inputs, {"out": out})
    dout = backward_rng.standard_normal(x.shape)
    dx = ref.backward(dout)
    inputs.update(dout=dout, cache=(x, ref.s, out, size, alpha, beta))
    return Case(tag, inputs, {"dx": dx})


def _lrn_public(backward):
    def cases():
        out = []
        if not backward:
            out.append(Case("known answer: one channel of 1, alpha 0.5: (2 + 0.5)^-0.75",
                            dict(x=np.ones((1, 1, 1, 1)), size=5, alpha=0.5, beta=0.75, k=2.0),
                            {"out": np.full((1, 1, 1, 1), 2.5 ** -0.75)}))
        rng = np.random.default_rng(5 if backward else 4)
        params = [(5, 0.5, 0.75, 2.0), (3, 0.3, 0.5, 1.0)] + ([] if backward else [(5, 1e-4, 0.75, 2.0)])
        for size, alpha, beta, k in params:   # a large alpha: the cross-channel terms count
            out.append(_lrn_case(rng.standard_normal((2, 7, 3, 2)), size, alpha, beta, k, "vs LRN",
                                 rng if backward else None))
        return out
    return cases


def _lrn_hidden(backward):
    def cases(rng):
        out = []
        for _ in range(3):
            size = int(rng.choice([1, 3, 5, 7]))       # odd: the handout's backward shortcut holds
            x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(2, 10)), 2, 3))
            out.append(_lrn_case(x, size, float(rng.uniform(0.1, 1.0)), float(rng.uniform(0.5, 1.0)),
                                 float(rng.uniform(1.0, 3.0)), "hidden case vs LRN", rng if backward else None))
        return out
    return cases


def _run_window_sum(fns, i):
    a = i["a"]
    return {"out": fns["window_sum"](a, i["size"]), "after:a": a}


def _run_lrn_forward(fns, i):
    out, _cache = fns["lrn_forward"](i["x"], i["size"], i["alpha"], i["beta"], i["k"])
    return {"out": out}


def _run_lrn_backward_handout(fns, i):
    return {"dx": fns["lrn_backward"](i["dout"], i["cache"])}


def _run_lrn_backward_own(fns, i):
    _out, cache = fns["lrn_forward"](i["x"], i["size"], i["alpha"], i["beta"], i["k"])
    return {"dx": fns["lrn_backward"](i["dout"], cache)}


# ---------------------------------------------------------------------------
# 6. max pooling
# ---------------------------------------------------------------------------
def _pool_case(x, k, s, label, rng):
    ref = reference_pool(k, s)
    out = ref.forward(x)
    dout = np.ones(out.shape) if rng is None else rng.standard_normal(out.shape)
    dx = ref.backward(dout)
    cache = (x.shape, ref.argmax, k, s)         # the layout the handout's maxpool_forward returns
    return Case(f"{label}: {k}/{s} pool, x {x.shape}", dict(x=x, k=k, s=s, dout=dout, cache=cache), {"dx": dx})


def _pool_public():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    cases = [_pool_case(x, 3, 2, "known answer: the centre maximum wins all 4 overlapping windows", None)]
    cases.append(_pool_case(np.zeros((1, 1, 5, 5)), 3, 2,
                            "ties: on a flat plateau each window sends its gradient to ONE input (the first)", None))
    rng = np.random.default_rng(6)
    for k, s in [(3, 2), (2, 2)]:
        cases.append(_pool_case(rng.standard_normal((2, 3, 9, 7)), k, s, "vs MaxPool2D", rng))
    return cases


def _pool_hidden(rng):
    cases = []
    for tie in (False, True, True):
        k = int(rng.integers(2, 4))
        s = int(rng.integers(1, k + 1))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(k, 10)), int(rng.integers(k, 10)))
        x = rng.integers(0, 3, shape).astype(F64) if tie else rng.standard_normal(shape)
        cases.append(_pool_case(x, k, s, "hidden case with ties vs MaxPool2D" if tie else "hidden case vs MaxPool2D", rng))
    return cases


def _run_pool_handout(fns, i):
    return {"dx": fns["maxpool_backward"](i["dout"], i["cache"])}


def _run_pool_own(fns, i):
    _out, cache = fns["maxpool_forward"](i["x"], i["k"], i["s"])
    return {"dx": fns["maxpool_backward"](i["dout"], cache)}


# ---------------------------------------------------------------------------
# 7. dropout
# ---------------------------------------------------------------------------
def _dropout_case(x, dout, p, mode, training, mask, label):
    ref = L.Dropout(p, mode=mode, dtype=F64)
    ref.set_mask(mask)
    ref.train(training)
    out = ref.forward(x)
    what = f"{label}: {mode}, {'training' if training else 'evaluation'}, p={p:.3g}"
    return Case(what, dict(x=x, dout=dout, p=p, mode=mode, training=training, mask=mask if training else None),
                {"out": out, "dx": ref.backward(dout)})


def _keep_rate(case, got):
    out, p = got["out"], case.inputs["p"]
    if out.shape != case.inputs["x"].shape:
        raise Mismatch(f"{case.label}: out has shape {out.shape}, expected {case.inputs['x'].shape}")
    kept = float(np.mean(out != 0))
    if abs(kept - (1 - p)) > 0.02:
        raise Mismatch(f"with p={p:.3g} a random mask should keep about {1 - p:.0%} of units; yours kept {kept:.1%}")
    scale = out[out != 0]
    return [(f"{case.label}: kept units are scaled to 1/(1-p)", rel_error(scale, np.full(scale.shape, 1 / (1 - p))), TOL)]


def _dropout_public():
    rng = np.random.default_rng(7)
    x, dout = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    mask = rng.random((4, 6)) >= 0.5
    cases = [_dropout_case(x, dout, 0.5, mode, training, mask, "vs Dropout")
             for mode in ("inverted", "paper") for training in (True, False)]
    cases.append(Case("random mask, p=0.3", dict(x=np.ones((200, 100)), dout=np.ones((200, 100)), p=0.3,
                                                  mode="inverted", training=True, mask=None, seed=8),
                      {}, compare=_keep_rate))
    return cases


def _dropout_hidden(rng):
    cases = []
    for mode in ("inverted", "paper"):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 8)))
        p = float(rng.uniform(0.1, 0.8))
        cases.append(_dropout_case(rng.standard_normal(shape), rng.standard_normal(shape), p, mode, True,
                                   rng.random(shape) >= p, "hidden case vs Dropout"))
    return cases


def _run_dropout(fns, i):
    rng = np.random.default_rng(i["seed"]) if "seed" in i else None
    out, cache = fns["dropout_forward"](i["x"], i["p"], i["mode"], i["training"], i["mask"], rng)
    return {"out": out, "dx": fns["dropout_backward"](i["dout"], cache)}


# ---------------------------------------------------------------------------
# 8. softmax cross-entropy
# ---------------------------------------------------------------------------
def _sce_case(logits, labels, label):
    ref = L.SoftmaxCrossEntropy(F64)
    loss = float(ref.forward(logits, labels))
    return Case(f"{label}: logits {logits.shape}", dict(logits=logits, labels=labels),
                {"loss": np.array(loss), "dlogits": ref.backward(), "after:logits": logits.copy()})


def _sce_public():
    labels = np.array([0, 3, 9, 3])
    cases = [_sce_case(np.zeros((4, 10)), labels, "known answer: zero logits give loss log(10)"),
             _sce_case(np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]]), np.array([0, 0]),
                       "huge logits (+-1000) stay finite")]
    rng = np.random.default_rng(9)
    cases.append(_sce_case(rng.standard_normal((4, 10)) * 3, labels, "vs SoftmaxCrossEntropy"))
    return cases


def _sce_hidden(rng):
    cases = []
    for scale in (1.0, 50.0, 2000.0):
        N, K = int(rng.integers(1, 7)), int(rng.integers(2, 12))
        cases.append(_sce_case(rng.standard_normal((N, K)) * scale, rng.integers(0, K, N),
                               f"hidden case, logits of scale {scale:g}"))
    return cases


def _run_sce(fns, i):
    logits = i["logits"]
    loss, d = fns["softmax_cross_entropy"](logits, i["labels"])
    return {"loss": np.array(float(loss)), "dlogits": d, "after:logits": logits}


# ---------------------------------------------------------------------------
# 9. SGD with momentum and weight decay
# ---------------------------------------------------------------------------
def _sgd_case(w, dws, v, lrs, momentum, wd, label, against_optimizer=False):
    if against_optimizer:       # tinyalex.train.SGD, learning rate changed between steps
        opt = SGD([("w", w.copy())], lr=lrs[0], momentum=momentum, weight_decay=wd)
        for lr, dw in zip(lrs, dws):
            opt.lr = lr
            opt.step({"w": dw})
        rw = dict(opt.named_parameters())["w"]
        rv = None
    else:
        rw, rv = w, v
        for lr, dw in zip(lrs, dws):
            rw, rv = reference_sgd(rw, dw, rv, lr, momentum, wd)
    expected = {"w": rw} if rv is None else {"w": rw, "v": rv}
    expected.update({"after:w0": w, "after:v0": v, "after:dw0": dws[0]})
    return Case(f"{label}: {len(lrs)} steps", dict(w=w, dws=dws, v=v, lrs=lrs, momentum=momentum, wd=wd), expected)


def _sgd_public():
    cases = [_sgd_case(np.array([1.0]), [np.array([0.5])], np.array([0.1]), [0.1], 0.9, 5e-4,
                       "known answer: v = 0.09 - 0.00005 - 0.05 = 0.03995, w = 1.03995")]
    rng = np.random.default_rng(10)
    w = rng.standard_normal((3, 4))
    cases.append(_sgd_case(w, [rng.standard_normal(w.shape) for _ in range(3)], np.zeros_like(w), [0.01] * 3,
                           0.9, 5e-4, "vs the paper's rule"))
    w = rng.standard_normal((2, 3))
    cases.append(_sgd_case(w, [rng.standard_normal(w.shape) for _ in range(4)], np.zeros_like(w),
                           [0.1, 0.1, 0.01, 0.01], 0.9, 5e-4, "vs tinyalex.train.SGD, lr 0.1 then 0.01",
                           against_optimizer=True))
    return cases


def _sgd_hidden(rng):
    w = rng.standard_normal((int(rng.integers(1, 5)), int(rng.integers(1, 5))))
    n = int(rng.integers(2, 5))
    return [_sgd_case(w, [rng.standard_normal(w.shape) for _ in range(n)], rng.standard_normal(w.shape) * 0.1,
                      [float(rng.uniform(1e-3, 0.1)) for _ in range(n)], float(rng.uniform(0.5, 0.99)),
                      float(rng.uniform(0, 1e-2)), "hidden case vs the paper's rule")]


def _run_sgd(fns, i):
    w, v = i["w"], i["v"]
    w0, v0, dw0 = w, v, i["dws"][0]
    for lr, dw in zip(i["lrs"], i["dws"]):
        w, v = fns["sgd_momentum_update"](w, dw, v, lr, i["momentum"], i["wd"])
    return {"w": w, "v": v, "after:w0": w0, "after:v0": v0, "after:dw0": dw0}


# ---------------------------------------------------------------------------
# 10. batch normalization (after AlexNet)
# ---------------------------------------------------------------------------
def _bn_case(x, gamma, beta, label, rng):
    ref = L.BatchNorm2d(x.shape[1], eps=1e-5, dtype=F64)
    ref.params["gamma"][...], ref.params["beta"][...] = gamma, beta
    out = ref.forward(x)                                   # training mode: the batch's statistics
    dout = rng.standard_normal(out.shape)
    dx = ref.backward(dout)
    cache = (ref.xhat, gamma, ref.inv_std.reshape(1, -1, 1, 1))   # the layout the handout's forward returns
    return Case(f"{label}: x {x.shape}", dict(x=x, gamma=gamma, beta=beta, dout=dout, cache=cache),
                {"out": out, "dx": dx, "dgamma": ref.grads["gamma"], "dbeta": ref.grads["beta"]})


def _bn_public():
    rng = np.random.default_rng(11)
    C = 3
    cases = [_bn_case(rng.standard_normal((4, C, 3, 3)), np.ones(C), np.zeros(C), "gamma 1, beta 0 vs BatchNorm2d",
                      rng)]
    cases.append(_bn_case(rng.standard_normal((2, C, 4, 5)) * 5 + 3, rng.standard_normal(C), rng.standard_normal(C),
                          "shifted, scaled input, random gamma and beta vs BatchNorm2d", rng))
    return cases


def _bn_hidden(rng):
    cases = []
    for _ in range(3):
        N, C = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        H, W_ = int(rng.integers(2, 6)), int(rng.integers(1, 6))
        x = rng.standard_normal((N, C, H, W_)) * float(rng.uniform(0.1, 10)) + float(rng.uniform(-5, 5))
        cases.append(_bn_case(x, rng.standard_normal(C), rng.standard_normal(C), "hidden case vs BatchNorm2d", rng))
    return cases


def _run_bn_handout(fns, i):
    out, _cache = fns["batchnorm_forward"](i["x"], i["gamma"], i["beta"])
    dout = i["dout"]
    dx, dgamma, dbeta = fns["batchnorm_backward"](dout, i["cache"])
    return {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta, "after:dout": dout}


def _run_bn_own(fns, i):
    out, cache = fns["batchnorm_forward"](i["x"], i["gamma"], i["beta"])
    dout = i["dout"]
    dx, dgamma, dbeta = fns["batchnorm_backward"](dout, cache)
    return {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta, "after:dout": dout}


def _bn_hint(result):
    bad = _wrong_outputs(result)
    if bad == {"dx"}:
        return ("dgamma and dbeta are right, dx is not: the batch mean and variance are functions of every x of "
                "the channel, so dx has more than the direct term; differentiate through both statistics "
                "(docs/successors.md derives it) and check that dx sums to zero over each channel.")
    if "out" in bad:
        return ("normalize each channel with the mean and the (biased, divide by m) variance over the batch and "
                "both spatial axes, eps inside the square root; then scale by gamma and shift by beta per channel.")
    return ("dgamma pairs dout with the normalized input, dbeta is dout alone, each summed over every axis but "
            "the channel axis.")


# ---------------------------------------------------------------------------
# 11. the residual block (after AlexNet)
# ---------------------------------------------------------------------------
def _residual_case(x, W1, b1, W2, b2, label, rng):
    conv1, conv2 = reference_conv(W1, b1, 1, 1), reference_conv(W2, b2, 1, 1)
    block = L.Residual(L.Sequential(("conv1", conv1), ("relu1", L.ReLU(F64)), ("conv2", conv2)),
                       relu=L.ReLU(F64), dtype=F64)
    out = block.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = block.backward(dout)
    return Case(f"{label}: x {x.shape}", dict(x=x, W1=W1, b1=b1, W2=W2, b2=b2, dout=dout),
                {"out": out, "dx": dx, "dW1": conv1.grads["W"], "db1": conv1.grads["b"],
                 "dW2": conv2.grads["W"], "db2": conv2.grads["b"]})


def _residual_random(rng, N, C, H, W_, label):
    return _residual_case(rng.standard_normal((N, C, H, W_)), rng.standard_normal((C, C, 3, 3)) * 0.5,
                          rng.standard_normal(C) * 0.1, rng.standard_normal((C, C, 3, 3)) * 0.5,
                          rng.standard_normal(C) * 0.1, label, rng)


def _residual_public():
    rng = np.random.default_rng(12)
    return [_residual_random(rng, 2, 3, 5, 5, "vs tinyalex's Residual block"),
            _residual_random(rng, 1, 2, 4, 6, "vs tinyalex's Residual block")]


def _residual_hidden(rng):
    return [_residual_random(rng, int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(3, 7)),
                             int(rng.integers(3, 7)), "hidden case vs Residual") for _ in range(3)]


def _run_residual(fns, i):
    out, cache = fns["residual_forward"](i["x"], i["W1"], i["b1"], i["W2"], i["b2"])
    dout = i["dout"]
    dx, dW1, db1, dW2, db2 = fns["residual_backward"](dout, cache)
    return {"out": out, "dx": dx, "dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "after:dout": dout}


def _residual_hint(result):
    bad = _wrong_outputs(result)
    if bad == {"dx"}:
        return ("the weight gradients are right, dx is not: x reaches the sum F(x) + x along two paths, the body "
                "and the shortcut; the gradient of x is the sum of what comes back along each.")
    return ("go backwards in the forward's order reversed: the final ReLU's mask first, then the body's layers "
            "(conv2, the inner ReLU, conv1), keeping what each forward step needs in the cache.")


# What an exercise gets in place of the student's own earlier functions while it runs (reference_scope).
_GIVEN = {"lrn_forward": {"window_sum": reference_window_sum}, "lrn_backward": {"window_sum": reference_window_sum},
          "residual_backward": {"conv_forward": reference_conv_forward, "conv_backward": reference_conv_backward}}


# ---------------------------------------------------------------------------
# the exercises, in handout order
# ---------------------------------------------------------------------------
def _both(handout, own):
    return {HANDOUT_CACHE: handout, OWN_CACHE: own}


EXERCISES = {e.name: e for e in [
    Exercise("conv_forward", ["conv_forward"], 2,
             "the whole convolution is one matrix product per group between the reshaped weights and the "
             "columns im2col lays out; mind which axis comes first when you reshape the product back to "
             "(N, F, Ho, Wo), and where the bias is broadcast.",
             {"": _run_conv_forward}, _conv_public(False), _conv_hidden(False)),
    Exercise("conv_backward", ["conv_forward", "conv_backward"], 3, _conv_backward_hint,
             _both(_run_conv_backward_handout, _run_conv_backward_own), _conv_public(True), _conv_hidden(True),
             written=["conv_backward"]),
    Exercise("window_sum", ["window_sum"], 1,
             "each offset d of the window adds a shifted slice of channels; work out, for an offset, which "
             "channels have a neighbour at that offset, and test with sizes larger than C and even sizes.",
             {"": _run_window_sum}, _window_public, _window_hidden),
    Exercise("lrn_forward", ["lrn_forward"], 1,
             "re-read section 3.3: which constant multiplies the sum of squares, and is it divided by the window "
             "size in the paper?",
             {"": _run_lrn_forward}, _lrn_public(False), _lrn_hidden(False)),
    Exercise("lrn_backward", ["lrn_forward", "lrn_backward"], 2,
             "every input appears in its own output and in its neighbours' denominators: the gradient has a direct "
             "term and a cross-channel term, and the second one only shows with a large alpha. Derive both "
             "(docs/math.md) and compare with your code term by term.",
             _both(_run_lrn_backward_handout, _run_lrn_backward_own), _lrn_public(True), _lrn_hidden(True),
             written=["lrn_backward"]),
    Exercise("maxpool_backward", ["maxpool_forward", "maxpool_backward"], 2,
             "each window sends its gradient to exactly ONE input, the winner recorded by the forward pass (the "
             "first maximum on ties); where windows overlap an input collects from every window it won, so "
             "accumulate instead of overwriting.",
             _both(_run_pool_handout, _run_pool_own), _pool_public, _pool_hidden, written=["maxpool_backward"]),
    Exercise("dropout", ["dropout_forward", "dropout_backward"], 1,
             "write down the factor each unit is multiplied by in each of the four cases (two modes, training or "
             "not) so that the expected output is the same in training and evaluation; backward uses the same "
             "factor.",
             {"": _run_dropout}, _dropout_public, _dropout_hidden),
    Exercise("softmax_cross_entropy", ["softmax_cross_entropy"], 2,
             "the loss is a mean over the batch, and so is its gradient; exp overflows for large logits unless you "
             "first shift each row by a constant that does not change the softmax.",
             {"": _run_sce}, _sce_public, _sce_hidden),
    Exercise("sgd_momentum_update", ["sgd_momentum_update"], 1,
             "re-read the update rule of section 5: which quantities are multiplied by the learning rate, and which "
             "v is added to w? Return new arrays, do not write into the arguments.",
             {"": _run_sgd}, _sgd_public, _sgd_hidden),
    Exercise("batchnorm_backward", ["batchnorm_forward", "batchnorm_backward"], 3, _bn_hint,
             _both(_run_bn_handout, _run_bn_own), _bn_public, _bn_hidden),
    Exercise("residual_backward", ["residual_forward", "residual_backward"], 2, _residual_hint,
             {"": _run_residual}, _residual_public, _residual_hidden),
]}

CHECKS = EXERCISES           # the exercise names in handout order


def hidden_cases(seed) -> dict:
    """{exercise: [hidden cases]} drawn from ``seed`` (the grader's --seed)."""
    rng = np.random.default_rng(seed)
    return {name: ex.hidden_cases(np.random.default_rng(rng.integers(2 ** 63))) for name, ex in EXERCISES.items()}


def grading_cases(seed) -> dict:
    """{exercise: public cases + hidden cases from ``seed``}."""
    hidden = hidden_cases(seed)
    return {name: ex.public_cases() + hidden[name] for name, ex in EXERCISES.items()}


# ---------------------------------------------------------------------------
# public check functions (the notebook's check cells) and the runner
# ---------------------------------------------------------------------------
def _make(name):
    ex = EXERCISES[name]

    def check(impl, verbose=True, hints=True) -> CheckResult:
        return ex.check(impl, verbose, hints)

    check.__name__ = f"check_{name}"
    check.__doc__ = (f"Check exercise {name!r} of impl (a module, object or globals() dict) on the public cases; "
                     "print PASS or FAIL, the worst relative error and, on failure, a hint.")
    return check


check_conv_forward = _make("conv_forward")
check_conv_backward = _make("conv_backward")
check_window_sum = _make("window_sum")
check_lrn_forward = _make("lrn_forward")
check_lrn_backward = _make("lrn_backward")
check_maxpool_backward = _make("maxpool_backward")
check_dropout = _make("dropout")
check_softmax_cross_entropy = _make("softmax_cross_entropy")
check_sgd_momentum_update = _make("sgd_momentum_update")
check_batchnorm_backward = _make("batchnorm_backward")
check_residual_backward = _make("residual_backward")


def run_all(impl, verbose=True, hints=True) -> Report:
    """Run every check on ``impl`` (public cases); print each verdict and the score."""
    report = Report([ex.check(impl, verbose, hints) for ex in EXERCISES.values()])
    if verbose:
        print(f"\nscore: {report.score}/{report.total} checks passed")
    return report


def check_all(impl, verbose=True, hints=True) -> Report:
    """Alias of :func:`run_all` (the last cell of the student notebook)."""
    return run_all(impl, verbose, hints)
