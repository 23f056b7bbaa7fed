"""``tinyalex doctor --gpu``: one prepared check of the CuPy path on one GPU, in at most 8 minutes.

Run it once on a machine with an NVIDIA GPU and CuPy::

    python -m tinyalex doctor --gpu --out gpu-report

It writes ``gpu-report/report.md`` and ``gpu-report/report.json`` with, in order:

1. the GPU, CUDA and CuPy versions;
2. one training step (forward, loss, backward, SGD update) on CuPy compared with
   NumPy, for alexnet-small and AlexNet, on the same weights, data and dropout
   masks: float64 gradients within 1e-9 (relative, per parameter, in the
   max norm), float32 within 1e-3;
3. the two-tower model on devices (0, 0), with CuPy's ``PerformanceWarning``
   turned into an error (any peer access or hidden cross-device copy fails);
4. ``pytest -m gpu`` (the CuPy cases of the test suite; from a source checkout);
5. ``bench --backend cupy`` for alexnet and alexnet-small at batch 128, and
   PyTorch on CUDA beside it if PyTorch sees the GPU;
6. ``train --quick --backend cupy`` (Fashion-MNIST if it is on the machine, else
   the synthetic set).

Each part has a time limit and the whole a budget of 8 minutes; a part that
fails or runs out of time is reported as such and the others still run.
Without CuPy or a GPU it says so in one line and exits with status 2.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy

from . import backend as B
from .bench import bench_models, build_tinyalex_net, build_torch_net
from .data.datasets import find_fashion_mnist
from .fileio import atomic_write_text
from .layers import Dropout, SoftmaxCrossEntropy
from .models import build_model
from .train.sgd import SGD

BUDGET_S = 480                      # the whole check: 8 minutes
TOLERANCE = {"float64": 1e-9, "float32": 1e-3}
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# The parts
# --------------------------------------------------------------------------
def gpu_info():
    """GPU name, CUDA runtime and driver versions, CuPy version (BackendError without CuPy or GPU)."""
    cp = B._import_cupy()
    rt = cp.cuda.runtime
    return {"gpus": B.cuda_devices(), "cuda_runtime": rt.runtimeGetVersion(), "cuda_driver": rt.driverGetVersion(),
            "cupy": cp.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def _training_step(model, x, y):
    """Forward, loss, backward, SGD update; returns (loss, {name: grad}) as host copies."""
    dtype = x.dtype
    with B.device(B.device_of(x)):
        logits = model.forward(x)
        lossf = SoftmaxCrossEntropy(dtype=dtype)
        loss = lossf.forward(logits, y)
        model.backward(lossf.backward())
    grads = {name: B.to_host(g) for name, g in model.named_gradients()}
    SGD(model, lr=0.01, momentum=0.9, weight_decay=5e-4).step()
    return float(B.to_host(loss)), grads


def compare_step(model="alexnet-small", dtype="float64", backend="cupy", device=0, batch=4, seed=0):
    """One training step on ``backend`` against NumPy: same weights, data and dropout masks.

    Returns a dict with the loss on both, the worst relative gradient error
    (max |g - g_ref| / max |g_ref| over each parameter), the updated weights'
    worst error, the tolerance and ``passed``. ``backend="standin"`` runs the
    same comparison on the CPU (the tests do).
    """
    dt = numpy.dtype(dtype)
    ref = build_model(model, dtype=dt, seed=seed, backend="numpy")
    rng = numpy.random.default_rng(seed + 1)
    x = rng.standard_normal((batch,) + tuple(ref.input_shape)).astype(dt)
    y = rng.integers(0, ref.num_classes, batch)
    ref.train()
    ref_loss, ref_grads = _training_step(ref, x, y)
    masks = {name: B.to_host(layer.mask) != 0 for name, layer in ref.named_layers() if isinstance(layer, Dropout)}

    dev_model = build_model(model, dtype=dt, seed=seed, backend="numpy")
    for name, layer in dev_model.named_layers():
        if name in masks:
            layer.set_mask(masks[name])              # the masks NumPy drew, moved with the layer
    dev_model.to(device, backend)
    dev_model.train()
    loss, grads = _training_step(dev_model, B.to_device(x, device, backend), B.to_device(y, device, backend))

    def rel(a, b):
        return float(numpy.max(numpy.abs(a - b)) / max(float(numpy.max(numpy.abs(b))), 1e-30))

    errors = {k: rel(grads[k], ref_grads[k]) for k in ref_grads}
    worst = max(errors, key=errors.get)
    ref_w, dev_w = ref.state_dict(), dev_model.state_dict()
    weight_error = max(rel(numpy.asarray(dev_w[k]), numpy.asarray(ref_w[k])) for k in ref_w)
    tol = TOLERANCE[dt.name]
    loss_ok = abs(loss - ref_loss) <= tol * max(1.0, abs(ref_loss))
    return {"model": model, "dtype": dt.name, "backend": backend, "batch": batch, "loss": loss,
            "loss_numpy": ref_loss, "max_grad_error": errors[worst], "worst_parameter": worst,
            "max_weight_error": weight_error, "tolerance": tol,
            "passed": errors[worst] <= tol and weight_error <= tol and loss_ok}


def two_towers_on_one_device(backend="cupy", model="alexnet-small", batch=4):
    """The two-tower model on devices (0, 0), CuPy's PerformanceWarning as an error: one step."""
    net = build_model(model, devices=(0, 0), backend=backend)
    net.train()
    x = B.to_device(numpy.zeros((batch,) + tuple(net.input_shape), numpy.float32), 0, backend)
    y = B.to_device(numpy.zeros(batch, numpy.int64), 0, backend)
    with warnings.catch_warnings():
        if backend == "cupy":
            cp = B._import_cupy()
            perf = getattr(getattr(cp, "_util", None), "PerformanceWarning", None) or cp.exceptions.PerformanceWarning
            warnings.simplefilter("error", perf)
        loss, _ = _training_step(net, x, y)
    return {"model": model, "devices": [0, 0], "loss": loss, "passed": bool(numpy.isfinite(loss))}


