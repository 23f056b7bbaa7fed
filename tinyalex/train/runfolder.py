"""A run folder belongs to one run: checks before writing, an exclusive lock, a run id.

Before a training run writes anything into its ``--out`` folder,
:func:`open_run_folder` checks that the folder can be its own:

* ``--out`` must be a folder that can be created and written: not a file,
  not under a file, not in ``/proc`` or ``/sys``, not read-only;
* an existing folder that is not a tinyalex run (no ``run.json``, no
  checkpoint) is refused unless it is empty: tinyalex never writes over a
  user's own ``config.json`` or ``metrics.csv``;
* a folder that holds a run (finished or not) is refused without
  ``--resume``; ``overwrite=True`` (``--overwrite``) starts again, deleting
  only the files a run writes. In Python, ``fit()``'s default
  ``overwrite=None`` replaces an earlier run (so a notebook cell can be run
  again) and still refuses a folder that is not a run.

Then it takes an exclusive lock: ``RUN/.lock`` holds the process id and the
command, locked with ``fcntl.flock``. The kernel drops the lock when the
process ends, however it ends (kill -9 included), so a lock file left by a
dead process is recognised as stale and taken over; a live one makes the
second run stop with the other process's id. The lock is released (and the
file removed) when the run ends.

A new run writes ``run.json`` with a random run id; every checkpoint of the
run carries the same id, so ``--resume`` can refuse a checkpoint copied in
from another run.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_write_text

try:
    import fcntl
except ImportError:        # Windows: the pid in the lock file is the only guard
    fcntl = None

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
# Every file a training run writes: what --overwrite deletes (and nothing else).
RUN_OUTPUTS = (RUN_FILE, "config.json", "metrics.csv", "metrics.jsonl", "curves.png", "checkpoint.npz",
               "best.npz", "model.npz", "test.json", "confusion.png", "conv1.png")
SYSTEM_DIRS = (Path("/proc"), Path("/sys"), Path("/dev"))


def read_run_id(folder):
    """The run id written in ``folder/run.json`` (None for a folder without one)."""
    path = Path(folder) / RUN_FILE
    try:
        return json.loads(path.read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def is_run_folder(folder) -> bool:
    """True if ``folder`` holds a tinyalex run (run.json, or a checkpoint of an older version)."""
    folder = Path(folder)
    return (folder / RUN_FILE).is_file() or (folder / "checkpoint.npz").is_file()


def check_writable_folder(folder, flag="--out"):
    """Raise UserError unless ``folder`` is, or can become, a writable folder."""
    folder = Path(folder)
    resolved = folder.expanduser().resolve()
    for system in SYSTEM_DIRS:
        if resolved == system or system in resolved.parents:
            raise UserError(f"{flag} {folder}: {system} is a system folder, not a place for run files; "
                            "give a folder in your home or project, e.g. --out runs/NAME")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file, not a folder; give a folder path, e.g. --out runs/NAME")
    for parent in resolved.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {folder}: {parent} is a file, so no folder can be made under it; "
                                "give another path, e.g. --out runs/NAME")
            if not folder.exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"{flag} {folder}: cannot create it, {parent} is read-only; "
                                "give a folder you can write, e.g. --out ~/runs/NAME")
            break
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {folder} is read-only; give a folder you can write, e.g. --out ~/runs/NAME")


class RunLock:
    """An exclusive lock on a run folder (``folder/.lock``); see the module docstring."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.fd = None
        self.stale = None          # the pid of a dead process whose lock was taken over

    def acquire(self):
        for _ in range(5):          # retry when the file was replaced between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                        os.close(fd)
                        raise
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise UserError(
                        f"--out {self.folder} is in use by another tinyalex run (process {holder.get('pid', '?')}"
                        f" on {holder.get('host', '?')}, started {holder.get('started', '?')}: "
                        f"{holder.get('command', '?')}); wait for it to finish, stop it, or choose another --out")
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:        # the holder removed the file as we opened it: lock the new one
                    os.close(fd)
                    continue
            old = _read_holder(fd)
            if old.get("pid") and old.get("pid") != os.getpid():
                if fcntl is None and old.get("host") == socket.gethostname() and _alive(old["pid"]):
                    os.close(fd)
                    raise UserError(f"--out {self.folder} is in use by process {old['pid']}; "
                                    "wait for it to finish or choose another --out")
                self.stale = old["pid"]
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                     "command": " ".join(sys.argv)}).encode())
            os.fsync(fd)
            self.fd = fd
            return self
        raise UserError(f"--out {self.folder}: could not lock {self.path}; another run keeps replacing it")

    def release(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)           # closing drops the flock
        self.fd = None

    def __del__(self):                  # a Trainer dropped without run(): do not keep the folder locked
        try:
            self.release()
        except Exception:
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


