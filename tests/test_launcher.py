"""Threads per MPI rank (tinyalex/launcher.py): several ranks on one machine share its cores."""
import ctypes
import glob
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from tinyalex.launcher import limit_threads_per_rank, local_ranks, threads_per_rank

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TINYALEX_THREADS")


def test_without_a_launcher_there_is_one_rank_and_nothing_to_set():
    assert local_ranks({}) == 1
    assert threads_per_rank({}, cpus=8) == {}


def test_two_ranks_on_a_two_core_machine_get_one_thread_each():
    chosen = threads_per_rank({"OMPI_COMM_WORLD_LOCAL_SIZE": "2"}, cpus=2)
    assert chosen == {v: "1" for v in THREAD_VARS}


def test_the_cores_are_divided_among_the_ranks_of_this_machine():
    assert threads_per_rank({"MPI_LOCALNRANKS": "4"}, cpus=16)["OPENBLAS_NUM_THREADS"] == "4"


def test_more_ranks_than_cores_still_get_one_thread():
    assert threads_per_rank({"OMPI_COMM_WORLD_LOCAL_SIZE": "8"}, cpus=2)["OPENBLAS_NUM_THREADS"] == "1"


def test_a_slurm_task_count_that_is_not_a_plain_number_is_ignored():
    assert local_ranks({"SLURM_NTASKS_PER_NODE": "2(x3)"}) == 1


def test_a_blas_thread_count_the_user_chose_is_kept():
    env = {"OMPI_COMM_WORLD_LOCAL_SIZE": "2", "OMP_NUM_THREADS": "2"}
    chosen = limit_threads_per_rank(env, cpus=2)
    assert chosen == {"TINYALEX_THREADS": "1"}
    assert env["OMP_NUM_THREADS"] == "2" and "OPENBLAS_NUM_THREADS" not in env


def test_a_tinyalex_thread_count_the_user_chose_is_kept():
    env = {"OMPI_COMM_WORLD_LOCAL_SIZE": "2", "TINYALEX_THREADS": "2"}
    limit_threads_per_rank(env, cpus=2)
    assert env["TINYALEX_THREADS"] == "2" and env["OPENBLAS_NUM_THREADS"] == "1"


def _openblas_threads_probe():
    libs = glob.glob(str(Path(numpy.__file__).parent.parent / "numpy.libs" / "libscipy_openblas*"))
    if not libs:
        pytest.skip("this NumPy does not bundle scipy-openblas: cannot ask OpenBLAS its thread count")
    return ("import ctypes, glob, os, tinyalex, numpy\n"
            f"lib = ctypes.CDLL({libs[0]!r})\n"
            "print(os.environ['TINYALEX_THREADS'], lib.scipy_openblas_get_num_threads64_())\n")


def test_importing_tinyalex_under_a_launcher_sets_openblas_before_numpy_loads_it():
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(OMPI_COMM_WORLD_LOCAL_SIZE=str(os.cpu_count()), PYTHONPATH=os.getcwd())
    res = subprocess.run([sys.executable, "-c", _openblas_threads_probe()], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "1"]
