"""What only the CPU needs: threads for elementwise work, cache-sized chunks, reused buffers.

Threads
    NumPy runs an elementwise operation on one core; OpenBLAS runs matrix
    products on all of them. The fast layers split their elementwise work
    (LRN, pooling, ReLU, im2col, col2im, layout changes) into chunks along
    the batch or channel axis and run the chunks on a small pool of threads:
    NumPy releases the GIL inside its loops, so the chunks run in parallel.
    ``TINYALEX_THREADS`` (default: the number of CPUs) sets the count; 1
    turns it off. A thread running :func:`single_thread` (a replica of
    ``fast/replicas.py``, which is itself one of several threads) uses none.

Chunks
    A chunk of about ``chunk_bytes`` keeps its temporaries in the CPU's cache.

Both only for NumPy arrays: :func:`in_chunks` on any other array module
(CuPy, the device stand-in) makes one call on the whole range, no loop and
no threads (a GPU runs a whole array at once, and the stand-in's current
device is per thread).

Workspaces
    A fresh 200 MB array costs page faults on every step; a fast layer keeps
    its large buffers in a :class:`Workspaces` it owns and reuses them while
    shape, dtype and device stay the same. :func:`grad_buffer` does the same
    for parameter gradients. For the arrays a step still allocates (layer
    outputs and input gradients), :func:`keep_freed_memory` asks glibc to
    keep freed memory for the next step.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy
import threadpoolctl

from ..backend import device_of, get_array_module

__all__ = ["num_threads", "single_thread", "in_chunks", "blas_controller", "one_blas_thread", "Workspaces", "grad_buffer", "zero_operand",
           "keep_freed_memory"]


_this_thread = threading.local()      # .threads: set by single_thread for the calling thread alone


def num_threads():
    """Threads for the elementwise work: 1 inside :func:`single_thread`, else TINYALEX_THREADS, else the CPUs."""
    if getattr(_this_thread, "threads", None):
        return _this_thread.threads
    env = os.environ.get("TINYALEX_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"TINYALEX_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"TINYALEX_THREADS must be a positive integer, got {env!r}")
        return n
    return os.cpu_count() or 1


def single_thread(call):
    """``call()`` with tinyalex's elementwise work in this thread only (no pool), whatever TINYALEX_THREADS says."""
    _this_thread.threads = 1
    try:
        return call()
    finally:
        _this_thread.threads = None


_pool = {"executor": None, "size": 0, "pid": None, "lock": threading.Lock()}


