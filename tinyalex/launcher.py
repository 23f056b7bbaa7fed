"""Threads per process when an MPI launcher starts several ranks on one machine.

``mpiexec -n 2 python -m tinyalex train --distributed`` on a 2-core machine
starts two processes. Left alone, each would start one OpenBLAS thread per
core and a pool of as many threads for tinyalex's elementwise work: four busy
threads on two cores (alexnet-small's training step ran about 8% slower so
on the 2-core build machine: docs/distributed.md). Like PyTorch's
``torchrun`` (which sets ``OMP_NUM_THREADS=1``), tinyalex gives each rank
``cores // ranks on this machine`` threads (at least 1), unless the user has
chosen:

* the BLAS variables (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS``) are all left alone when any of them is set;
* ``TINYALEX_THREADS`` is left alone when it is set.

This must run before NumPy is imported: OpenBLAS reads its variable once,
when it loads. ``tinyalex/__init__.py`` calls :func:`limit_threads_per_rank`
first thing, so ``python -m tinyalex`` gets it; a script that imported NumPy
before tinyalex sets the variables itself. One process (no launcher, or one
rank per machine) changes nothing.
"""
from __future__ import annotations

import os

__all__ = ["LOCAL_SIZE_VARS", "BLAS_VARS", "local_ranks", "threads_per_rank", "limit_threads_per_rank"]

# How each launcher tells a process how many ranks share its machine:
# Open MPI, MPICH/Intel MPI (hydra), PMIx, Slurm (srun).
LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
OWN_VAR = "TINYALEX_THREADS"


def local_ranks(environ=None) -> int:
    """How many ranks the launcher started on this machine (1 without a launcher)."""
    environ = os.environ if environ is None else environ
    for var in LOCAL_SIZE_VARS:
        value = environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def threads_per_rank(environ=None, cpus=None) -> dict:
    """The thread variables to set for this rank: {name: value}, empty when there is nothing to do."""
    environ = os.environ if environ is None else environ
    ranks = local_ranks(environ)
    if ranks <= 1:
        return {}
    n = str(max(1, (cpus or os.cpu_count() or 1) // ranks))
    chosen = {}
    if not any(environ.get(v) for v in BLAS_VARS):
        chosen.update({v: n for v in BLAS_VARS})
    if not environ.get(OWN_VAR):
        chosen[OWN_VAR] = n
    return chosen


def limit_threads_per_rank(environ=None, cpus=None) -> dict:
    """Set :func:`threads_per_rank`'s variables in ``environ`` (default ``os.environ``); returns them."""
    environ = os.environ if environ is None else environ
    chosen = threads_per_rank(environ, cpus)
    environ.update(chosen)
    return chosen
