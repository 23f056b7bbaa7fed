"""``tinyalex bench``: how fast is each AlexNet layer, and a whole training step?

For every conv, LRN, pooling and fully connected layer of AlexNet (the
model's own layer objects, as ``tinyalex.models.build_model`` builds it, with
their input shapes read off the model) the bench times ``forward`` and
``forward + backward`` at a chosen batch size, then a whole
training step (forward, loss, backward, SGD update with momentum 0.9 and
weight decay 5e-4), and reports images/s and peak memory. With
``--compare torch`` it runs the same layers and the same step in PyTorch, in
the same process and with the same number of threads, and prints the ratio
tinyalex / PyTorch for every row (below 1: tinyalex is faster).

Times are medians over ``--repeats`` runs after ``--warmup`` runs.

The floor
---------
A training step cannot be faster than its matrix products: the bench counts
the multiply-adds of every convolution and fully connected layer (forward,
weight gradient, input gradient; the first layer needs no input gradient),
measures this machine's GEMM rate with one large float32 product, and
reports ``step time / (FLOPs / GEMM rate)``, the step's multiple of the floor.
The FLOPs are those of the direct (im2col) convolution, the issue's
definition. Conv2D's Winograd path (``tinyalex/layers/winograd.py``, used by
default for AlexNet's conv2 to conv5) does fewer multiplications than that,
so with it the floor is a yardstick, no longer a hard limit.

Peak memory
-----------
Each framework's step runs in a fresh Python process that imports the same
libraries (NumPy, and torch when comparing). The probe records the resident
set size (RSS) after the imports, builds the model, runs one step (so that
gradients, momentum buffers and workspaces exist), resets the kernel's
high-water mark (``/proc/self/clear_refs``), runs one more step and reads the
high-water mark (``VmHWM``). Reported: high-water mark minus the RSS after
imports, that is parameters + gradients + momentum + everything the step
allocates, measured the same way for both frameworks. For NumPy the probe
also reports ``tracemalloc``'s peak of the step's own new allocations.

Usage::

    python -m tinyalex bench --compare torch --json bench.json
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m tinyalex bench ...
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import OrderedDict

import numpy

from . import backend as B
from . import standin
from .cli import parse_devices
from .layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU
from .layers.conv import conv_output_size
from .models import build_model, model_names
from .models.net import multiply_adds
from .fast.cpu import num_threads
from .fileio import atomic_write_text

IMPLS = ("fast", "reference")       # --impl: the fast classes (tinyalex/fast) or the reference ones (tinyalex/layers)

__all__ = ["MODELS", "layer_names", "run_bench", "gemm_rate", "step_matmul_flops", "blas_info", "register_cli"]

# --------------------------------------------------------------------------
# The networks: built by tinyalex.models.build_model; the bench reads the layers
# it times, their arguments and their input shapes off the model.
# --------------------------------------------------------------------------
MODELS = {
    "alexnet": dict(name="alexnet", init="paper"),
    "alexnet-small": dict(name="alexnet-small"),          # 1x28x28 (Fashion-MNIST), what `train` runs by default
    # the same structure with few channels on 67x67 inputs (conv1 15x15 ... pool5 1x1): for tests
    "tiny": dict(name="alexnet", num_classes=10, input_shape=(3, 67, 67), channels=(16, 32, 48, 48, 32),
                 fc_sizes=(64, 64), init="paper"),
}
KINDS = ((Conv2D, "conv"), (LRN, "lrn"), (MaxPool2D, "pool"), (Linear, "fc"))
"""The timed layers: each model layer that is (or, for LRN, wraps) one of these classes."""


def build_tinyalex_net(model="alexnet", dtype=numpy.float32, seed=0, devices=None, impl="fast"):
    """The network the bench times (tinyalex.models.build_model): one device with grouped
    convolutions, or (``devices=(d0, d1)``) the two towers of section 3.2 on two devices;
    ``impl`` "fast" builds it from the fast classes, "reference" from tinyalex/layers."""
    if impl not in IMPLS:
        raise ValueError(f"--impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    kw = dict(MODELS.get(model) or dict(name=model))     # any other name: the registry's model as it is
    return build_model(kw.pop("name"), seed=seed, dtype=dtype, devices=devices, fast=impl == "fast", **kw)


def bench_model_names():
    """The --model names: the bench's own (above) and every model of the registry."""
    return list(MODELS) + [name for name in model_names() if name not in MODELS]


