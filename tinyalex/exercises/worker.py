"""The process that runs one submission for the grader (grade.py starts one per file).

Protocol: the grader writes a pickle to stdin -- the submission's code, its
path and the inputs of every case (never the expected answers) -- and reads
records from stdout: first ``{"!load": "ok" or the error}``, then one per
exercise, ``{"!exercise": name, "ATTEMPT/CASE/OUTPUT": array, ...}``, each an
``.npz`` (read back without pickle) behind ``MAGIC`` and its length.
A record is sent as soon as its exercise is done, so a crash or a timeout
keeps the exercises already run.

The checker's code (checks.py) is imported before the submission; the
submission's prints go to stderr (the grader's log), so it cannot write into
the results by printing. The verdicts are not made here: the grader compares
the returned arrays with the references in its own process.
"""
from __future__ import annotations

import io
import os
import pickle
import resource
import struct
import sys
import threading
import time
import types

import numpy as np

from .checks import EXERCISES, Case, describe_exception, reference_scope

MAGIC = b"TAXR"


def send(fd, record: dict) -> None:
    """Write one record (str or array values) to fd."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in record.items()})
    data = MAGIC + struct.pack("<Q", len(buf.getvalue())) + buf.getvalue()
    while data:
        n = os.write(fd, data)
        data = data[n:]


def read_records(data: bytes) -> list[dict]:
    """The complete records in ``data`` (a truncated last record is dropped)."""
    records, pos = [], 0
    while pos + 12 <= len(data) and data[pos:pos + 4] == MAGIC:
        (n,) = struct.unpack("<Q", data[pos + 4:pos + 12])
        if pos + 12 + n > len(data):
            break
        with np.load(io.BytesIO(data[pos + 12:pos + 12 + n]), allow_pickle=False) as z:
            records.append({k: (str(z[k]) if z[k].dtype.kind == "U" else z[k]) for k in z.files})
        pos += 12 + n
    return records


def _exit_with_parent(parent: int) -> None:
    """End this process when the grader is gone (killed, Ctrl-C): no endless loop outlives it."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def main() -> None:
    results = os.dup(1)
    os.dup2(2, 1)                     # print() in the submission goes to the log
    job = pickle.loads(sys.stdin.buffer.read())
    threading.Thread(target=_exit_with_parent, args=(job["parent"],), daemon=True).start()
    cpu = int(job["timeout"]) * 2 + 10   # a backstop should the grader's timeout not act
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    module = types.ModuleType("submission")
    module.__file__ = job["path"]
    try:
        exec(compile(job["code"], job["path"], "exec"), module.__dict__)
    except KeyboardInterrupt:
        raise
    except BaseException as e:        # SyntaxError, ImportError, sys.exit() at import time...
        send(results, {"!load": describe_exception(e)})
        os._exit(0)
    send(results, {"!load": "ok"})
    for name, inputs in job["inputs"].items():
        ex = EXERCISES[name]
        cases = [Case("", i, {}) for i in inputs]
        with reference_scope(ex, module):
            runs = ex.run(module, cases)
        record = {"!exercise": name}
        for a, outs in enumerate(runs.values()):
            for c, got in enumerate(outs):
                for key, value in got.items():
                    record[f"{a}/{c}/{key}"] = value
        send(results, record)
    sys.stdout.flush()
    os._exit(0)                       # threads the submission left running do not hold the grader


if __name__ == "__main__":
    main()
