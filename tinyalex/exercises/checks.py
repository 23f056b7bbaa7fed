"""Automatic checks for the classroom exercises.

Every check takes the student's implementation ``impl`` -- a module, an
object with the functions as attributes, or a dict such as a notebook's
``globals()`` -- runs known-answer tests and gradient checks against
tinyalex's own layers, prints a verdict and returns a :class:`CheckResult`::

    [PASS] conv_backward  worst relative error 3.1e-16 (tolerance 1e-07)
    [FAIL] lrn_backward   worst relative error 9.7e-01 (tolerance 1e-07)
           hint: ...

A check never raises because of the student's code: an exception (a stub's
``NotImplementedError`` included) is reported as FAIL with its message.
Everything runs in float64 on NumPy with small shapes (well under a second).
"""
from __future__ import annotations

import traceback
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .. import layers as L
from ..gradcheck import numerical_gradient, rel_error
from ..layers.lrn import window_sum as reference_window_sum

__all__ = ["CheckResult", "Report", "CHECKS", "run_all", "run_check"] + [
    "check_conv_forward", "check_conv_backward", "check_window_sum", "check_lrn_forward",
    "check_lrn_backward", "check_maxpool_backward", "check_dropout",
    "check_softmax_cross_entropy", "check_sgd_momentum_update", "check_all",
]

F64 = np.float64
TOL = 1e-7          # float64 forward/backward against tinyalex: round-off is ~1e-15
GRAD_TOL = 1e-6     # central differences (h = 1e-5) in float64: ~1e-9 for correct code


class Mismatch(AssertionError):
    """A known-answer test failed (wrong shape, wrong values, modified input...)."""


@dataclass
class CheckResult:
    """The verdict of one check: ``passed``, the worst relative error and each measurement."""

    name: str
    passed: bool
    error: float | None = None                      # worst relative error (None: did not get that far)
    measurements: list = field(default_factory=list)  # (what, relative error, tolerance)
    message: str = ""                                 # why it failed (exception or mismatch)
    hint: str = ""

    def report(self, details=False) -> str:
        """One line per check; every comparison listed when it failed (or ``details``)."""
        verdict = "PASS" if self.passed else "FAIL"
        err = "" if self.error is None else f"  worst relative error {self.error:.1e}"
        lines = [f"[{verdict}] {self.name:<24}{err}  ({len(self.measurements)} comparisons)"]
        for what, e, tol in self.measurements if (details or not self.passed) else ():
            flag = "ok " if e < tol else "BAD"
            lines.append(f"       {flag} {what:<62} {e:.1e}  (tolerance {tol:.0e})")
        if self.message:
            lines.append(f"       {self.message}")
        if not self.passed and self.hint:
            lines.append(f"       hint: {self.hint}")
        return "\n".join(lines)

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


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _fn(impl, name):
    """The function ``name`` from a module, an object or a dict (notebook globals())."""
    fn = impl.get(name) if isinstance(impl, dict) else getattr(impl, name, None)
    if fn is None:
        raise Mismatch(f"no function named {name!r} found: define {name}(...) with this exact name")
    return fn


def _arr(a, what):
    a = np.asarray(a)
    if a.dtype == object:
        raise Mismatch(f"{what} is not a numeric array (got {type(a).__name__})")
    return a


def _shape(a, expected, what):
    a = _arr(a, what)
    if a.shape != tuple(expected):
        raise Mismatch(f"{what} has shape {a.shape}, expected {tuple(expected)}")
    return a


class _Measure:
    """Collects (what, relative error, tolerance) rows."""

    def __init__(self):
        self.rows = []

    def __call__(self, what, got, expected, tol=TOL):
        got = _shape(got, np.shape(expected), what)
        if not np.all(np.isfinite(got)):
            raise Mismatch(f"{what} contains NaN or inf")
        self.rows.append((what, rel_error(got, expected), tol))


def _numeric(f, x, dout):
    """Central-difference gradient of sum(f() * dout) w.r.t. x (x is perturbed in place)."""
    return numerical_gradient(lambda: np.asarray(f(), dtype=F64), x, dout)