def _inner_lrn(layer):
    """The LRN a layer is or holds (the model's per-tower LRN wraps one), else None."""
    if isinstance(layer, LRN):
        return layer
    return next((v for v in vars(layer).values() if isinstance(v, LRN)), None)


def _kind(layer):
    """'conv', 'lrn', 'pool', 'fc' for a timed layer, 'block' for any other layer with parameters (a ResNet
    stage, an inception module, a BatchNorm, a convolution without bias: timed as one), else None
    (ReLU, dropout, flatten)."""
    if _inner_lrn(layer) is not None:
        return "lrn"
    kind = next((kind for cls, kind in KINDS if isinstance(layer, cls)), None)
    if kind is None and any(True for _ in layer.parameters()):
        return "block"
    return kind


def _arguments(kind, layer):
    """The layer's constructor arguments, as the torch twin and the FLOP count need them."""
    if kind == "conv":
        return dict(cin=layer.in_channels, cout=layer.out_channels, k=layer.kernel_size[0],
                    stride=layer.stride[0], pad=layer.padding[0], groups=layer.groups)
    if kind == "lrn":
        lrn = _inner_lrn(layer)
        return dict(size=lrn.size, alpha=lrn.alpha, beta=lrn.beta, k=lrn.k, groups=getattr(layer, "groups", 1))
    if kind == "pool":
        return dict(k=layer.kernel_size[0], stride=layer.stride[0])
    if kind == "block":
        return dict(parameters=layer.num_parameters())
    return dict(fin=layer.in_features, fout=layer.out_features)


def layer_specs(net):
    """OrderedDict name -> (kind, arguments, input shape (C, H, W) or (features,), layer) for
    every timed layer of ``net`` (a built model, or a name in MODELS), in the model's order.

    The shapes come from one image (zeros) sent through the model's layers in eval mode.
    """
    if isinstance(net, str):
        net = build_tinyalex_net(net)
    x = B.asarray(numpy.zeros((1,) + tuple(net.input_shape), net.dtype))
    specs = OrderedDict()
    net.eval()
    for name, layer in net.children().items():
        kind = _kind(layer)
        if kind is not None:
            specs[name] = (kind, _arguments(kind, layer), tuple(x.shape[1:]), layer)
        x = layer.forward(x)
    return specs


def layer_names(model="alexnet"):
    return list(layer_specs(model))


