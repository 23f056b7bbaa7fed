"""ThreadReplicas: one training step on several CPU cores, as data parallelism over threads.

Why. OpenBLAS splits the small, skinny matrix products of the small nets'
convolutions poorly over two threads: on the 2-core build machine one
process with two threads trained alexnet-small at 811 images/s, two MPI
ranks with one thread each at 1,172 (docs/performance.md,
docs/distributed.md). This class does inside one process what the two
ranks do::

    batch x (N, C, H, W)
      |-- x[0:N/2]  -> the model          (thread 1: 1 BLAS thread) --> logits[0:N/2]
      '-- x[N/2:N]  -> a copy of it       (thread 2: 1 BLAS thread) --> logits[N/2:N]

Each copy (a *replica*) has its own layers, caches and gradients but the
model's very parameter dicts, so it always computes with the model's
current weights (SGD updates them in place; ``load_state_dict`` too).
NumPy and OpenBLAS release the GIL inside their loops, so the threads run
on separate cores; within a replica tinyalex's own elementwise threads
(``fast/cpu.py``) are off.

The math is the model's, unchanged. Every layer it is used for treats the
images of a batch independently (no batch norm: :func:`step_runner` refuses
models with one), and the loss's gradient dL/dlogits is already divided by
the whole batch's N, so for every parameter w::

    dL/dw = sum over slices s of (dL/dw computed by the replica on slice s)

which :meth:`backward` adds into the model's own ``grads`` (the replicas
differ from one whole-batch pass only in the order of float additions).
Dropout draws its masks per slice: replica 0 is the model itself, with the
trainer's generator; replica k > 0 gets, at every training forward, a
generator seeded by a draw from the model's own, so a run stays
reproducible and resumable from its checkpoint.

    runner = step_runner(model)      # ThreadReplicas(model, 2) on 2 cores, or the model itself
    logits = runner.forward(x)
    runner.backward(loss.backward()) # the model's grads now hold the batch's gradient
    SGD(model).step()
"""
from __future__ import annotations

import copy
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy
import threadpoolctl

from ..backend import DeviceGenerators, get_array_module
from ..layers import BatchNorm, Dropout
from .cpu import in_chunks, num_threads, single_thread

__all__ = ["ThreadReplicas", "step_runner", "replicas_for", "replica_count"]


def replica_count():
    """How many slices a CPU step is cut into: TINYALEX_REPLICAS, else tinyalex's thread count."""
    env = os.environ.get("TINYALEX_REPLICAS", "").strip()
    if not env:
        return num_threads()
    if not env.isdigit() or int(env) < 1:
        raise ValueError(f"TINYALEX_REPLICAS must be a positive integer (1: no replicas), got {env!r}")
    return int(env)


_pools = {"lock": threading.Lock()}      # (pid, n) -> the process's pool of n replica threads, shared by all runners


def _pool(n):
    """The pool that runs the replicas: one per process and size, made again after a fork."""
    key = (os.getpid(), n)
    with _pools["lock"]:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tinyalex-replica")
        return _pools[key]


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries NumPy loaded, or None when it knows none of them.

    Found once per process (NumPy loads its BLAS when it is imported, before this runs)."""
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else None


def replicas_for(model, replicas=None):
    """How many replicas :func:`step_runner` splits ``model``'s step over (1: none).

    Replicas only where they compute exactly the model's step and can be
    faster: NumPy arrays, the fast layers (a model built with ``fast=False``
    runs the reference classes as written), n = :func:`replica_count` of at
    least 2, no batch norm, and a BLAS threadpoolctl can set to one thread.
    """
    n = replica_count() if replicas is None else int(replicas)
    params = model.parameters()
    if (n < 2 or not getattr(model, "config", {}).get("fast", False)
            or not params or any(get_array_module(p) is not numpy for p in params)
            or any(isinstance(layer, BatchNorm) for _, layer in model.named_layers())
            or _blas_controller() is None):
        return 1
    return n


def step_runner(model, replicas=None):
    """What runs a training step's forward and backward: ThreadReplicas(model, n) or the model itself."""
    n = replicas_for(model, replicas)
    return model if n == 1 else ThreadReplicas(model, n, _blas_controller())