def _executor(n):
    """The process's pool of ``n`` worker threads (made again after a fork or a change of n)."""
    with _pool["lock"]:
        if _pool["pid"] != os.getpid():      # after a fork the parent's threads do not exist here
            _pool["executor"] = None
        if _pool["executor"] is None or _pool["size"] != n:
            if _pool["executor"] is not None:
                _pool["executor"].shutdown(wait=False)
            _pool["executor"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tinyalex")
            _pool["size"], _pool["pid"] = n, os.getpid()
        return _pool["executor"]


def in_chunks(n, work, xp, item_bytes=0, chunk_bytes=8 << 20):
    """Call ``work(lo, hi)`` on chunks covering range(n), in parallel for NumPy.

    Chunks are about ``chunk_bytes`` (given ``item_bytes`` per index) so that
    each chunk's temporaries stay in cache, and there are at least as many
    chunks as threads. ``work`` must write only to its own chunk.

    ``xp`` other than NumPy: one call ``work(0, n)`` in this thread.
    """
    if xp is not numpy:
        work(0, n)
        return
    threads = num_threads()
    parts = max(1, min(n, threads))
    if item_bytes:
        parts = max(parts, min(n, -(-n * item_bytes // chunk_bytes)))
    if parts == 1 or threads == 1 and not item_bytes:
        work(0, n)
        return
    bounds = [n * k // parts for k in range(parts + 1)]
    pairs = [(bounds[k], bounds[k + 1]) for k in range(parts) if bounds[k + 1] > bounds[k]]
    if threads == 1:
        for lo, hi in pairs:
            work(lo, hi)
        return
    ex = _executor(threads)
    futures = [ex.submit(work, lo, hi) for lo, hi in pairs]
    for f in futures:
        f.result()          # re-raises a worker's exception here


@functools.lru_cache(maxsize=1)
def blas_controller():
    """threadpoolctl's controller of the BLAS libraries NumPy loaded, or None when it knows none of them.

    Found once per process (NumPy loads its BLAS when it is imported, before this runs)."""
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else None


def one_blas_thread(xp):
    """A context in which BLAS runs on one thread, when :func:`in_chunks` is about to run products in parallel.

    For NumPy with several tinyalex threads: each chunk's product then runs on
    its own core instead of every chunk asking OpenBLAS for all of them. In a
    single-threaded caller (a replica of fast/replicas.py, TINYALEX_THREADS=1),
    on other array modules, or without a BLAS threadpoolctl knows: nothing.
    """
    controller = blas_controller() if xp is numpy and num_threads() > 1 else None
    return controller.limit(limits=1) if controller is not None else contextlib.nullcontext()


def _fits(buf, shape, dtype, like):
    """Whether ``buf`` can be reused for an array of this shape and dtype beside ``like``."""
    return (buf is not None and buf.shape == tuple(shape) and buf.dtype == dtype
            and get_array_module(buf) is get_array_module(like) and device_of(buf) == device_of(like))


class Workspaces:
    """Named buffers a fast layer reuses from step to step.

    ``ws.get("cols", shape, dtype, like)`` returns the buffer called "cols",
    allocated again (on ``like``'s backend and device) only when shape, dtype
    or device changed. ``zero=True`` fills a new buffer with zeros (a padded
    input's border stays zero because only its interior is ever written).
    """

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, dtype, like, zero=False):
        buf = self.buffers.get(name)
        if not _fits(buf, shape, dtype, like):
            xp = get_array_module(like)
            buf = xp.zeros(shape, dtype=dtype) if zero else xp.empty(shape, dtype=dtype)
            self.buffers[name] = buf
        return buf

    def __getitem__(self, name):
        return self.buffers[name]

    def clear(self):
        """Drop every buffer (frees the memory; the next forward allocates again)."""
        self.buffers.clear()


def grad_buffer(layer, key, shape, dtype, like):
    """The array to write ``layer.grads[key]`` into: the existing one if it fits, else a new one.

    Writing into the existing array (as PyTorch's ``.grad``) saves an
    allocation per step: copy a gradient if you keep it across steps.
    """
    g = layer.grads.get(key)
    if not _fits(g, shape, dtype, like):
        g = get_array_module(like).empty(shape, dtype=dtype)
        layer.grads[key] = g
    return g


def zero_operand(workspaces, x):
    """The zero to take ``maximum(x, zero)`` against (a ReLU): an array for NumPy, the scalar 0 otherwise.

    NumPy 2.4's ``maximum`` runs its SIMD loop when both operands are arrays
    and a slower one against a scalar: about 3x faster on an in-cache chunk,
    10 to 30% on a whole map (docs/performance.md). For NumPy this is one
    zero sample, ``(1,) + x.shape[1:]``, kept in ``workspaces`` and broadcast
    over the batch; CuPy and the stand-in get the scalar (no extra array to read).
    """
    if get_array_module(x) is not numpy or x.ndim == 0:
        return x.dtype.type(0)
    return workspaces.get("zero", (1,) + x.shape[1:], x.dtype, x, zero=True)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 1 << 30
_kept = {"done": False}


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse, so that a step's large fresh arrays do not page-fault.

    By default glibc gives every block over 32 MB back to the operating
    system as soon as it is freed, so the large arrays a training step
    allocates afresh (AlexNet's conv1 output: 37 MB at batch 32;
    alexnet-cifar's at batch 128: 34 MB) are mapped and zero-filled again on
    every step. Raising the mmap and trim thresholds to 1 GiB keeps freed
    memory in the process for the next step. Measured (one thread, CPU time,
    three alternating pairs of processes, docs/performance.md): AlexNet's
    step at batch 32 1360-1427 -> 1294-1319 ms (page faults per step 3300-3700
    -> 78), alexnet-cifar's at batch 128 575-600 -> 536-553 ms,
    alexnet-small's at batch 128 187-197 -> 184-193 ms; peak memory 1 to 3.5%
    higher, and the process keeps its peak until it exits.

    Once per process; Linux with glibc only; not when the user set
    ``MALLOC_MMAP_THRESHOLD_`` or ``TINYALEX_KEEP_FREED_MEMORY=0``. Returns
    whether the thresholds are (now) raised by this function.
    """
    if _kept["done"]:
        return True
    if os.environ.get("TINYALEX_KEEP_FREED_MEMORY", "").strip() == "0" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, KEEP_FREED_BYTES) == 1 and \
            libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES) == 1
    except (OSError, AttributeError):
        return False
    _kept["done"] = ok
    return ok