def run_check(name, body, hint, impl, verbose=True) -> CheckResult:
    """Run ``body(impl, measure)``, turning any exception into a FAIL with its message."""
    measure = _Measure()
    try:
        body(impl, measure)
        message = ""
    except NotImplementedError as e:
        message = f"not implemented yet ({e})" if str(e) else "not implemented yet"
    except Mismatch as e:
        message = f"wrong answer: {e}"
    except Exception as e:  # the student's code crashed: report it, do not crash the notebook
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (line {tb[-1].lineno} in {tb[-1].name})" if tb else ""
        message = f"raised {type(e).__name__}: {e}{where}"
    errors = [e for _, e, _ in measure.rows]
    passed = not message and all(e < tol for _, e, tol in measure.rows) and bool(measure.rows)
    result = CheckResult(name, passed, max(errors) if errors else None, measure.rows, message, hint)
    if verbose:
        print(result.report())
    return result


CHECKS: "OrderedDict[str, tuple]" = OrderedDict()   # name -> (body, hint)


def _register(name, hint):
    """Record ``body`` as the check of exercise ``name`` with the hint printed on failure."""
    def deco(body):
        CHECKS[name] = (body, hint)
        return body
    return deco


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# 1-2. convolution
# ---------------------------------------------------------------------------
CONV_CASES = [  # (N, C, H, W, F, k, stride, padding)
    (2, 3, 7, 7, 4, 3, 1, 0),
    (2, 3, 8, 7, 4, 3, 2, 1),
    (1, 2, 9, 9, 3, 5, 2, 2),
]


def _reference_conv(W, b, stride, padding):
    F, C, kh, kw = W.shape
    conv = L.Conv2D(C, F, (kh, kw), stride=stride, padding=padding, dtype=F64)
    conv.params["W"][...] = W
    conv.params["b"][...] = b
    return conv


@_register("conv_forward", "out_mat = W.reshape(F, -1) @ cols has shape (F, N*Ho*Wo): reshape it to "
           "(F, N, Ho, Wo) and transpose(1, 0, 2, 3) -- not reshape(N, F, ...) -- then add b.reshape(1, F, 1, 1).")
def _conv_forward(impl, measure):
    """Known answer on a 4x4 ramp, then tinyalex.layers.Conv2D on random inputs (3 stride/padding cases)."""
    conv_forward = _fn(impl, "conv_forward")
    x = np.arange(16, dtype=F64).reshape(1, 1, 4, 4)
    out, _ = conv_forward(x, np.ones((1, 1, 2, 2)), np.array([1.0]), 1, 0)
    expected = np.array([[11, 15, 19], [27, 31, 35], [43, 47, 51]], dtype=F64).reshape(1, 1, 3, 3)
    measure("known answer: 2x2 box filter on a 4x4 ramp, bias 1", out, expected)
    rng = _rng(1)
    for N, C, H, W_, F, k, s, p in CONV_CASES:
        x = rng.standard_normal((N, C, H, W_))
        W, b = rng.standard_normal((F, C, k, k)), rng.standard_normal(F)
        out, _ = conv_forward(x, W, b, s, p)
        ref = _reference_conv(W, b, s, p).forward(x)
        measure(f"vs Conv2D {k}x{k} stride {s} pad {p}, x {x.shape}", out, ref)


@_register("conv_backward", "dW = dout_mat @ cols.T (shape (F, K), reshape to W.shape); dcols = W_mat.T @ dout_mat; "
           "db sums dout over axes (0, 2, 3). If only dx is wrong, check col2im's arguments match im2col's.")
def _conv_backward(impl, measure):
    """dx, dW, db against Conv2D.backward and against central differences of your conv_forward."""
    conv_forward, conv_backward = _fn(impl, "conv_forward"), _fn(impl, "conv_backward")
    rng = _rng(2)
    for i, (N, C, H, W_, F, k, s, p) in enumerate(CONV_CASES[:2]):
        x = rng.standard_normal((N, C, H, W_))
        W, b = rng.standard_normal((F, C, k, k)), rng.standard_normal(F)
        out, cache = conv_forward(x, W, b, s, p)
        dout = rng.standard_normal(np.shape(out))
        dout_copy = dout.copy()
        dx, dW, db = conv_backward(dout, cache)
        if not np.array_equal(dout, dout_copy):
            raise Mismatch("conv_backward modified its argument dout; compute new arrays instead")
        ref = _reference_conv(W, b, s, p)
        ref.forward(x)
        rdx = ref.backward(dout)
        tag = f"{k}x{k} stride {s} pad {p}"
        measure(f"dx vs Conv2D.backward ({tag})", dx, rdx)
        measure(f"dW vs Conv2D.backward ({tag})", dW, ref.grads["W"])
        measure(f"db vs Conv2D.backward ({tag})", db, ref.grads["b"])
        if i == 0:  # numerical gradients of the student's own forward pass
            f = lambda: conv_forward(x, W, b, s, p)[0]
            measure("dx vs numerical gradient", dx, _numeric(f, x, dout), GRAD_TOL)
            measure("dW vs numerical gradient", dW, _numeric(f, W, dout), GRAD_TOL)
            measure("db vs numerical gradient", db, _numeric(f, b, dout), GRAD_TOL)