def _run(cmd, timeout, cwd=None):
    """Run a command with this tinyalex first on the path; returns status, seconds, output tail (never raises)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
        rc, out = p.returncode, (p.stdout + p.stderr)
    except subprocess.TimeoutExpired as exc:
        rc, out = "timeout", f"stopped after {timeout:.0f} s\n" + ((exc.stdout or b"").decode(errors="replace")
                                                                 if isinstance(exc.stdout, bytes) else exc.stdout or "")
    return {"command": " ".join(cmd), "status": rc, "seconds": round(time.perf_counter() - t0, 1),
            "output_tail": out[-3000:], "passed": rc == 0}


def bench_cupy(model, out_dir, timeout, batch=128):
    path = Path(out_dir) / f"bench-{model}.json"
    res = _run([sys.executable, "-m", "tinyalex", "bench", "--backend", "cupy", "--model", model, "--batch-size",
                str(batch), "--no-memory", "--json", str(path)], timeout)
    if res["passed"]:
        step = json.loads(path.read_text())["step"]
        res.update(step_ms=1e3 * step["time_s"], images_per_s=step["images_per_s"])
    return res


def torch_cuda_step(model, batch=128, repeats=10):
    """PyTorch's training step on CUDA for the bench's model (None if PyTorch cannot use the GPU)."""
    try:
        import torch
    except ImportError:
        return {"skipped": "PyTorch is not installed"}
    if not torch.cuda.is_available():
        return {"skipped": "PyTorch does not see a CUDA device"}

    if model not in bench_models():
        return {"skipped": f"the bench has no PyTorch version of {model}"}
    twin = build_tinyalex_net(model)
    net = build_torch_net(twin).cuda().train()
    x = torch.randn((batch,) + tuple(twin.input_shape), device="cuda")
    y = torch.randint(0, twin.num_classes, (batch,), device="cuda")
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    t = float(numpy.median(times))
    return {"torch": torch.__version__, "step_ms": 1e3 * t, "images_per_s": batch / t}


def _train_dataset():

    try:
        find_fashion_mnist(download=False)
        return "fashion-mnist"
    except Exception:
        return "synthetic"


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------
def _fmt(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def markdown(report):
    """The report as Markdown: one section per part, one table row per result."""
    lines = [f"# tinyalex GPU check ({report['date']})", ""]
    info = report.get("versions", {})
    lines += [f"- {k}: {_fmt(v if not isinstance(v, list) else '; '.join(v))}" for k, v in info.items()]
    lines += ["", f"Total: {report['seconds']:.0f} s of the {BUDGET_S} s budget. "
              f"Result: **{'all passed' if report['passed'] else 'FAILED'}**.", ""]
    for part, rows in report["parts"].items():
        lines += [f"## {part}", ""]
        rows = rows if isinstance(rows, list) else [rows]
        keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "output_tail"]
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
        tails = [r["output_tail"] for r in rows if r.get("output_tail") and not r.get("passed", True)]
        lines += ["", "```text", *(t.strip()[-1500:] for t in tails), "```"] if tails else []
        lines.append("")
    return "\n".join(lines)


def write_report(out_dir, report):
    """report.md and report.json in ``out_dir`` (each written atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(out / "report.md", markdown(report) + "\n")
    return out / "report.md"


def _part(report, name, deadline, fn, *args):
    """Run one part, record its result or its error; skip it when the budget is spent."""
    if time.perf_counter() >= deadline:
        result = {"skipped": "out of the 8-minute budget", "passed": False}
    else:
        t0 = time.perf_counter()
        try:
            result = fn(*args)
        except Exception as exc:          # one failing part must not hide the others
            result = {"error": f"{type(exc).__name__}: {exc}", "passed": False}
        if isinstance(result, dict):
            result.setdefault("seconds", round(time.perf_counter() - t0, 1))
    report["parts"].setdefault(name, []).append(result)
    print(f"  {name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result.items() if k != "output_tail"), flush=True)


def run_gpu_check(out_dir):
    """All parts, in order of importance; returns the report dict (also written to out_dir)."""
    t0 = time.perf_counter()
    deadline = t0 + BUDGET_S
    versions = gpu_info()
    print("tinyalex doctor --gpu: " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "versions": versions, "parts": {}}
    left = lambda cap: max(1.0, min(cap, deadline - time.perf_counter()))     # noqa: E731
    for model, batch in (("alexnet-small", 8), ("alexnet", 2)):
        for dtype in ("float64", "float32"):
            _part(report, "CuPy step vs NumPy", deadline, compare_step, model, dtype, "cupy", 0, batch)
    _part(report, "two towers on devices (0, 0)", deadline, two_towers_on_one_device)
    if (REPO / "tests").is_dir():
        _part(report, "pytest -m gpu", deadline, lambda: _run(
            [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"], left(180), cwd=REPO))
    else:
        report["parts"]["pytest -m gpu"] = [{"skipped": "no tests/ folder: run from a source checkout"}]
    for model in ("alexnet", "alexnet-small"):
        _part(report, "bench --backend cupy, batch 128", deadline, lambda m=model: dict(
            {"model": m}, **bench_cupy(m, out_dir, left(90))))
        _part(report, "PyTorch CUDA step, batch 128", deadline, lambda m=model: dict({"model": m},
                                                                                       **torch_cuda_step(m)))
    dataset = _train_dataset()
    _part(report, "train --quick --backend cupy", deadline, lambda: dict({"dataset": dataset}, **_run(
        [sys.executable, "-m", "tinyalex", "train", "--quick", "--backend", "cupy", "--dataset", dataset,
         "--out", str(Path(out_dir) / "train-quick")], left(150))))
    report["seconds"] = time.perf_counter() - t0
    report["passed"] = all(r.get("passed", True) for rows in report["parts"].values() for r in rows)
    return report


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def register_cli(subparsers):
    p = subparsers.add_parser("doctor", help="check this machine: --gpu runs the prepared GPU check (8 minutes)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--gpu", action="store_true", help="run the GPU check (needs CuPy and a CUDA device)")
    p.add_argument("--out", default="gpu-report", help="folder for report.md and report.json")
    p.set_defaults(func=_cli_main)


def _cli_main(args):
    if not args.gpu:
        print(f"tinyalex doctor: Python {platform.python_version()}, NumPy {numpy.__version__}, "
              f"backends here: {', '.join(B.available_backends())}. Add --gpu for the GPU check.")
        return 0
    try:
        B._import_cupy()
    except B.BackendError as exc:
        print(f"tinyalex doctor: no GPU check on this machine: {str(exc).split('. ')[0]}.", file=sys.stderr)
        return 2
    report = run_gpu_check(args.out)
    path = write_report(args.out, report)
    print(f"report written to {path} ({'all passed' if report['passed'] else 'FAILED'})")
    return 0 if report["passed"] else 1
