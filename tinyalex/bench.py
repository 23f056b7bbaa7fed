"""``tinyalex bench``: how fast is a model's training step, and each of its layers?

For every model ``train`` builds (``tinyalex.models.model_names()``) the bench
times a whole training step (forward, loss, backward, SGD update with momentum
0.9 and weight decay 5e-4) at a chosen batch size and reports images/s, the
step's multiple of its matrix-product floor and peak memory; for every conv,
LRN, pooling and fully connected layer (the model's own layer objects, with
their input shapes read off the model) it times ``forward`` and ``forward +
backward``. ``--framework torch`` runs the same network, built layer by layer
as a PyTorch twin, instead.

``--compare torch`` runs tinyalex and the PyTorch twin each in its own fresh
process (``python -m tinyalex bench --framework tinyalex|torch --json ...``),
alternating for ``--rounds`` rounds, and reports each side's median and
spread (min-max) over the rounds and the ratio of medians tinyalex / PyTorch
(below 1: tinyalex is faster); the JSON keeps every round. Separate processes,
because in one process OpenBLAS's and PyTorch's thread pools spin on the same
cores after their work, and whichever framework runs second loses time to the
other's spinning threads.

Times within a run are medians over ``--repeats`` runs after ``--warmup`` runs.

The floor
---------
A training step cannot be faster than its matrix products: the bench counts
the multiply-adds of every convolution and fully connected layer (forward,
weight gradient, input gradient; the first layer needs no input gradient),
measures this machine's GEMM rate with one large float32 NumPy product, and
reports ``step time / (FLOPs / GEMM rate)``, the step's multiple of the floor.
The FLOPs are those of the direct (im2col) convolution, the issue's
definition. The Winograd convolutions (``tinyalex/fast/winograd.py``) do fewer
multiplications than that, so with them the floor is a yardstick, no longer a
hard limit.

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

    python -m tinyalex bench --model alexnet-small --batch-size 64
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m tinyalex bench --model alexnet-small \\
        --batch-size 64 --compare torch --rounds 3 --json bench.json
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import OrderedDict

import numpy
import threadpoolctl

from . import backend as B
from . import standin
from .cli import parse_devices
from .fast.cpu import num_threads
from .fast.replicas import replicas_for, step_runner
from .fileio import atomic_write_text
from .layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, SoftmaxCrossEntropy
from .layers.conv import conv_output_size
from .models import MODELS, build_model, model_names
from .models.net import multiply_adds
from .train.sgd import SGD
from .train.distributed import bench_distributed, format_scaling_table, scaling_table

IMPLS = ("fast", "reference")       # --impl: the fast classes (tinyalex/fast) or the reference ones (tinyalex/layers)
FRAMEWORKS = ("tinyalex", "torch")  # --framework: what one bench process runs

__all__ = ["bench_models", "layer_names", "run_bench", "gemm_rate", "step_matmul_flops", "blas_info",
           "register_cli"]

# --------------------------------------------------------------------------
# The networks: built by tinyalex.models.build_model; the bench reads the layers
# it times, their arguments and their input shapes off the model.
# --------------------------------------------------------------------------
TEST_MODELS = {
    # alexnet's structure (11x11 stride-4 conv1, LRN, 3/2 pools) with few channels on 67x67 inputs
    # (conv1 15x15 ... pool5 1x1): the bench's own net for tests, not one that `train` builds
    "tiny": dict(name="alexnet", num_classes=10, input_shape=(3, 67, 67), channels=(16, 32, 48, 48, 32),
                 fc_sizes=(64, 64), init="paper"),
}


def bench_models():
    """The models the bench times: every model ``train`` builds (tinyalex.models.model_names()),
    then the bench's own tiny test net."""
    return list(model_names()) + list(TEST_MODELS)


def _has_torch_twin(model):
    """The PyTorch twin mirrors AlexNet's layer kinds: AlexNet and its variants (and the test net) have one."""
    return model in TEST_MODELS or MODELS.get(model) in {MODELS[n] for n in ("alexnet", "alexnet-small",
                                                                             "alexnet-cifar")}


