"""What the reliability tests share: a tiny run's arguments, folder snapshots, read-only and tiny disks."""
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--dataset", "synthetic", "--model", "alexnet-small", "--width", "0.125", "--epochs", "1",
        "--batch-size", "32", "--limit-train", "96", "--limit-test", "40", "--no-progress", "--seed", "3"]
REPO = Path(__file__).resolve().parents[2]


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``: what 'intact' is compared against."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(err):
    """The stderr of a refused command: one 'tinyalex: error:' line and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("tinyalex: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _mount(*args):
    return subprocess.run(["mount", *args], capture_output=True, text=True).returncode == 0


@contextlib.contextmanager
def small_disk(where, size="1m"):
    """A tmpfs of ``size`` mounted at ``where`` (root only; skips the test elsewhere)."""
    where = Path(where)
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size}", "tinyalex-test", str(where)):
        pytest.skip("needs root and tmpfs mounts")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextlib.contextmanager
def read_only_copy(src, where):
    """A copy of folder ``src`` that nobody can write: a tmpfs remounted read-only when root
    (permissions do not stop root), else a copy with the write bits removed."""
    where = Path(where)
    if os.geteuid() == 0:
        with small_disk(where, "32m"):
            dst = shutil.copytree(src, where / Path(src).name)
            if not _mount("-o", "remount,ro", str(where)):
                pytest.skip("cannot remount read-only")
            yield Path(dst)
        return
    where.mkdir(parents=True, exist_ok=True)
    dst = Path(shutil.copytree(src, where / Path(src).name))
    for p in [dst, *dst.rglob("*"), where]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield dst
    finally:
        for p in [where, dst, *dst.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def tinyalex_process(*args, **kw):
    """``python -m tinyalex ARGS`` as a child process with this checkout on its path."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.pop("TINYALEX_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "tinyalex", *args], env=env, cwd=kw.pop("cwd", REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