def step_matmul_flops(model="alexnet", batch=32):
    """Floating-point operations (2 per multiply-add) of every matrix product in a training step.

    Per conv: forward 2*N*Ho*Wo*F*(C/G)*kh*kw, the same again for dW and for
    dx (except conv1, whose input needs no gradient); per fully connected
    layer 2*N*in*out, three times. ``model``: a name in MODELS or a built net.
    Returns (total, per-layer dict).
    """
    per = OrderedDict()
    for i, (name, (kind, a, shape, layer)) in enumerate(layer_specs(model).items()):
        if kind == "conv":
            Ho = conv_output_size(shape[1], a["k"], a["stride"], a["pad"])
            Wo = conv_output_size(shape[2], a["k"], a["stride"], a["pad"])
            f = 2 * batch * Ho * Wo * a["cout"] * (a["cin"] // a["groups"]) * a["k"] ** 2
        elif kind == "fc":
            f = 2 * batch * a["fin"] * a["fout"]
        elif kind == "block":          # a ResNet stage, an inception module: its convolutions' multiply-adds
            f = 2 * batch * multiply_adds(layer, shape)
        else:
            continue
        per[name] = f * (2 if i == 0 else 3)
    return sum(per.values()), per


# --------------------------------------------------------------------------
# The torch twins of the layers and the network
# --------------------------------------------------------------------------
def _torch_layer(kind, a):
    import torch.nn as tnn

    if kind == "conv":
        return tnn.Conv2d(a["cin"], a["cout"], a["k"], stride=a["stride"], padding=a["pad"], groups=a["groups"])
    if kind == "lrn":
        # torch divides alpha by n: the paper's alpha=1e-4 is torch's 5e-4
        lrn = tnn.LocalResponseNorm(a["size"], alpha=a["alpha"] * a["size"], beta=a["beta"], k=a["k"])
        return _torch_group_lrn(lrn, a["groups"]) if a["groups"] > 1 else lrn
    if kind == "pool":
        return tnn.MaxPool2d(a["k"], a["stride"])
    if kind == "fc":
        return tnn.Linear(a["fin"], a["fout"])
    raise ValueError(kind)


def _torch_group_lrn(lrn, groups):
    """torch's LRN within each of ``groups`` channel groups (tinyalex's default: each tower its own maps)."""
    import torch.nn as tnn

    class GroupLRN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.lrn = lrn

        def forward(self, x):
            N, C, H, W = x.shape
            return self.lrn(x.reshape(N * groups, C // groups, H, W)).reshape(N, C, H, W)

    return GroupLRN()


def build_torch_net(model="alexnet"):
    """The same network in torch, layer by layer from the tinyalex model (a name in MODELS
    or a built net): grouped convs, the paper's LRN (within towers, as the model has it),
    3/2 pools, dropout."""
    import torch.nn as tnn

    net = build_tinyalex_net(model) if isinstance(model, str) else model
    items = OrderedDict()
    for name, layer in net.children().items():
        kind = _kind(layer)
        if kind is not None:
            items[name] = _torch_layer(kind, _arguments(kind, layer))
        elif isinstance(layer, ReLU):
            items[name] = tnn.ReLU(inplace=True)
        elif isinstance(layer, Dropout):
            items[name] = tnn.Dropout(layer.p)
        elif isinstance(layer, Flatten):
            items[name] = tnn.Flatten()
        else:
            raise ValueError(f"bench: no torch counterpart for layer {name} ({type(layer).__name__})")
    return tnn.Sequential(items)


def make_tinyalex_step(model="alexnet", batch=32, dtype=numpy.float32, seed=0, devices=None, impl="fast"):
    """A closure running one training step on fixed random data; returns (step, net).

    The loss stays on the device (no host read inside the step)."""
    from .layers import SoftmaxCrossEntropy
    from .train.sgd import SGD

    net = build_tinyalex_net(model, dtype, seed, devices, impl)
    net.requires_input_grad(False)   # like torch: no gradient for the input data
    net.train()
    rng = numpy.random.default_rng(seed + 1)
    x = B.asarray(rng.standard_normal((batch,) + tuple(net.input_shape)).astype(dtype))
    y = B.asarray(rng.integers(0, net.num_classes, batch))
    lossf = SoftmaxCrossEntropy(dtype=dtype)
    opt = SGD(net, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        logits = net.forward(x)
        loss = lossf.forward(logits, y)
        net.backward(lossf.backward())
        opt.step()
        return loss

    return step, net


def count_step(step):
    """Device operations and host synchronisations of one call of ``step()``, counted on the stand-in.

    ``step`` is a training step (forward, loss, backward, SGD update) on
    stand-in arrays, e.g. from :func:`make_tinyalex_step` under
    ``B.use_backend("standin")``. It is counted in steady state: one
    uncounted call first creates the momentum buffers and the dropout
    generators. Returns a JSON-ready dict: ``device_ops_per_step``,
    ``host_syncs_per_step``, the ten most frequent operations and the syncs by name.
    """
    step()
    with standin.count() as c:
        step()
    return OrderedDict(device_ops_per_step=c.device_ops, host_syncs_per_step=c.host_syncs,
                       top_ops=dict(c.ops_by_name.most_common(10)), syncs=dict(c.syncs_by_name))


def make_torch_step(model="alexnet", batch=32, seed=0):
    import torch

    torch.manual_seed(seed)
    twin = build_tinyalex_net(model)
    input_shape, num_classes = tuple(twin.input_shape), twin.num_classes
    net = build_torch_net(twin).train()
    del twin                                  # only its layer list was needed
    x = torch.randn((batch,) + input_shape)
    y = torch.randint(0, num_classes, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, net


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------
# Seconds to wait before timing: the other framework's (or BLAS's) worker threads spin for a
# while after their last job, and would steal the two cores from the first timed runs.
SETTLE_S = 0.3

# The clock: wall time (default), or the CPU time of this process, all threads summed ("cpu"): with
# --threads 1 the CPU time hardly changes when other programs load the machine; wall time does.
TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}
_timer = {"now": time.perf_counter}


def _median_time(fn, repeats, warmup, sync=None):
    if SETTLE_S:
        time.sleep(SETTLE_S)
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    now = _timer["now"]
    for _ in range(repeats):
        t0 = now()
        fn()
        if sync:
            sync()
        times.append(now() - t0)
    return statistics.median(times)


def _bench_tinyalex_layer(layer, kind, shape, batch, dtype, repeats, warmup):
    """Median seconds of ``layer.forward`` and of forward + backward on random (batch,) + shape inputs."""
    rng = numpy.random.default_rng(0)
    x = B.asarray(rng.standard_normal((batch,) + tuple(shape)).astype(dtype))
    if kind == "lrn":   # LRN sees ReLU outputs of a conv in AlexNet: non-negative, scale ~1
        x = abs(x)
    y = layer.forward(x)
    dout = B.asarray(rng.standard_normal(y.shape).astype(dtype))

    def fwd():
        layer.forward(x)

    def fwd_bwd():
        layer.forward(x)
        layer.backward(dout)

    return dict(forward=_median_time(fwd, repeats, warmup, B.synchronize),
                forward_backward=_median_time(fwd_bwd, repeats, warmup, B.synchronize))


def _bench_torch_layer(kind, a, shape, batch, repeats, warmup):
    import torch

    torch.manual_seed(0)
    layer = _torch_layer(kind, a)
    x = torch.randn((batch,) + tuple(shape))
    if kind == "lrn":
        x = x.abs()
    x.requires_grad_(True)          # tinyalex computes dx too
    y = layer(x)
    dout = torch.randn(y.shape)

    def fwd():
        layer(x)

    def fwd_bwd():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(dout)

    return dict(forward=_median_time(fwd, repeats, warmup), forward_backward=_median_time(fwd_bwd, repeats, warmup))


def gemm_rate(n=2048, repeats=5, dtype=numpy.float32):
    """This machine's matrix-product rate in FLOP/s: median over repeats of an n x n x n product."""
    xp = B.xp_for_backend()
    a = B.asarray(numpy.random.default_rng(0).standard_normal((n, n)).astype(dtype))
    b = B.asarray(numpy.random.default_rng(1).standard_normal((n, n)).astype(dtype))
    t = _median_time(lambda: xp.matmul(a, b), repeats, 2, B.synchronize)
    return 2.0 * n ** 3 / t


def blas_info():
    """What NumPy's matrix products run on (threadpoolctl), or a note if it is not installed."""
    try:
        import threadpoolctl
    except ImportError:
        return [dict(note="pip install threadpoolctl to see the BLAS library and kernel")]
    keep = ("user_api", "internal_api", "version", "architecture", "corename", "num_threads", "threading_layer",
            "prefix")
    return [{k: v for k, v in info.items() if k in keep} for info in threadpoolctl.threadpool_info()]


def _blas_threads():
    n = [i.get("num_threads") for i in blas_info() if i.get("user_api") == "blas" and i.get("num_threads")]
    return n[0] if n else os.cpu_count()


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ValueError(
            f"--compare torch needs PyTorch, which is not installed ({exc}). "
            "Install it with `pip install torch` (it is optional: tinyalex never needs it), "
            "or leave out --compare.") from None
    return torch


# --------------------------------------------------------------------------
# Peak memory, in a fresh process per framework
# --------------------------------------------------------------------------
def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _memory_probe(framework, model, batch, backend, import_torch, impl="fast"):
    """Run in a fresh process: print JSON with the step's peak memory (see the module docstring)."""
    if import_torch:
        import torch  # noqa: F401  (same libraries loaded in both probes)
        torch.set_num_threads(_blas_threads())
    base_kb = _status_kb("VmRSS")
    if framework == "torch":
        step, _ = make_torch_step(model, batch)
    else:
        B.set_backend(backend)
        step, _ = make_tinyalex_step(model, batch, impl=impl)
    _memory_probe_steps(step, framework, backend, base_kb)


def _memory_probe_steps(step, framework, backend, base_kb):
    import resource

    step()
    B.synchronize()
    method = "VmHWM after clear_refs"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")           # reset the peak-RSS high-water mark
    except OSError:
        method = "ru_maxrss (whole process)"
    step()
    B.synchronize()
    if method.startswith("VmHWM"):
        peak_kb = _status_kb("VmHWM")
    else:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = dict(framework=framework, peak_bytes=(peak_kb - base_kb) * 1024, method=method)
    if framework == "tinyalex" and backend == "numpy":
        import tracemalloc

        tracemalloc.start()
        step()
        out["tracemalloc_step_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print("MEMORY " + json.dumps(out))


def measure_peak_memory(framework, model, batch, backend="numpy", import_torch=False, impl="fast"):
    code = (f"from tinyalex.bench import _memory_probe; "
            f"_memory_probe({framework!r}, {model!r}, {batch}, {backend!r}, {import_torch}, {impl!r})")
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    for line in r.stdout.splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[len("MEMORY "):])
    raise RuntimeError(f"memory probe for {framework} failed:\n{r.stderr[-2000:]}")


# --------------------------------------------------------------------------
# The whole bench
# --------------------------------------------------------------------------
def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(), numpy=numpy.__version__,
                platform=platform.platform(), load_average=list(os.getloadavg()),
                openblas_env={k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                         "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                              if k in os.environ})


def parse_layers(text, valid):
    """The layer names ``--layers`` asks for, out of ``valid`` (all for None, '' or 'all')."""
    if text in (None, "", "all"):
        return valid
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ValueError(f"--layers: unknown layer name(s) {bad or [text]}; valid names: {', '.join(valid)} "
                         "(or 'all')")
    return names


def run_bench(model="alexnet", batch=32, layers="all", repeats=5, warmup=2, backend="numpy", devices=(0,),
              dtype="float32", compare=None, step=True, memory=True, gemm_n=2048, impl="fast", threads=None,
              timer="wall", log=print):
    """Run the bench and return a JSON-ready dict (see ``tinyalex bench --help``)."""
    if impl not in IMPLS:
        raise ValueError(f"--impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    if timer not in TIMERS:
        raise ValueError(f"--timer must be one of {', '.join(TIMERS)}, got {timer!r}")
    if backend == "cupy" and timer == "cpu":
        raise ValueError("--timer cpu measures host CPU time; use --timer wall with --backend cupy")
    _timer["now"] = TIMERS[timer]
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    with _limit_threads(threads):
        return _run_bench(model, batch, layers, repeats, warmup, backend, devices, dtype, compare, step, memory,
                          gemm_n, impl, log)


@contextlib.contextmanager
def _limit_threads(n):
    """BLAS threads (threadpoolctl), tinyalex's elementwise threads and torch's, all set to n (None: leave)."""
    if n is None:
        yield
        return
    try:
        import threadpoolctl
    except ImportError:
        raise ValueError("--threads needs threadpoolctl: pip install threadpoolctl") from None
    old = os.environ.get("TINYALEX_THREADS")
    os.environ["TINYALEX_THREADS"] = str(n)
    try:
        with threadpoolctl.threadpool_limits(limits=n):
            yield
    finally:
        if old is None:
            os.environ.pop("TINYALEX_THREADS", None)
        else:
            os.environ["TINYALEX_THREADS"] = old


def _run_bench(model, batch, layers, repeats, warmup, backend, devices, dtype, compare, step, memory, gemm_n,
               impl, log):
    if model not in bench_model_names():
        raise ValueError(f"--model: unknown model {model!r}; valid: {', '.join(bench_model_names())}")
    if compare == "torch" and model not in MODELS and not model.startswith("alexnet"):
        raise ValueError(f"--compare torch builds AlexNet-structured twins only; drop --compare for {model!r}")
    if batch < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"--dtype must be float32 or float64, got {dtype!r}")
    if compare not in (None, "torch"):
        raise ValueError(f"--compare must be 'torch', got {compare!r}")
    dt = numpy.dtype(dtype)
    torch = _import_torch() if compare == "torch" else None
    if compare == "torch" and dtype != "float32":
        raise ValueError("--compare torch runs in float32 only; use --dtype float32")
    B.set_backend(backend, device=devices[0])      # raises BackendError (with install advice) if unusable
    B.check_devices(devices, backend)               # --devices 0,1 on a one-GPU machine: names the GPUs found
    specs = layer_specs(build_tinyalex_net(model, dt, impl=impl))   # the model's own layers, on this backend
    names = parse_layers(layers, list(specs))
    threads = _blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    res = OrderedDict()
    res["config"] = dict(model=model, batch_size=batch, layers=names, repeats=repeats, warmup=warmup,
                         backend=backend, devices=list(devices), dtype=dtype, compare=compare, impl=impl,
                         timer="cpu" if _timer["now"] is time.process_time else "wall")
    res["machine"] = _machine()
    res["blas"] = blas_info()
    res["threads"] = dict(numpy_blas=threads, tinyalex_elementwise=num_threads(),
                          torch=torch.get_num_threads() if torch is not None else None)
    if torch is not None:
        res["machine"]["torch"] = torch.__version__
    log(f"tinyalex bench: {model}, batch {batch}, {dtype}, backend {backend}, {impl} layers, "
        f"BLAS threads {threads}, elementwise threads {num_threads()}"
        + (f", torch threads {torch.get_num_threads()}" if torch is not None else ""))
    for info in res["blas"]:
        log("  BLAS: " + ", ".join(f"{k}={v}" for k, v in info.items()))

    rate = gemm_rate(gemm_n, dtype=dt)
    res["gemm"] = dict(n=gemm_n, flops_per_s=rate)
    log(f"  GEMM rate ({gemm_n}^3 {dtype} product): {rate / 1e9:.1f} GFLOP/s")

    rows = OrderedDict()
    hdr = f"{'layer':<7} {'forward ms':>11} {'fwd+bwd ms':>11}"
    if torch is not None:
        hdr += f" {'torch fwd':>10} {'torch f+b':>10} {'ratio fwd':>10} {'ratio f+b':>10}"
    log(hdr)
    for name in names:
        kind, a, shape, layer = specs[name]
        r = _bench_tinyalex_layer(layer, kind, shape, batch, dt, repeats, warmup)
        row = OrderedDict(kind=kind, input_shape=[batch] + list(shape), forward_s=r["forward"],
                          forward_backward_s=r["forward_backward"])
        line = f"{name:<7} {r['forward'] * 1e3:>11.2f} {r['forward_backward'] * 1e3:>11.2f}"
        if torch is not None:
            t = _bench_torch_layer(kind, a, shape, batch, repeats, warmup)
            row.update(torch_forward_s=t["forward"], torch_forward_backward_s=t["forward_backward"],
                       ratio_forward=r["forward"] / t["forward"],
                       ratio_forward_backward=r["forward_backward"] / t["forward_backward"])
            line += (f" {t['forward'] * 1e3:>10.2f} {t['forward_backward'] * 1e3:>10.2f}"
                     f" {row['ratio_forward']:>10.2f} {row['ratio_forward_backward']:>10.2f}")
        rows[name] = row
        log(line)
    res["layers"] = rows

    if step:
        flops, per = step_matmul_flops(build_tinyalex_net(model, dt, impl=impl), batch)
        stp, _ = make_tinyalex_step(model, batch, dt, devices=tuple(devices) if len(devices) == 2 else None,
                                    impl=impl)
        t = _median_time(stp, repeats, warmup, lambda: B.synchronize(devices))   # every device the step ran on
        floor = flops / rate
        s = OrderedDict(time_s=t, images_per_s=batch / t, matmul_flops=flops, floor_s=floor,
                        multiple_of_floor=t / floor)
        log(f"step    {t * 1e3:>11.1f} ms  {batch / t:.1f} images/s; matmul floor {floor * 1e3:.1f} ms "
            f"({flops / 1e9:.1f} GFLOP at {rate / 1e9:.1f} GFLOP/s): {t / floor:.2f}x the floor")
        if torch is not None:
            tstep, _ = make_torch_step(model, batch)
            tt = _median_time(tstep, repeats, warmup)
            s.update(torch_time_s=tt, torch_images_per_s=batch / tt, ratio=t / tt,
                     torch_multiple_of_floor=tt / floor)
            log(f"torch   {tt * 1e3:>11.1f} ms  {batch / tt:.1f} images/s: {tt / floor:.2f}x the floor; "
                f"ratio tinyalex/torch {t / tt:.2f}")
        res["step"] = s
    if memory and backend == "numpy":
        mem = OrderedDict(tinyalex=measure_peak_memory("tinyalex", model, batch, backend, torch is not None, impl))
        log(f"memory  tinyalex step peak {mem['tinyalex']['peak_bytes'] / 2 ** 20:.0f} MiB "
            f"({mem['tinyalex']['method']}; tracemalloc peak of the step's new allocations "
            f"{mem['tinyalex'].get('tracemalloc_step_peak_bytes', 0) / 2 ** 20:.0f} MiB)")
        if torch is not None:
            mem["torch"] = measure_peak_memory("torch", model, batch, backend, True)
            mem["ratio"] = mem["tinyalex"]["peak_bytes"] / mem["torch"]["peak_bytes"]
            log(f"memory  torch step peak {mem['torch']['peak_bytes'] / 2 ** 20:.0f} MiB; ratio {mem['ratio']:.2f}")
        res["memory"] = mem
    return res


# The targets of issue 5 (ratios tinyalex / torch, forward + backward; step time; memory; floor multiple)
TARGETS = {"conv": 1.3, "lrn": 0.5, "pool": 1.0, "step": 0.8, "memory": 1.5, "floor": 1.5}


def markdown(res):
    """The results as Markdown tables (per layer, step, memory), with each target met or not."""
    cmp = res["config"]["compare"] == "torch"
    lines = ["| layer | input | fwd ms | fwd+bwd ms |" + (" torch fwd ms | torch fwd+bwd ms | ratio fwd | "
                                                      "ratio fwd+bwd | target | met |" if cmp else ""),
             "|---|---|---:|---:|" + ("---:|---:|---:|---:|---:|---|" if cmp else "")]
    for name, row in res["layers"].items():
        line = (f"| {name} | {'x'.join(map(str, row['input_shape']))} | {row['forward_s'] * 1e3:.1f} | "
                f"{row['forward_backward_s'] * 1e3:.1f} |")
        if cmp:
            target = TARGETS.get(row.get("kind"))
            met = "" if target is None else ("yes" if row["ratio_forward_backward"] <= target else "**no**")
            line += (f" {row['torch_forward_s'] * 1e3:.1f} | {row['torch_forward_backward_s'] * 1e3:.1f} | "
                     f"{row['ratio_forward']:.2f} | {row['ratio_forward_backward']:.2f} | "
                     f"{'' if target is None else f'<= {target}'} | {met} |")
        lines.append(line)
    out = "\n".join(lines)
    st = res.get("step")
    if st:
        rows = ["", "| whole training step | value | target | met |", "|---|---:|---:|---|",
                f"| tinyalex step (ms) | {st['time_s'] * 1e3:.0f} | | |",
                f"| tinyalex images/s | {st['images_per_s']:.1f} | | |",
                f"| matmul FLOPs per step (G) | {st['matmul_flops'] / 1e9:.1f} | | |",
                f"| GEMM rate (GFLOP/s) | {res['gemm']['flops_per_s'] / 1e9:.1f} | | |",
                f"| floor (ms) | {st['floor_s'] * 1e3:.0f} | | |",
                f"| tinyalex step / floor | {st['multiple_of_floor']:.2f} | <= {TARGETS['floor']} | "
                f"{'yes' if st['multiple_of_floor'] <= TARGETS['floor'] else '**no**'} |"]
        if "ratio" in st:
            rows += [f"| torch step (ms) | {st['torch_time_s'] * 1e3:.0f} | | |",
                     f"| torch images/s | {st['torch_images_per_s']:.1f} | | |",
                     f"| torch step / floor | {st['torch_multiple_of_floor']:.2f} | | |",
                     f"| ratio tinyalex / torch | {st['ratio']:.2f} | <= {TARGETS['step']} | "
                     f"{'yes' if st['ratio'] <= TARGETS['step'] else '**no**'} |"]
        out += "\n" + "\n".join(rows)
    mem = res.get("memory")
    if mem:
        rows = ["", "| peak memory of a step | MiB | target | met |", "|---|---:|---:|---|",
                f"| tinyalex | {mem['tinyalex']['peak_bytes'] / 2 ** 20:.0f} | | |"]
        if "torch" in mem:
            rows += [f"| torch | {mem['torch']['peak_bytes'] / 2 ** 20:.0f} | | |",
                     f"| ratio | {mem['ratio']:.2f} | <= {TARGETS['memory']} | "
                     f"{'yes' if mem['ratio'] <= TARGETS['memory'] else '**no**'} |"]
        out += "\n" + "\n".join(rows)
    return out


def register_cli(subparsers):
    p = subparsers.add_parser(
        "bench", help="time every AlexNet layer and a training step (optionally against PyTorch)",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--model", default="alexnet", choices=bench_model_names(), help="network to time")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch")
    p.add_argument("--layers", default="all",
                   help="comma-separated names of the model's conv, LRN, pooling and fully connected layers "
                        "to time (e.g. conv1,lrn1,pool1,fc6; `tinyalex summary` lists them) or 'all'")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per row (the median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "standin"], help="array backend")
    p.add_argument("--devices", default="0", help="device numbers, e.g. 0,1")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="floating-point type")
    p.add_argument("--compare", default=None, choices=["torch"], help="also run PyTorch and print ratios")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results to this JSON file")
    p.add_argument("--markdown", action="store_true", help="also print the results as Markdown tables")
    p.add_argument("--no-step", action="store_true", help="skip the whole training step")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS, tinyalex's elementwise work and torch (default: BLAS's own count)")
    p.add_argument("--timer", default="wall", choices=sorted(TIMERS),
                   help="wall: elapsed time; cpu: CPU time of the process, all threads (robust to other load "
                        "with --threads 1)")
    p.add_argument("--impl", default="fast", choices=["fast", "reference"],
                   help="tinyalex layer implementations: the fast paths or the plain reference versions")
    p.add_argument("--count-ops", action="store_true",
                   help="with --backend standin: count the device operations and host synchronisations of one "
                        "training step instead of timing")
    p.add_argument("--quick", action="store_true",
                   help="1 repeat, no warm-up, a 512^3 GEMM: a smoke test, not a measurement")
    p.set_defaults(func=_cli_main)


def _cli_main(args):
    global SETTLE_S
    if args.quick:
        SETTLE_S = 0.0
    try:
        devices = parse_devices(args.devices)
        if args.count_ops:
            return _count_cli(args, devices)
        repeats, warmup, n = (1, 0, 512) if args.quick else (args.repeats, args.warmup, 2048)
        res = run_bench(model=args.model, batch=args.batch_size, layers=args.layers, repeats=repeats,
                        warmup=warmup, backend=args.backend, devices=devices, dtype=args.dtype,
                        compare=args.compare, step=not args.no_step, memory=not args.no_memory, gemm_n=n,
                        impl=args.impl, threads=args.threads, timer=args.timer)
    except (ValueError, B.BackendError) as exc:
        print(f"tinyalex bench: error: {exc}", file=sys.stderr)
        return 2
    if args.markdown:
        print(markdown(res))
    _write_json(args, res)
    return 0


def _count_cli(args, devices):
    if args.backend != "standin":
        raise ValueError("--count-ops counts on the CPU stand-in; add --backend standin")
    with B.use_backend("standin", devices[0]):
        step, _ = make_tinyalex_step(args.model, args.batch_size, numpy.dtype(args.dtype),
                                     devices=tuple(devices) if len(devices) == 2 else None, impl=args.impl)
        res = OrderedDict(model=args.model, batch_size=args.batch_size, devices=list(devices), impl=args.impl)
        res.update(count_step(step))
    print(f"{args.model}, batch {args.batch_size}, devices {args.devices}: {res['device_ops_per_step']} device "
          f"operations and {res['host_syncs_per_step']} host synchronisations per training step")
    print("  most frequent: " + ", ".join(f"{k} {v}" for k, v in res["top_ops"].items()))
    _write_json(args, res)
    return 0


def _write_json(args, res):
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
        print(f"results written to {args.json}")