# ---------------------------------------------------------------------------
# 3-5. local response normalization
# ---------------------------------------------------------------------------
@_register("window_sum", "for offset d, out[:, i] += a[:, i + d] wherever 0 <= i + d < C: with lo = max(0, d) and "
           "hi = min(C, C + d), that is out[:, lo - d:hi - d] += a[:, lo:hi]. Offsets run from -(size//2) to (size-1)//2.")
def _window_sum(impl, measure):
    """Known answer on ones, then tinyalex's window_sum for odd, even and oversized windows."""
    window_sum = _fn(impl, "window_sum")
    ones = np.ones((1, 6, 1, 1))
    measure("known answer: size 5 over 6 channels of ones = 3 4 5 5 4 3",
            window_sum(ones, 5), np.array([3, 4, 5, 5, 4, 3], dtype=F64).reshape(1, 6, 1, 1))
    rng = _rng(3)
    for C, size in [(7, 5), (7, 3), (6, 4), (5, 1), (3, 5)]:
        a = rng.standard_normal((2, C, 3, 2))
        measure(f"vs tinyalex window_sum, {C} channels, size {size}", window_sum(a, size), reference_window_sum(a, size))


def _reference_lrn(size, alpha, beta, k):
    return L.LRN(size=size, alpha=alpha, beta=beta, k=k, convention="paper", dtype=F64)


@_register("lrn_forward", "s = k + alpha * window_sum(x * x, size) -- alpha is NOT divided by size in the paper -- "
           "and out = x * s ** (-beta).")
def _lrn_forward(impl, measure):
    """Known answer on one channel, then tinyalex.layers.LRN (paper convention) with the paper's and a large alpha."""
    lrn_forward = _fn(impl, "lrn_forward")
    out, _ = lrn_forward(np.ones((1, 1, 1, 1)), 5, 0.5, 0.75, 2.0)
    measure("known answer: one channel of 1, alpha 0.5: (2 + 0.5)^-0.75", out, np.full((1, 1, 1, 1), 2.5 ** -0.75))
    rng = _rng(4)
    for size, alpha, beta, k in [(5, 1e-4, 0.75, 2.0), (5, 0.5, 0.75, 2.0), (3, 0.3, 0.5, 1.0)]:
        x = rng.standard_normal((2, 7, 3, 3))
        out, _ = lrn_forward(x, size, alpha, beta, k)
        measure(f"vs LRN(size={size}, alpha={alpha}, beta={beta}, k={k})", out,
                _reference_lrn(size, alpha, beta, k).forward(x))


@_register("lrn_backward", "two terms: the direct one dout * s**(-beta), and the cross-channel one "
           "-2 * alpha * beta * x * window_sum(dout * out / s, size). A missing cross-channel term only shows "
           "with a large alpha.")
def _lrn_backward(impl, measure):
    """dx against LRN.backward and central differences, with a large alpha so the cross-channel terms count."""
    lrn_forward, lrn_backward = _fn(impl, "lrn_forward"), _fn(impl, "lrn_backward")
    rng = _rng(5)
    for size, alpha, beta, k in [(5, 0.5, 0.75, 2.0), (3, 0.3, 0.5, 1.0)]:
        x = rng.standard_normal((2, 7, 3, 2))
        out, cache = lrn_forward(x, size, alpha, beta, k)
        dout = rng.standard_normal(x.shape)
        dx = lrn_backward(dout, cache)
        ref = _reference_lrn(size, alpha, beta, k)
        ref.forward(x)
        tag = f"size={size}, alpha={alpha}"
        measure(f"dx vs LRN.backward ({tag})", dx, ref.backward(dout))
        measure(f"dx vs numerical gradient ({tag})", dx,
                _numeric(lambda: lrn_forward(x, size, alpha, beta, k)[0], x, dout), GRAD_TOL)


