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

The fully connected head (the trailing Flatten, Linear, ReLU and Dropout
layers: fc6, fc7, fc8) is not split by images: once the replicas have run
the convolutional trunk on their slices, the head runs on the whole batch,
and each of its Linear layers is split by *output neurons* instead: thread
k runs the layer's own ``forward`` and ``backward`` on rows k of its
weight matrix (a shallow copy of the layer holding views of W, b and
their gradients), and the input gradients of the threads are added::

    trunk (conv1 .. pool5): data parallel     x[0:N/2] -> replica 0,   x[N/2:N] -> replica 1
    head  (fc6 .. fc8):     model parallel    W[0:F/2] -> thread 0,    W[F/2:F] -> thread 1   (whole batch)

This is Krizhevsky's "one weird trick" (2014) on one machine: data
parallelism where the computation is per image (convolutions), model
parallelism where it is per weight. The head's weight matrices are large
and its products per image small (fc6 of AlexNet: 151 MB of weights,
0.15 GFLOP per image): split by images, each replica would read all of W
for half the batch and write a whole gradient matrix that then has to be
added to the model's; split by rows, each thread reads half of W once and
writes its half of the model's own gradient. (One whole-batch product with
two BLAS threads would read W once too, but OpenBLAS's threads then spin
for a while after each product and slow down the replicas that follow:
measured in docs/performance.md.) It needs a model whose ``forward`` is
its children in order (``runs_children_in_order``: AlexNet, Sequential
models; not GoogLeNet).

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
Dropout in the head draws its masks on the whole batch with the model's
own generator: the same masks as a run without replicas. Dropout in the
trunk (none in AlexNet) draws per slice: replica 0 is the model itself,
with the trainer's generator; replica k > 0 gets, at every training
forward, a generator seeded by a draw from the model's own, so a run stays
reproducible and resumable from its checkpoint.

    runner = step_runner(model)      # ThreadReplicas(model, 2) on 2 cores, or the model itself
    logits = runner.forward(x)
    runner.backward(loss.backward()) # the model's grads now hold the batch's gradient
    SGD(model).step()
"""
from __future__ import annotations

import copy
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy

from ..backend import DeviceGenerators, get_array_module
from ..layers import BatchNorm, Dropout, Flatten, Linear, ReLU, Tanh
from .cpu import blas_controller, grad_buffer, in_chunks, num_threads, single_thread

__all__ = ["ThreadReplicas", "step_runner", "replicas_for", "replica_count", "trunk_and_head"]

# Layers that may be in the head: per-row work beside (or no work at all) the weight-bound products.
_HEAD_LAYERS = (Flatten, Linear, ReLU, Tanh, Dropout)


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
            or blas_controller() is None):
        return 1
    return n


def trunk_and_head(model):
    """The names of ``model.children()`` run per slice (trunk) and on the whole batch (head).

    The head is the longest run of trailing Flatten, Linear, ReLU, Tanh and
    Dropout layers, if it holds a Linear and the model runs its children in
    order; else it is empty and the trunk is every child.
    """
    children = model.children()
    names = list(children)
    if not getattr(model, "runs_children_in_order", False):
        return names, []
    k = len(names)
    while k > 0 and isinstance(children[names[k - 1]], _HEAD_LAYERS):
        k -= 1
    if k == 0 or not any(isinstance(children[n], Linear) for n in names[k:]):
        return names, []
    return names[:k], names[k:]


def step_runner(model, replicas=None):
    """What runs a training step's forward and backward: ThreadReplicas(model, n) or the model itself."""
    n = replicas_for(model, replicas)
    return model if n == 1 else ThreadReplicas(model, n, blas_controller())


