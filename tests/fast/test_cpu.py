"""tinyalex/fast/cpu.py: chunks and threads on NumPy only, reused workspaces and gradient arrays."""
import os
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.fast.cpu import Workspaces, grad_buffer, in_chunks, num_threads, zero_operand
from tinyalex.layers import Linear


def record_chunks(n, xp, **kwargs):
    """in_chunks over range(n): the (lo, hi) pairs it called and the threads it called them from."""
    calls, lock = [], threading.Lock()

    def work(lo, hi):
        with lock:
            calls.append((lo, hi, threading.get_ident()))

    in_chunks(n, work, xp, **kwargs)
    return sorted(c[:2] for c in calls), {c[2] for c in calls}


@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("n,item_bytes", [(1, 0), (7, 0), (10, 3 << 20), (5, 100 << 20)])
def test_in_chunks_covers_the_range_exactly_once_on_numpy(threads, n, item_bytes, monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", threads)
    chunks, _ = record_chunks(n, np, item_bytes=item_bytes)
    covered = [i for lo, hi in chunks for i in range(lo, hi)]
    assert covered == list(range(n))


def test_in_chunks_splits_numpy_work_into_cache_sized_chunks_on_threads(monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", "2")
    chunks, threads = record_chunks(8, np, item_bytes=4 << 20, chunk_bytes=8 << 20)   # 2 items per chunk
    assert chunks == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert threading.get_ident() not in threads                    # run on the pool's threads


def test_in_chunks_with_one_thread_runs_the_chunks_in_the_calling_thread(monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", "1")
    chunks, threads = record_chunks(8, np, item_bytes=4 << 20, chunk_bytes=8 << 20)
    assert len(chunks) == 4 and threads == {threading.get_ident()}


def test_in_chunks_does_not_thread_or_chunk_for_a_module_other_than_numpy(monkeypatch):
    """On the stand-in (as on CuPy) the work is one whole-array call, in the calling thread."""
    monkeypatch.setenv("TINYALEX_THREADS", "4")
    with B.use_backend("standin", 1):
        xp = B.get_array_module(B.asarray(np.zeros(3)))
    assert xp is not np
    chunks, threads = record_chunks(64, xp, item_bytes=1 << 30, chunk_bytes=1)
    assert chunks == [(0, 64)] and threads == {threading.get_ident()}


def test_in_chunks_reraises_a_workers_exception(monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", "2")

    def work(lo, hi):
        if lo > 0:
            raise RuntimeError(f"chunk {lo}:{hi} failed")

    with pytest.raises(RuntimeError, match="chunk 4:8 failed"):
        in_chunks(8, work, np)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_tinyalex_threads_is_refused_naming_the_variable(value, monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", value)
    with pytest.raises(ValueError, match=f"TINYALEX_THREADS must be a positive integer, got '{value}'"):
        num_threads()


def test_tinyalex_threads_sets_the_count_and_defaults_to_the_cpus(monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", " 3 ")
    assert num_threads() == 3
    monkeypatch.delenv("TINYALEX_THREADS")
    assert num_threads() >= 1


def test_workspace_is_reused_while_shape_dtype_and_device_stay_the_same():
    ws, like = Workspaces(), np.zeros(1, np.float32)
    a = ws.get("cols", (3, 4), np.float32, like)
    assert ws.get("cols", (3, 4), np.float32, like) is a and ws["cols"] is a
    assert ws.get("cols", (4, 3), np.float32, like) is not a              # shape changed
    assert ws.get("cols", (4, 3), np.float64, like).dtype == np.float64    # dtype changed
    assert ws.get("other", (4, 3), np.float64, like) is not ws["cols"]    # names are separate


def test_workspace_zero_fills_a_new_buffer_and_follows_the_device():
    ws = Workspaces()
    assert not ws.get("xpad", (5, 5), np.float64, np.zeros(1), zero=True).any()
    with B.use_backend("standin", 1), B.device(1):
        on_device = B.asarray(np.zeros(1))
        buf = ws.get("xpad", (5, 5), np.float64, on_device, zero=True)
        assert B.backend_of(buf) == "standin" and B.device_of(buf) == 1
    ws.clear()
    assert ws.buffers == {}


def test_grad_buffer_reuses_the_gradient_array_only_when_it_fits():
    layer = Linear(3, 2, dtype=np.float64)
    g = grad_buffer(layer, "W", (2, 3), np.float64, np.zeros(1))
    assert layer.grads["W"] is g
    assert grad_buffer(layer, "W", (2, 3), np.float64, np.zeros(1)) is g
    assert grad_buffer(layer, "W", (2, 3), np.float32, np.zeros(1)) is not g


def test_zero_operand_is_one_zero_sample_for_numpy_reused_and_the_scalar_elsewhere():
    ws = Workspaces()
    x = np.ones((4, 3, 5, 5), np.float32)
    zero = zero_operand(ws, x)
    assert zero.shape == (1, 3, 5, 5) and zero.dtype == np.float32 and not zero.any()
    assert zero_operand(ws, x) is zero
    with B.use_backend("standin", 1):
        z = zero_operand(Workspaces(), B.asarray(x))
        assert not isinstance(z, np.ndarray) and z == 0



KEEP_PROBE = """
import resource, sys, numpy as np
from tinyalex.fast.cpu import keep_freed_memory
def faults():   # page faults of three rounds of a fresh 64 MB array, filled and freed
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        a = np.empty(16 << 20, np.float32); a.fill(1); del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
faults(); before = faults()
kept = keep_freed_memory()
faults(); after = faults()
print(kept, before, after)
"""


def run_keep_probe(**env):
    environ = {k: v for k, v in os.environ.items() if k not in ("TINYALEX_KEEP_FREED_MEMORY", "MALLOC_MMAP_THRESHOLD_")}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environ["PYTHONPATH"] = root + os.pathsep + environ.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", KEEP_PROBE], capture_output=True, text=True, env=dict(environ, **env))
    assert r.returncode == 0, r.stderr
    kept, before, after = r.stdout.split()
    return kept == "True", int(before), int(after)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_stops_a_large_fresh_array_from_page_faulting_every_time():
    kept, before, after = run_keep_probe()     # a fresh process: the thresholds are process-wide
    assert kept
    # 3 x 64 MB fault in 49,152 times with 4 KB pages, but only about 96 times where the kernel
    # backs them with 2 MB transparent huge pages (the CI machine counted 99): hence "> 50"
    assert before > 50 and after < before // 10


def test_keep_freed_memory_is_off_with_tinyalex_keep_freed_memory_0():
    kept, before, after = run_keep_probe(TINYALEX_KEEP_FREED_MEMORY="0")
    assert not kept