class ThreadReplicas:
    """The model and ``n - 1`` copies sharing its parameters, each running a slice of the batch in a thread.

    ``forward(x)`` and ``backward(dout)`` have the model's signatures;
    ``train()`` and ``eval()`` set every replica's mode. Everything else
    (parameters, state_dict, saving) is the model's: use ``runner.model``.
    """

    def __init__(self, model, n, blas):
        self.model, self.n, self.blas = model, int(n), blas
        self.replicas = [model] + [self._copy(model) for _ in range(self.n - 1)]
        self.pool = _pool(self.n)
        self.bounds = None

    @staticmethod
    def _copy(model):
        """A deep copy whose layers hold the model's own ``params`` and ``buffers`` dicts (not copies)."""
        memo = {}
        for _, layer in model.named_layers():
            memo[id(layer.params)], memo[id(layer.buffers)] = layer.params, layer.buffers
        return copy.deepcopy(model, memo)

    def __repr__(self):
        return f"ThreadReplicas({type(self.model).__name__}, {self.n} threads, 1 BLAS thread each)"

    def describe(self):
        """One line for the log."""
        return (f"each step's batch split over {self.n} threads, each running a replica of the model with one "
                f"BLAS thread (tinyalex/fast/replicas.py; TINYALEX_REPLICAS=1 turns it off)")

    def train(self, mode=True):
        for r in self.replicas:
            r.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def _run(self, calls):
        """Run ``calls`` (one per slice) in the pool with one BLAS thread each; their results in order."""
        with self.blas.limit(limits=1):
            futures = [self.pool.submit(single_thread, call) for call in calls]
            return [f.result() for f in futures]       # re-raises a replica's exception here

    def _reseed_dropout(self, x):
        """Replica k > 0: a dropout generator seeded from the model's own (one draw each, in order)."""
        main = next((layer for _, layer in self.model.named_layers() if isinstance(layer, Dropout)), None)
        if main is None or not self.model.training:
            return
        for replica in self.replicas[1:]:
            gens = DeviceGenerators(int(main.generators.on(x).integers(2 ** 63)))
            for _, layer in replica.named_layers():
                if isinstance(layer, Dropout):
                    layer.generators = gens

    def forward(self, x):
        N = x.shape[0]
        k = max(1, min(self.n, N))
        self.bounds = [N * i // k for i in range(k + 1)]
        self._reseed_dropout(x)
        parts = self._run([lambda r=r, lo=lo, hi=hi: r.forward(x[lo:hi])
                           for r, lo, hi in zip(self.replicas, self.bounds, self.bounds[1:])])
        return parts[0] if k == 1 else get_array_module(x).concatenate(parts)

    def backward(self, dout):
        if self.bounds is None:
            raise ValueError(f"{self}: backward() called before forward(); run forward(x) first")
        b, self.bounds = self.bounds, None
        if dout.shape[0] != b[-1]:
            raise ValueError(f"{self}: dout has {dout.shape[0]} rows, the forward batch had {b[-1]}")
        used = self.replicas[:len(b) - 1]
        parts = self._run([lambda r=r, lo=lo, hi=hi: r.backward(dout[lo:hi]) for r, lo, hi in zip(used, b, b[1:])])
        self._sum_gradients(used)
        if parts[0] is None:                           # the model skips the input gradient
            return None
        return parts[0] if len(parts) == 1 else get_array_module(dout).concatenate(parts)

    def _sum_gradients(self, used):
        """model.grads[w] += each other replica's grads[w], in place, split over threads for large ones."""
        others = [dict(r.named_gradients()) for r in used[1:]]
        for name, g in self.model.named_gradients():
            if not g.flags.c_contiguous:
                for o in others:
                    g += o[name]
                continue
            flat, adds = g.reshape(-1), [o[name].reshape(-1) for o in others]

            def work(lo, hi, flat=flat, adds=adds):
                for a in adds:
                    flat[lo:hi] += a[lo:hi]

            in_chunks(flat.size, work, numpy, item_bytes=g.itemsize * (1 + len(adds)) if flat.size > 1 << 16 else 0)