class RunFolder:
    """The checked and locked run folder of one training run. Use :func:`open_run_folder`."""

    def __init__(self, path, lock, run_id, created):
        self.path = path
        self.lock = lock
        self.run_id = run_id
        self.created = created          # True if this run wrote run.json (removed again on abandon)
        self.made_dir = False           # True if this run made the folder itself
        self.replaced = False           # True if an earlier run's files were deleted

    def close(self):
        """Release the lock (the run ended, however)."""
        self.lock.release()

    def abandon(self):
        """The run failed before writing anything: remove what opening the folder made, release the lock."""
        if self.created:
            (self.path / RUN_FILE).unlink(missing_ok=True)
        self.lock.release()
        if self.made_dir:
            try:
                self.path.rmdir()       # only if empty: nothing else of the user's is touched
            except OSError:
                pass


def open_run_folder(folder, resume=False, overwrite=False, checkpoint_run_id=None) -> RunFolder:
    """Check, create and lock the run folder ``folder``; see the module docstring.

    ``resume``: continue the run in it (its checkpoint's ``checkpoint_run_id``
    must match the folder's run.json). ``overwrite``: True starts a new run in a
    folder that holds files, deleting only a run's own files; None does so only
    for a folder that holds a run; False refuses both. Raises
    UserError naming the problem and the fix.
    """
    folder = Path(folder)
    check_writable_folder(folder)
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = RunLock(folder).acquire()         # first: a folder in use is refused as such
    except OSError as exc:
        raise UserError(f"--out {folder}: cannot create or lock it ({exc.strerror or exc}); "
                        "give a folder you can write, e.g. --out ~/runs/NAME") from exc
    # a run stopped before it wrote a checkpoint or a metric left nothing to lose: start it again
    names = {p.name for p in folder.iterdir()} - {LOCK_FILE}
    nonempty = bool(names) and not (RUN_FILE in names and names <= {RUN_FILE, "config.json"})
    try:
        replace_run = overwrite is None and is_run_folder(folder)
        if not resume and nonempty and not overwrite and not replace_run:
            if not is_run_folder(folder):
                raise UserError(f"--out {folder} already exists and is not a tinyalex run folder (it holds other "
                                "files, which tinyalex will not write over); choose a new --out name, or add "
                                "--overwrite to write into it anyway")
            if (folder / "model.npz").is_file():
                raise UserError(f"--out {folder} holds a finished run; choose a new --out name, add --overwrite "
                                f"to replace it, or continue it with --resume {folder} --epochs N")
            raise UserError(f"--out {folder} already holds a training run; continue it with --resume {folder}, "
                            "choose another --out folder, or add --overwrite to start again")
    except BaseException:
        lock.release()
        raise
    try:
        if resume:
            run_id = read_run_id(folder)
            if run_id is not None and checkpoint_run_id is not None and run_id != checkpoint_run_id:
                raise UserError(f"--resume {folder}: its checkpoint.npz belongs to another run (run id "
                                f"{checkpoint_run_id}, this folder's run.json says {run_id}); resume from the "
                                "folder the checkpoint was written in, or start a new run")
            run_id = run_id or checkpoint_run_id or uuid.uuid4().hex
        else:
            if nonempty:
                for name in RUN_OUTPUTS:
                    (folder / name).unlink(missing_ok=True)
            run_id = uuid.uuid4().hex
        if read_run_id(folder) != run_id:
            atomic_write_text(folder / RUN_FILE, json.dumps({"run_id": run_id, "created": time.strftime(
                "%Y-%m-%d %H:%M:%S"), "host": socket.gethostname()}, indent=2) + "\n")
    except OSError as exc:
        lock.release()
        raise UserError(f"--out {folder}: cannot write in it ({exc}); give a folder you can write") from exc
    except BaseException:
        lock.release()
        raise
    run = RunFolder(folder, lock, run_id, created=not resume)
    run.made_dir = not existed
    run.replaced = not resume and nonempty
    return run


__all__ = ["open_run_folder", "RunFolder", "RunLock", "check_writable_folder", "is_run_folder",
           "read_run_id", "RUN_FILE", "LOCK_FILE", "RUN_OUTPUTS"]