class ThreadReplicas:
    """The model and ``n - 1`` copies sharing its parameters, each running a slice of the batch in a thread.

    ``forward(x)`` and ``backward(dout)`` have the model's signatures;
    ``train()`` and ``eval()`` set every replica's mode. Everything else
    (parameters, state_dict, saving) is the model's: use ``runner.model``.
    ``whole_batch_head=False`` splits the head over the slices of images
    too (each replica then runs the model's whole ``forward``).
    """

    def __init__(self, model, n, blas, whole_batch_head=True):
        self.model, self.n, self.blas = model, int(n), blas
        self.replicas = [model] + [self._copy(model) for _ in range(self.n - 1)]
        self.pool = _pool(self.n)
        self.bounds = None
        self.shards = {}                 # head Linear name -> [(shard, first row, end row)] of the last forward
        self.trunk, self.head = trunk_and_head(model) if whole_batch_head else (list(model.children()), [])

    @staticmethod
    def _copy(model):
        """A deep copy whose layers hold the model's own ``params`` and ``buffers`` dicts (not copies)."""
        memo = {}
        for _, layer in model.named_layers():
            memo[id(layer.params)], memo[id(layer.buffers)] = layer.params, layer.buffers
        return copy.deepcopy(model, memo)

    def __repr__(self):
        head = f", head {self.head[0]}..{self.head[-1]} split by neurons" if self.head else ""
        return f"ThreadReplicas({type(self.model).__name__}, {self.n} threads, 1 BLAS thread each{head})"

    def describe(self):
        """One line for the log."""
        trunk = f" up to {self.trunk[-1]}" if self.head else ""
        head = (f"; {self.head[0]}..{self.head[-1]} on the whole batch, each fully connected layer's neurons split "
                f"over the threads" if self.head else "")
        return (f"each step's batch split over {self.n} threads{trunk}, each running a replica of the model with "
                f"one BLAS thread{head} (tinyalex/fast/replicas.py; TINYALEX_REPLICAS=1 turns it off)")

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

    def _trunk_layers(self, replica):
        """(name, layer) of ``replica``'s trunk, in forward order."""
        children = replica.children()
        return [(name, children[name]) for name in self.trunk]

    def _reseed_dropout(self, x):
        """Replica k > 0: a generator for its trunk's dropout, seeded from the model's own (one draw each)."""
        main = next((layer for _, top in self._trunk_layers(self.model) for _, layer in top.named_layers()
                     if isinstance(layer, Dropout)), None)
        if main is None or not self.model.training:
            return
        for replica in self.replicas[1:]:
            gens = DeviceGenerators(int(main.generators.on(x).integers(2 ** 63)))
            for _, top in self._trunk_layers(replica):
                for _, layer in top.named_layers():
                    if isinstance(layer, Dropout):
                        layer.generators = gens

    def _trunk_forward(self, replica, x):
        """The replica's forward on one slice: the whole model, or its trunk alone when the head is apart."""
        if not self.head:
            return replica.forward(x)
        for _, layer in self._trunk_layers(replica):
            x = layer.forward(x)
        return x

    def _trunk_backward(self, replica, dout):
        if not self.head:
            return replica.backward(dout)
        for _, layer in reversed(self._trunk_layers(replica)):
            dout = layer.backward(dout)
        return dout

    def forward(self, x):
        N = x.shape[0]
        if self.head and hasattr(self.model, "check_input"):
            self.model.check_input(x)                  # what the model's own forward checks first
        k = max(1, min(self.n, N))
        self.bounds = [N * i // k for i in range(k + 1)]
        self._reseed_dropout(x)
        parts = self._run([lambda r=r, lo=lo, hi=hi: self._trunk_forward(r, x[lo:hi])
                           for r, lo, hi in zip(self.replicas, self.bounds, self.bounds[1:])])
        out = parts[0] if k == 1 else get_array_module(x).concatenate(parts)
        children = self.model.children()
        self.shards = {}
        for name in self.head:                         # the head: the whole batch
            out = self._head_forward(name, children[name], out)
        return out

    def _head_forward(self, name, layer, x):
        """A Linear: its rows split over the threads (one shard each); any other head layer: here, unthreaded.

        ReLU and dropout on (N, 4096) are a few hundred KB: handing them to
        tinyalex's thread pool costs more than the work. A Linear too narrow
        to split runs in one replica thread (one BLAS thread: OpenBLAS's own
        threads would spin after it, docs/performance.md).
        """
        if not isinstance(layer, Linear):
            return single_thread(lambda: layer.forward(x))
        if self.n == 1 or layer.out_features < 2 * self.n:
            return self._run([lambda: layer.forward(x)])[0]
        F = layer.out_features
        W, b = layer.params["W"], layer.params["b"]
        dW = grad_buffer(layer, "W", W.shape, W.dtype, x)      # the shards write into row views of these
        db = grad_buffer(layer, "b", b.shape, b.dtype, x)
        rows = [F * i // self.n for i in range(self.n + 1)]
        shards = []
        for lo, hi in zip(rows, rows[1:]):
            shard = copy.copy(layer)                   # the layer's own forward and backward, on rows lo..hi
            for wrapped in ("forward", "backward"):    # the class's passes, not wrappers set on the instance
                vars(shard).pop(wrapped, None)         # (a profiler's) that would run the whole layer
            shard.out_features = hi - lo
            shard.params = {"W": W[lo:hi], "b": b[lo:hi]}
            shard.grads = {"W": dW[lo:hi], "b": db[lo:hi]}
            shards.append((shard, lo, hi))
        self.shards[name] = shards
        outs = self._run([lambda s=s: s.forward(x) for s, _, _ in shards])
        return get_array_module(x).concatenate(outs, axis=1)

    def _head_backward(self, name, layer, dout):
        if name not in self.shards:
            if isinstance(layer, Linear):
                return self._run([lambda: layer.backward(dout)])[0]
            return single_thread(lambda: layer.backward(dout))
        dxs = self._run([lambda s=s, lo=lo, hi=hi: s.backward(dout[:, lo:hi]) for s, lo, hi in self.shards[name]])
        dx = dxs[0]
        for d in dxs[1:]:
            dx += d                                    # each shard's rows add to the input's gradient
        return dx

    def backward(self, dout):
        if self.bounds is None:
            raise ValueError(f"{self}: backward() called before forward(); run forward(x) first")
        b, self.bounds = self.bounds, None
        if dout.shape[0] != b[-1]:
            raise ValueError(f"{self}: dout has {dout.shape[0]} rows, the forward batch had {b[-1]}")
        used = self.replicas[:len(b) - 1]
        children = self.model.children()
        for name in reversed(self.head):
            dout = self._head_backward(name, children[name], dout)
        parts = self._run([lambda r=r, lo=lo, hi=hi: self._trunk_backward(r, dout[lo:hi])
                           for r, lo, hi in zip(used, b, b[1:])])
        self._sum_gradients(used)
        if parts[0] is None:                           # the model skips the input gradient
            return None
        return parts[0] if len(parts) == 1 else get_array_module(dout).concatenate(parts)

    def _sum_gradients(self, used):
        """model.grads[w] += each other replica's grads[w] for the trunk's w, in place, in threads for large ones."""
        others = [dict(g for n, top in self._trunk_layers(r) for g in top.named_gradients(n)) for r in used[1:]]
        for name, g in (g for n, top in self._trunk_layers(self.model) for g in top.named_gradients(n)):
            if not g.flags.c_contiguous or g.size <= 1 << 16:      # small: here (a thread costs more)
                for o in others:
                    g += o[name]
                continue
            flat, adds = g.reshape(-1), [o[name].reshape(-1) for o in others]

            def work(lo, hi, flat=flat, adds=adds):
                for a in adds:
                    flat[lo:hi] += a[lo:hi]

            in_chunks(flat.size, work, numpy, item_bytes=g.itemsize * (1 + len(adds)))