# ---------------------------------------------------------------------------
# 6. max pooling
# ---------------------------------------------------------------------------
@_register("maxpool_backward", "each window sends dout to ONE input, its argmax; loop over the k*k offsets and "
           "use += on the strided slice dx[:, :, i:i + s*(Ho-1) + 1:s, j:j + s*(Wo-1) + 1:s], so that inputs "
           "shared by overlapping windows collect every contribution.")
def _maxpool_backward(impl, measure):
    """Known answer (a centre maximum wins all four overlapping windows), MaxPool2D.backward, central differences."""
    forward, backward = _fn(impl, "maxpool_forward"), _fn(impl, "maxpool_backward")
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    out, cache = forward(x, 3, 2)
    dx = backward(np.ones_like(out), cache)
    expected = np.zeros((1, 1, 5, 5))
    expected[0, 0, 2, 2] = 4.0
    measure("known answer: 3/2 pool, the centre max wins 4 windows -> 4", dx, expected)
    rng = _rng(6)
    for k, s in [(3, 2), (2, 2)]:
        x = rng.standard_normal((2, 3, 9, 7))      # continuous values: no ties
        out, cache = forward(x, k, s)
        dout = rng.standard_normal(np.shape(out))
        dx = backward(dout, cache)
        ref = L.MaxPool2D(k, s, dtype=F64)
        ref.forward(x)
        measure(f"dx vs MaxPool2D({k}, {s}).backward", dx, ref.backward(dout))
        measure(f"dx vs numerical gradient ({k}/{s})", dx, _numeric(lambda: forward(x, k, s)[0], x, dout), GRAD_TOL)


# ---------------------------------------------------------------------------
# 7. dropout
# ---------------------------------------------------------------------------
@_register("dropout", "training: multiply by mask / (1 - p) (inverted) or by mask (paper); evaluation: by 1 "
           "(inverted) or by (1 - p) (paper). Backward multiplies dout by the same factor.")
def _dropout(impl, measure):
    """Both modes in training (fixed mask) and evaluation against tinyalex.layers.Dropout, and the keep rate of random masks."""
    forward, backward = _fn(impl, "dropout_forward"), _fn(impl, "dropout_backward")
    rng = _rng(7)
    x = rng.standard_normal((4, 6))
    dout = rng.standard_normal((4, 6))
    mask = rng.random((4, 6)) >= 0.5
    for mode in ("inverted", "paper"):
        for training in (True, False):
            ref = L.Dropout(0.5, mode=mode, dtype=F64)
            ref.set_mask(mask)
            ref.train(training)
            out, cache = forward(x, 0.5, mode, training, mask if training else None, None)
            what = f"{mode}, {'training' if training else 'evaluation'}"
            measure(f"forward vs Dropout ({what})", out, ref.forward(x))
            measure(f"backward vs Dropout ({what})", backward(dout, cache), ref.backward(dout))
    ones = np.ones((200, 100))
    out, _ = forward(ones, 0.3, "inverted", True, None, _rng(8))
    kept = float(np.mean(np.asarray(out) != 0))
    if abs(kept - 0.7) > 0.02:
        raise Mismatch(f"with p=0.3 a random mask should keep about 70% of units; yours kept {kept:.1%}")
    measure("random mask, p=0.3: kept units are scaled to 1/0.7", np.asarray(out)[np.asarray(out) != 0].max(keepdims=True),
            np.array([1 / 0.7]))


# ---------------------------------------------------------------------------
# 8. softmax cross-entropy
# ---------------------------------------------------------------------------
@_register("softmax_cross_entropy", "dlogits = (softmax(logits) - onehot(labels)) / N; subtract each row's max "
           "before exp so logits of +-1000 stay finite; return the MEAN loss, not the sum.")