def check_model(model):
    """Raise ValueError listing the valid names if ``model`` is not one the bench can build."""
    if model not in bench_models():
        raise ValueError(f"--model: unknown model {model!r}; choose one of {', '.join(bench_models())}")


KINDS = ((Conv2D, "conv"), (LRN, "lrn"), (MaxPool2D, "pool"), (Linear, "fc"))
"""The timed layers: each model layer that is (or, for LRN, wraps) one of these classes."""


def build_tinyalex_net(model="alexnet", dtype=numpy.float32, seed=0, devices=None, impl="fast"):
    """The network the bench times (tinyalex.models.build_model, with the model's own
    initialization): one device with grouped convolutions, or (``devices=(d0, d1)``) the two
    towers of section 3.2 on two devices; ``impl`` "fast" builds it from the fast classes,
    "reference" from tinyalex/layers."""
    if impl not in IMPLS:
        raise ValueError(f"--impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    check_model(model)
    kw = dict(TEST_MODELS.get(model, {"name": model}))
    return build_model(kw.pop("name"), seed=seed, dtype=dtype, devices=devices, fast=impl == "fast", **kw)


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
    every timed layer of ``net`` (a built model, or a name in bench_models()), in the model's order.

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
    layer 2*N*in*out, three times. ``model``: a name in bench_models() or a built net.
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
    """The same network in torch, layer by layer from the tinyalex model (a name in bench_models()
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
    net = build_tinyalex_net(model, dtype, seed, devices, impl)
    net.requires_input_grad(False)   # like torch: no gradient for the input data
    net.train()
    rng = numpy.random.default_rng(seed + 1)
    x = B.asarray(rng.standard_normal((batch,) + tuple(net.input_shape)).astype(dtype))
    y = B.asarray(rng.integers(0, net.num_classes, batch))
    lossf = SoftmaxCrossEntropy(dtype=dtype)
    opt = SGD(net, lr=0.01, momentum=0.9, weight_decay=5e-4)
    runner = step_runner(net)        # as the trainer: on a multi-core CPU, the batch split over thread replicas

    def step():
        logits = runner.forward(x)
        loss = lossf.forward(logits, y)
        runner.backward(lossf.backward())
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
    """What NumPy's matrix products run on (threadpoolctl)."""
    keep = ("user_api", "internal_api", "version", "architecture", "corename", "num_threads", "threading_layer",
            "prefix")
    return [{k: v for k, v in info.items() if k in keep} for info in threadpoolctl.threadpool_info()]


def _blas_threads():
    n = [i.get("num_threads") for i in blas_info() if i.get("user_api") == "blas" and i.get("num_threads")]
    return n[0] if n else os.cpu_count()


TORCH_MISSING = ("{option} needs PyTorch, which is not installed. Install it with `pip install torch` "
                 "(it is optional: tinyalex never needs it), or leave out {option}.")


def _import_torch(option="--compare torch"):
    try:
        import torch
    except ImportError:
        raise ValueError(TORCH_MISSING.format(option=option)) from None
    return torch


def _torch_installed():
    """Whether ``import torch`` can work, without importing it (and starting its threads) here."""
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:          # a half-imported torch in sys.modules
        return False


def _child_env():
    """The environment of a fresh bench process: this one's, with this copy of tinyalex first on the path."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


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
        tracemalloc.start()
        step()
        out["tracemalloc_step_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print("MEMORY " + json.dumps(out))


def measure_peak_memory(framework, model, batch, backend="numpy", import_torch=False, impl="fast"):
    code = (f"from tinyalex.bench import _memory_probe; "
            f"_memory_probe({framework!r}, {model!r}, {batch}, {backend!r}, {import_torch}, {impl!r})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env())
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
    """The layer names ``--layers`` asks for, out of ``valid`` (all for None, '' or 'all'; none for 'none')."""
    if text in (None, "", "all"):
        return valid
    if text == "none":
        return []
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ValueError(f"--layers: unknown layer name(s) {bad or [text]}; valid names: {', '.join(valid)} "
                         "(or 'all', or 'none' for the step alone)")
    return names


def run_bench(model="alexnet", batch=32, layers="all", repeats=5, warmup=2, backend="numpy", devices=(0,),
              dtype="float32", compare=None, step=True, memory=True, gemm_n=2048, impl="fast", threads=None,
              timer="wall", framework="tinyalex", rounds=3, quick=False, log=print):
    """Run the bench and return a JSON-ready dict (see ``tinyalex bench --help``).

    ``framework``: what this process times, "tinyalex" or "torch" (the PyTorch twin).
    ``compare="torch"``: instead, run both, each in its own fresh process, alternating for
    ``rounds`` rounds (``quick`` is passed on to them); see :func:`compare_in_processes`.
    """
    _check_arguments(model, batch, repeats, warmup, dtype, impl, timer, backend, threads, framework)
    if compare not in (None, "torch"):
        raise ValueError(f"--compare must be 'torch', got {compare!r}")
    if compare == "torch" and not _has_torch_twin(model):
        raise ValueError(f"--compare torch builds AlexNet-structured twins only; drop --compare for {model!r}")
    if compare == "torch":
        return compare_in_processes(model, batch, layers, repeats, warmup, dtype, step, memory, gemm_n, impl,
                                    threads, timer, rounds, quick, backend, devices, framework, log)
    _timer["now"] = TIMERS[timer]
    with _limit_threads(threads):
        return _run_one(framework, model, batch, layers, repeats, warmup, backend, devices, dtype, step, memory,
                        gemm_n, impl, log)


def _check_arguments(model, batch, repeats, warmup, dtype, impl, timer, backend, threads, framework):
    """Refuse bad options with a one-line message naming the option (before any work starts)."""
    check_model(model)
    if framework not in FRAMEWORKS:
        raise ValueError(f"--framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if batch < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"--dtype must be float32 or float64, got {dtype!r}")
    if impl not in IMPLS:
        raise ValueError(f"--impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    if timer not in TIMERS:
        raise ValueError(f"--timer must be one of {', '.join(TIMERS)}, got {timer!r}")
    if backend == "cupy" and timer == "cpu":
        raise ValueError("--timer cpu measures host CPU time; use --timer wall with --backend cupy")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    if framework == "torch":
        if backend != "numpy":
            raise ValueError("--framework torch runs PyTorch on the CPU; leave out --backend (numpy)")
        if dtype != "float32":
            raise ValueError("the PyTorch twin runs in float32 only; use --dtype float32")


@contextlib.contextmanager
def _limit_threads(n):
    """BLAS threads (threadpoolctl), tinyalex's elementwise threads and torch's, all set to n (None: leave)."""
    if n is None:
        yield
        return
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


def _run_one(framework, model, batch, layers, repeats, warmup, backend, devices, dtype, step, memory, gemm_n,
             impl, log):
    """One framework in this process: GEMM rate, per-layer rows, the step, peak memory (fresh process)."""
    dt = numpy.dtype(dtype)
    torch = _import_torch("--framework torch") if framework == "torch" else None
    B.set_backend(backend, device=devices[0])      # raises BackendError (with install advice) if unusable
    B.check_devices(devices, backend)               # --devices 0,1 on a one-GPU machine: names the GPUs found
    net = build_tinyalex_net(model, dt, impl=impl)  # the model's own layers, on this backend
    specs = layer_specs(net)
    names = parse_layers(layers, list(specs))
    threads = _blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    res = OrderedDict()
    res["config"] = dict(model=model, framework=framework, batch_size=batch, layers=names, repeats=repeats,
                         warmup=warmup, backend=backend, devices=list(devices), dtype=dtype, compare=None,
                         impl=impl if framework == "tinyalex" else None,
                         timer="cpu" if _timer["now"] is time.process_time else "wall")
    res["machine"] = _machine()
    res["machine"].update(pid=os.getpid(), torch_loaded="torch" in sys.modules)   # which process, what it loaded
    res["blas"] = blas_info()
    replicas = replicas_for(net) if framework == "tinyalex" else 1
    res["threads"] = dict(numpy_blas=threads, tinyalex_elementwise=num_threads(), step_replicas=replicas,
                          torch=torch.get_num_threads() if torch is not None else None)
    if torch is not None:
        res["machine"]["torch"] = torch.__version__
    what = f"{impl} layers" if framework == "tinyalex" else f"PyTorch {torch.__version__} twin"
    log(f"tinyalex bench: {model}, batch {batch}, {dtype}, backend {backend}, {what}, "
        f"BLAS threads {threads}, elementwise threads {num_threads()}"
        + (f", step split over {replicas} thread replicas" if replicas > 1 else "")
        + (f", torch threads {torch.get_num_threads()}" if torch is not None else ""))
    for info in res["blas"]:
        log("  BLAS: " + ", ".join(f"{k}={v}" for k, v in info.items()))

    rate = gemm_rate(gemm_n, dtype=dt)
    res["gemm"] = dict(n=gemm_n, flops_per_s=rate)
    log(f"  GEMM rate ({gemm_n}^3 {dtype} NumPy product): {rate / 1e9:.1f} GFLOP/s")

    rows = OrderedDict()
    if names:
        log(f"{'layer':<7} {'forward ms':>11} {'fwd+bwd ms':>11}")
    for name in names:
        kind, a, shape, layer = specs[name]
        if framework == "torch":
            r = _bench_torch_layer(kind, a, shape, batch, repeats, warmup)
        else:
            r = _bench_tinyalex_layer(layer, kind, shape, batch, dt, repeats, warmup)
        rows[name] = OrderedDict(kind=kind, input_shape=[batch] + list(shape), forward_s=r["forward"],
                                 forward_backward_s=r["forward_backward"])
        log(f"{name:<7} {r['forward'] * 1e3:>11.2f} {r['forward_backward'] * 1e3:>11.2f}")
    res["layers"] = rows

    if step:
        flops, _ = step_matmul_flops(net, batch)
        del net, specs
        if framework == "torch":
            stp, _ = make_torch_step(model, batch)
            t = _median_time(stp, repeats, warmup)
        else:
            stp, _ = make_tinyalex_step(model, batch, dt, devices=tuple(devices) if len(devices) == 2 else None,
                                        impl=impl)
            t = _median_time(stp, repeats, warmup, lambda: B.synchronize(devices))   # every device it ran on
        floor = flops / rate
        res["step"] = OrderedDict(time_s=t, images_per_s=batch / t, matmul_flops=flops, floor_s=floor,
                                  multiple_of_floor=t / floor)
        log(f"step    {t * 1e3:>11.1f} ms  {batch / t:.1f} images/s; matmul floor {floor * 1e3:.1f} ms "
            f"({flops / 1e9:.1f} GFLOP at {rate / 1e9:.1f} GFLOP/s): {t / floor:.2f}x the floor")
    if memory and backend == "numpy":
        mem = measure_peak_memory(framework, model, batch, backend, framework == "torch", impl)
        res["memory"] = OrderedDict([(framework, mem)])
        log(f"memory  {framework} step peak {mem['peak_bytes'] / 2 ** 20:.0f} MiB ({mem['method']})")
    res["machine"]["load_average_end"] = list(os.getloadavg())
    res["targets"] = targets(model)
    return res


# --------------------------------------------------------------------------
# tinyalex against PyTorch: each in its own fresh process, alternating
# --------------------------------------------------------------------------
def compare_in_processes(model="alexnet", batch=32, layers="all", repeats=5, warmup=2, dtype="float32", step=True,
                         memory=True, gemm_n=2048, impl="fast", threads=None, timer="wall", rounds=3, quick=False,
                         backend="numpy", devices=(0,), framework="tinyalex", log=print):
    """tinyalex and the PyTorch twin, each timed in a fresh ``python -m tinyalex bench --framework ...``
    process, tinyalex first in every round, for ``rounds`` rounds; then each framework's peak
    memory (fresh processes that both import torch). Returns the JSON-ready dict: per side the
    median and spread of the step over the rounds and the ratio of medians, per layer the ratio of
    the medians, and every round's own results under ``rounds``.

    Why processes: in one process, OpenBLAS's and PyTorch's thread pools spin on the same cores
    after their work, and the framework timed second loses time to the first one's threads."""
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1 (rounds of tinyalex and PyTorch runs), got {rounds}")
    if framework != "tinyalex":
        raise ValueError("--compare torch runs both frameworks; leave out --framework")
    if backend != "numpy" or tuple(devices) != (0,):
        raise ValueError("--compare torch compares on the CPU; leave out --backend and --devices")
    if dtype != "float32":
        raise ValueError("--compare torch runs in float32 only; use --dtype float32")
    if not _torch_installed():
        raise ValueError(TORCH_MISSING.format(option="--compare torch"))
    names = parse_layers(layers, layer_names(model))
    res = OrderedDict()
    res["config"] = dict(model=model, batch_size=batch, layers=names, repeats=repeats, warmup=warmup,
                         backend="numpy", devices=[0], dtype=dtype, compare="torch", rounds=rounds, impl=impl,
                         threads=threads, timer=timer, quick=quick, method="one fresh process per framework "
                                                                         "and round, alternating")
    res["machine"] = _machine()
    res["blas"] = blas_info()
    log(f"tinyalex bench: {model}, batch {batch}, tinyalex ({impl} layers) against PyTorch, each in its own "
        f"process, {rounds} round(s); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="tinyalex-bench-") as tmp:
        for r in range(1, rounds + 1):
            for fw in FRAMEWORKS:
                argv = _child_argv(fw, model, batch, names, repeats, warmup, dtype, step, gemm_n, impl, threads,
                                   timer, quick, os.path.join(tmp, f"{fw}-{r}.json"))
                one = _run_child(fw, r, argv)
                runs.append(OrderedDict(round=r, framework=fw, result=one))
                st = one.get("step")
                log(f"  round {r}/{rounds} {fw:<8}: " + (f"step {st['time_s'] * 1e3:.1f} ms, "
                                                        f"{st['images_per_s']:.1f} images/s" if st else "done")
                    + f" (load {os.getloadavg()[0]:.2f})")
    res["rounds"] = runs
    first = {fw: next(x["result"] for x in runs if x["framework"] == fw) for fw in FRAMEWORKS}
    res["threads"] = dict(first["tinyalex"]["threads"], torch=first["torch"]["threads"]["torch"])
    res["machine"]["torch"] = first["torch"]["machine"].get("torch")
    rates = [x["result"]["gemm"]["flops_per_s"] for x in runs]
    res["gemm"] = dict(n=gemm_n, flops_per_s=statistics.median(rates), rounds=rates)
    res["layers"] = _compare_layers(runs, names)
    if step:
        res["step"] = _compare_step(runs, batch, res["gemm"]["flops_per_s"])
        _log_compare_step(res["step"], rounds, log)
    if memory:
        mem = OrderedDict((fw, measure_peak_memory(fw, model, batch, "numpy", True, impl)) for fw in FRAMEWORKS)
        mem["ratio"] = mem["tinyalex"]["peak_bytes"] / mem["torch"]["peak_bytes"]
        res["memory"] = mem
        log(f"memory  step peak tinyalex {mem['tinyalex']['peak_bytes'] / 2 ** 20:.0f} MiB, torch "
            f"{mem['torch']['peak_bytes'] / 2 ** 20:.0f} MiB: ratio {mem['ratio']:.2f}")
    res["machine"]["load_average_end"] = list(os.getloadavg())
    res["targets"] = targets(model)
    return res


def _child_argv(framework, model, batch, names, repeats, warmup, dtype, step, gemm_n, impl, threads, timer, quick,
                json_path):
    argv = [sys.executable, "-m", "tinyalex", "bench", "--framework", framework, "--model", model,
            "--batch-size", str(batch), "--layers", ",".join(names) or "none", "--dtype", dtype, "--impl", impl,
            "--timer", timer, "--no-memory", "--json", json_path]
    argv += ["--quick"] if quick else ["--repeats", str(repeats), "--warmup", str(warmup), "--gemm-size", str(gemm_n)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if not step:
        argv.append("--no-step")
    return argv


def _run_child(framework, rnd, argv):
    """Run one bench process; its results (JSON), or ValueError with the last line it printed to stderr."""
    r = subprocess.run(argv, capture_output=True, text=True, env=_child_env())
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no error message)"])[-1]
        raise ValueError(f"the {framework} run of round {rnd} failed (exit status {r.returncode}): {last}")
    with open(argv[argv.index("--json") + 1]) as f:
        return json.load(f)


def _spread(values):
    return dict(median=statistics.median(values), min=min(values), max=max(values))


def _compare_layers(runs, names):
    """Per layer: each side's median forward and forward+backward over the rounds, and their ratios."""
    rows = OrderedDict()
    for name in names:
        side = {fw: [x["result"]["layers"][name] for x in runs if x["framework"] == fw] for fw in FRAMEWORKS}
        row = OrderedDict(kind=side["tinyalex"][0]["kind"], input_shape=side["tinyalex"][0]["input_shape"])
        for key in ("forward_s", "forward_backward_s"):
            row[key] = statistics.median(r[key] for r in side["tinyalex"])
            row["torch_" + key] = statistics.median(r[key] for r in side["torch"])
        row["ratio_forward"] = row["forward_s"] / row["torch_forward_s"]
        row["ratio_forward_backward"] = row["forward_backward_s"] / row["torch_forward_backward_s"]
        rows[name] = row
    return rows


def _compare_step(runs, batch, rate):
    """Each side's step: median, min and max over the rounds; the ratio of the medians tinyalex / torch."""
    t = _spread([x["result"]["step"]["time_s"] for x in runs if x["framework"] == "tinyalex"])
    tt = _spread([x["result"]["step"]["time_s"] for x in runs if x["framework"] == "torch"])
    flops = runs[0]["result"]["step"]["matmul_flops"]
    floor = flops / rate
    return OrderedDict(time_s=t["median"], time_min_s=t["min"], time_max_s=t["max"], images_per_s=batch / t["median"],
                       torch_time_s=tt["median"], torch_time_min_s=tt["min"], torch_time_max_s=tt["max"],
                       torch_images_per_s=batch / tt["median"], ratio=t["median"] / tt["median"],
                       matmul_flops=flops, floor_s=floor, multiple_of_floor=t["median"] / floor,
                       torch_multiple_of_floor=tt["median"] / floor)


def _log_compare_step(st, rounds, log):
    for who, key in (("tinyalex", ""), ("torch", "torch_")):
        log(f"{who:<8} step median {st[key + 'time_s'] * 1e3:.1f} ms (min {st[key + 'time_min_s'] * 1e3:.1f}, "
            f"max {st[key + 'time_max_s'] * 1e3:.1f}) over {rounds} round(s): {st[key + 'images_per_s']:.1f} "
            f"images/s, {st[key + 'multiple_of_floor']:.2f}x the matmul floor ({st['floor_s'] * 1e3:.1f} ms)")
    log(f"ratio of medians tinyalex / torch: {st['ratio']:.2f} (tinyalex runs {1 / st['ratio']:.2f}x "
        f"PyTorch's images/s)")


# --------------------------------------------------------------------------
# Targets and the Markdown tables
# --------------------------------------------------------------------------
# Per layer kind, the most tinyalex / torch may take for forward + backward (issue 5, kept by issue 12).
LAYER_TARGETS = {"conv": 1.3, "lrn": 0.5, "pool": 1.0}
# Per model (issue 12): the step's time ratio tinyalex / torch ("step": 0.5 is twice PyTorch's
# images/s), its multiple of the matmul floor, the peak-memory ratio. Models not named have none.
STEP_TARGETS = {
    "alexnet": dict(step=0.7, floor=1.5, memory=1.5),
    "alexnet-small": dict(step=0.5, floor=3.0, memory=1.5),
    "alexnet-cifar": dict(step=0.5, floor=3.0, memory=1.5),
}


def targets(model):
    """The targets that apply to ``model``'s rows (per layer kind, and step, floor, memory)."""
    canonical = next((name for name, make in MODELS.items() if make is MODELS.get(model)), model)  # alexnet-fmnist
    return dict(LAYER_TARGETS, **STEP_TARGETS.get(canonical, {}))


def _met(value, target):
    if target is None:
        return "| | |"
    return f"| <= {target} | {'yes' if value <= target else '**no**'} |"


def markdown(res):
    """The results as Markdown tables (per layer, step, memory), with each target met or not."""
    cmp = res["config"]["compare"] == "torch"
    tg = res.get("targets") or targets(res["config"]["model"])
    out = []
    if res["layers"]:
        out += ["| layer | input | fwd ms | fwd+bwd ms |" + (" torch fwd ms | torch fwd+bwd ms | ratio fwd | "
                                                           "ratio fwd+bwd | target | met |" if cmp else ""),
                "|---|---|---:|---:|" + ("---:|---:|---:|---:|---:|---|" if cmp else "")]
    for name, row in res["layers"].items():
        line = (f"| {name} | {'x'.join(map(str, row['input_shape']))} | {row['forward_s'] * 1e3:.1f} | "
                f"{row['forward_backward_s'] * 1e3:.1f} |")
        if cmp:
            line += (f" {row['torch_forward_s'] * 1e3:.1f} | {row['torch_forward_backward_s'] * 1e3:.1f} | "
                     f"{row['ratio_forward']:.2f} | {row['ratio_forward_backward']:.2f} "
                     + _met(row["ratio_forward_backward"], tg.get(row["kind"])))
        out.append(line)
    st = res.get("step")
    if st:
        def ms(key):
            if key.replace("time_s", "time_min_s") in st:
                lo, hi = st[key.replace("time_s", "time_min_s")], st[key.replace("time_s", "time_max_s")]
                return f"{st[key] * 1e3:.0f} ({lo * 1e3:.0f}-{hi * 1e3:.0f})"
            return f"{st[key] * 1e3:.0f}"
        rounds = res["config"].get("rounds")
        out += ["", "| whole training step" + (f" (median (min-max) of {rounds} rounds)" if cmp else "")
                + " | value | target | met |", "|---|---:|---:|---|",
                f"| tinyalex step (ms) | {ms('time_s')} | | |",
                f"| tinyalex images/s | {st['images_per_s']:.1f} | | |",
                f"| matmul FLOPs per step (G) | {st['matmul_flops'] / 1e9:.2f} | | |",
                f"| GEMM rate (GFLOP/s) | {res['gemm']['flops_per_s'] / 1e9:.1f} | | |",
                f"| floor (ms) | {st['floor_s'] * 1e3:.1f} | | |",
                f"| tinyalex step / floor | {st['multiple_of_floor']:.2f} " + _met(st["multiple_of_floor"],
                                                                                 tg.get("floor"))]
        if "ratio" in st:
            out += [f"| torch step (ms) | {ms('torch_time_s')} | | |",
                    f"| torch images/s | {st['torch_images_per_s']:.1f} | | |",
                    f"| torch step / floor | {st['torch_multiple_of_floor']:.2f} | | |",
                    f"| ratio tinyalex / torch (step time) | {st['ratio']:.2f} " + _met(st["ratio"], tg.get("step"))]
    mem = res.get("memory")
    if mem:
        out += ["", "| peak memory of a step | MiB | target | met |", "|---|---:|---:|---|"]
        out += [f"| {fw} | {mem[fw]['peak_bytes'] / 2 ** 20:.0f} | | |" for fw in FRAMEWORKS if fw in mem]
        if "ratio" in mem:
            out.append(f"| ratio | {mem['ratio']:.2f} " + _met(mem["ratio"], tg.get("memory")))
    return "\n".join(out).lstrip("\n")


def register_cli(subparsers):
    p = subparsers.add_parser(
        "bench", help="time a model's training step and layers (optionally against PyTorch)",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--model", default="alexnet",
                   help=f"network to time: {', '.join(bench_models())} (tiny: the bench's test net)")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch")
    p.add_argument("--layers", default="all",
                   help="comma-separated names of the model's conv, LRN, pooling and fully connected layers "
                        "to time (e.g. conv1,lrn1,pool1,fc6; `tinyalex summary` lists them), 'all', or 'none' "
                        "(the step alone)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per row (the median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "standin"], help="array backend")
    p.add_argument("--devices", default="0", help="device numbers, e.g. 0,1")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="floating-point type")
    p.add_argument("--framework", default="tinyalex", choices=list(FRAMEWORKS),
                   help="what this process times: tinyalex, or the PyTorch twin of the same network")
    p.add_argument("--compare", default=None, choices=["torch"],
                   help="time tinyalex and PyTorch, each in its own fresh process, alternating for --rounds "
                        "rounds; print each side's median and spread and the ratio of medians")
    p.add_argument("--rounds", type=int, default=3, help="with --compare: rounds of one tinyalex and one PyTorch "
                                                         "process")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results to this JSON file")
    p.add_argument("--markdown", action="store_true", help="also print the results as Markdown tables")
    p.add_argument("--no-step", action="store_true", help="skip the whole training step")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS, tinyalex's elementwise work and torch (default: BLAS's own count)")
    p.add_argument("--timer", default="wall", choices=sorted(TIMERS),
                   help="wall: elapsed time; cpu: CPU time of the process, all threads (robust to other load "
                        "with --threads 1)")
    p.add_argument("--impl", default="fast", choices=list(IMPLS),
                   help="tinyalex layer implementations: the fast paths or the plain reference versions")
    p.add_argument("--gemm-size", type=int, default=2048, metavar="N",
                   help="the N x N x N float32 product that measures the GEMM rate (the floor's yardstick)")
    p.add_argument("--count-ops", action="store_true",
                   help="with --backend standin: count the device operations and host synchronisations of one "
                        "training step instead of timing")
    p.add_argument("--distributed", action="store_true",
                   help="time data-parallel training steps under an MPI launcher (mpiexec -n P python -m tinyalex "
                        "bench --distributed ...): images/s over all ranks, time in the gradient allreduce; "
                        "--batch-size is the global batch, --repeats the timed steps")
    p.add_argument("--scaling", action="store_true",
                   help="print the data-parallel scaling model of --model (gradient bytes per step, ring-allreduce "
                        "times at 10/25/100 Gb/s, FLOPs per gradient byte per layer), computed from the model; "
                        "--batch-size is the batch per rank")
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
        if args.scaling:
            net = build_model(args.model)
            res = scaling_table(net, net.input_shape, batch_per_rank=args.batch_size)
            print(format_scaling_table(res))
            _write_json(args, res)
            return 0
        if args.distributed:
            res = bench_distributed(args.model, args.batch_size, steps=1 if args.quick else args.repeats,
                                    warmup=0 if args.quick else args.warmup)
            if res.pop("is_root"):
                _write_json(args, res)
            return 0
        if args.gemm_size < 1:
            raise ValueError(f"--gemm-size must be at least 1, got {args.gemm_size}")
        repeats, warmup, n = (1, 0, 512) if args.quick else (args.repeats, args.warmup, args.gemm_size)
        res = run_bench(model=args.model, batch=args.batch_size, layers=args.layers, repeats=repeats,
                        warmup=warmup, backend=args.backend, devices=devices, dtype=args.dtype,
                        compare=args.compare, step=not args.no_step, memory=not args.no_memory, gemm_n=n,
                        impl=args.impl, threads=args.threads, timer=args.timer, framework=args.framework,
                        rounds=args.rounds, quick=args.quick)
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
