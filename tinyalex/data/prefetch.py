"""Prepare the next batch in a background thread while the current one trains.

Reading images, cropping, flipping and normalizing a batch takes the host a
while; a GPU that waits for it idles. :func:`prefetch` runs the loader's
batches in one background thread, at most ``depth`` batches ahead (a bounded
queue), while the main thread trains::

    with prefetch(loader) as batches:
        for x, y in batches:
            ...                       # loader.epoch / loader.batch as without prefetch

What stays as without it:

* The batches are the same, bit for bit: each is a function of (seed, epoch,
  batch) (:meth:`DataLoader.load_batch`), whichever thread computes it.
* The loader's position (``loader.batch``, ``loader.epoch``) advances in the
  main thread when a batch is handed out, not when the thread prepares it, so
  a checkpoint taken after a step resumes exactly after that step's batch.
* An exception in the thread (a corrupt image, a bad transform) is raised in
  the main thread, at the batch it concerns.
* Leaving the ``with`` block (the end of the epoch, ``break``, an exception,
  Ctrl-C) stops the thread and waits for it; it is a daemon thread, so it
  never keeps a dying interpreter alive.

NumPy releases the GIL inside its loops and file reads release it too, so
the thread's work overlaps with the main thread's (and with the GPU's).
"""
from __future__ import annotations

import contextlib
import queue
import threading

__all__ = ["prefetch"]

_END = object()


class _Failure:
    """An exception raised in the worker, carried to the main thread."""

    def __init__(self, exc):
        self.exc = exc


@contextlib.contextmanager
def prefetch(loader, depth=2):
    """An iterator over one epoch of ``loader`` (from its current position), prepared ``depth`` batches ahead.

    ``loader`` is a :class:`~tinyalex.data.DataLoader` (anything with
    ``epoch``, ``batch``, ``order(epoch)``, ``load_batch(order, epoch, b)``
    and ``len()``).
    """
    if depth < 1:
        raise ValueError(f"prefetch: depth must be >= 1, got {depth}")
    epoch, start, n = loader.epoch, loader.batch, len(loader)
    q = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        """Put unless asked to stop (checking every 0.1 s while the queue is full)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            order = loader.order(epoch)
            for b in range(start, n):
                if stop.is_set() or not put((b, loader.load_batch(order, epoch, b))):
                    return
            put(_END)
        except BaseException as exc:          # carried to the main thread, raised there
            put(_Failure(exc))

    thread = threading.Thread(target=work, name="tinyalex-prefetch", daemon=True)

    def batches():
        while True:
            item = q.get()
            if item is _END:
                loader.epoch, loader.batch = epoch + 1, 0
                return
            if isinstance(item, _Failure):
                raise item.exc
            b, batch = item
            loader.batch = b + 1               # a checkpoint taken now resumes after this batch
            yield batch

    thread.start()
    try:
        yield batches()
    finally:
        stop.set()
        thread.join()