def _softmax_ce(impl, measure):
    """Known answers (uniform logits: log K), huge logits, SoftmaxCrossEntropy and central differences."""
    sce = _fn(impl, "softmax_cross_entropy")
    N, K = 4, 10
    labels = np.array([0, 3, 9, 3])
    loss, d = sce(np.zeros((N, K)), labels)
    onehot = np.eye(K)[labels]
    measure("known answer: zero logits give loss log(10)", np.array([float(loss)]), np.array([np.log(K)]))
    measure("known answer: zero logits give dlogits (1/10 - onehot) / 4", d, (1.0 / K - onehot) / N)
    big = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    loss, d = sce(big, np.array([0, 0]))
    measure("huge logits (+-1000) stay finite: loss (0 + 1000) / 2", np.array([float(loss)]), np.array([500.0]))
    rng = _rng(9)
    z = rng.standard_normal((N, K)) * 3
    loss, d = sce(z, labels)
    ref = L.SoftmaxCrossEntropy(F64)
    rl = ref.forward(z, labels)
    measure("loss vs SoftmaxCrossEntropy", np.array([float(loss)]), np.array([float(rl)]))
    measure("dlogits vs SoftmaxCrossEntropy.backward", d, ref.backward())
    measure("dlogits vs numerical gradient", d, _numeric(lambda: np.array(float(sce(z, labels)[0])), z, 1.0), GRAD_TOL)


# ---------------------------------------------------------------------------
# 9. SGD with momentum and weight decay
# ---------------------------------------------------------------------------
def reference_sgd(w, dw, v, lr, momentum=0.9, weight_decay=5e-4):
    """The paper's rule (section 5), written out: v <- mu v - wd lr w - lr dw; w <- w + v."""
    v = momentum * v - weight_decay * lr * w - lr * dw
    return w + v, v


@_register("sgd_momentum_update", "v = momentum * v - weight_decay * lr * w - lr * dw, then w = w + v (the NEW v); "
           "return new arrays and leave the arguments unchanged.")
def _sgd(impl, measure):
    """Known answer of one step, three steps on random arrays, untouched inputs, tinyalex.train.SGD."""
    step = _fn(impl, "sgd_momentum_update")
    w, v = step(np.array([1.0]), np.array([0.5]), np.array([0.1]), 0.1)
    measure("known answer: v = 0.09 - 0.00005 - 0.05 = 0.03995", v, np.array([0.03995]))
    measure("known answer: w = 1 + 0.03995", w, np.array([1.03995]))
    rng = _rng(10)
    w = rng.standard_normal((3, 4))
    v = np.zeros_like(w)
    rw, rv = w.copy(), v.copy()
    for _ in range(3):
        dw = rng.standard_normal(w.shape)
        w_in, dw_in, v_in = w, dw, v
        copies = (w.copy(), dw.copy(), v.copy())
        w, v = step(w_in, dw_in, v_in, 0.01, 0.9, 5e-4)
        rw, rv = reference_sgd(rw, dw, rv, 0.01)
        for name, arr, before in zip(("w", "dw", "v"), (w_in, dw_in, v_in), copies):
            if not np.array_equal(arr, before):
                raise Mismatch(f"sgd_momentum_update modified its argument {name}; return new arrays instead")
    measure("w after 3 steps vs the paper's rule", w, rw)
    measure("v after 3 steps vs the paper's rule", v, rv)
    # and against tinyalex's optimizer, with a learning rate divided by 10 after two steps
    from ..train.sgd import SGD

    w0 = rng.standard_normal((2, 3))
    opt = SGD([("w", w0.copy())], lr=0.1, momentum=0.9, weight_decay=5e-4)
    w, v = w0.copy(), np.zeros_like(w0)
    for t in range(4):
        lr = 0.1 if t < 2 else 0.01
        dw = rng.standard_normal(w0.shape)
        opt.lr = lr
        opt.step({"w": dw})
        w, v = step(w, dw, v, lr, 0.9, 5e-4)
    measure("w after 4 steps (lr 0.1, then 0.01) vs tinyalex.train.SGD", w, dict(opt.named_parameters())["w"])


# ---------------------------------------------------------------------------
# public check functions and the runner
# ---------------------------------------------------------------------------
def _make(name):
    body, hint = CHECKS[name]

    def check(impl, verbose=True) -> CheckResult:
        return run_check(name, body, hint, impl, verbose)

    check.__name__ = f"check_{name}"
    check.__doc__ = f"Check exercise {name!r} of impl (a module, object or globals() dict).\n\n{body.__doc__}"
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


def run_all(impl, verbose=True) -> Report:
    """Run every check on ``impl``; print each verdict and the score."""
    results = [run_check(name, body, hint, impl, verbose) for name, (body, hint) in CHECKS.items()]
    report = Report(results)
    if verbose:
        print(f"\nscore: {report.score}/{report.total} checks passed")
    return report


def check_all(impl, verbose=True) -> Report:
    """Alias of :func:`run_all` (the last cell of the student notebook)."""
    return run_all(impl, verbose)
