"""The array backend: NumPy, CuPy, or a CPU stand-in for several devices.

Every layer in tinyalex takes its array module from the arrays it is given::

    xp = get_array_module(x)      # numpy, cupy, or tinyalex.standin
    y = xp.maximum(x, 0)

so one code path runs on the host and on GPUs, as in Chainer. Moving data
between host and device, or between two devices, is always an explicit call:
:func:`to_device` and :func:`to_host`.

Three kinds of arrays
---------------------
``numpy``
    Host arrays. The default.
``cupy``
    GPU arrays, one CUDA device each (``pip install cupy-cuda12x``).
``standin``
    :class:`~tinyalex.standin.DeviceArray`, a NumPy array tagged with a device
    number, which follows CuPy's rules on the CPU and counts device operations
    and host synchronisations: see :mod:`tinyalex.standin`.

Choosing the backend
--------------------
``TINYALEX_BACKEND=numpy|cupy|standin`` in the environment, or
``tinyalex.set_backend("cupy", device=0)``. The backend decides where *new*
arrays (parameters, data batches) are created: :func:`asarray` and
:func:`zeros` put them on the current backend and device. Arrays that exist
say themselves where they live; :func:`device` switches the current device
(CuPy's and the stand-in's) whatever the backend.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys

import numpy

from . import standin
from .standin import DeviceArray, DeviceMismatchError, ImplicitTransferError, NotInCupyError  # noqa: F401 (re-exported)

__all__ = [
    "BackendError",
    "DeviceMismatchError",
    "ImplicitTransferError",
    "NotInCupyError",
    "DeviceArray",
    "get_array_module",
    "set_backend",
    "get_backend",
    "use_backend",
    "device",
    "current_device",
    "device_of",
    "asarray",
    "zeros",
    "to_device",
    "to_host",
    "backend_of",
    "to_device_of",
    "is_device_array",
    "available_backends",
    "check_devices",
    "DeviceGenerators",
    "synchronize",
    "standin",
]

BACKENDS = ("numpy", "cupy", "standin")


class BackendError(RuntimeError):
    """The requested backend or device cannot be used here."""


# --------------------------------------------------------------------------
# CuPy, imported lazily so that NumPy-only users never need it.
# --------------------------------------------------------------------------
_CUPY_HINT = (
    "Install CuPy for your CUDA version, e.g. `pip install cupy-cuda12x` "
    "(CUDA 12) or `pip install cupy-cuda11x` (CUDA 11), on a machine with an "
    "NVIDIA GPU. To run on the CPU instead, use the NumPy backend: "
    "`tinyalex.set_backend('numpy')`, `TINYALEX_BACKEND=numpy`, or "
    "`--backend numpy` on the command line."
)


def _import_cupy():
    """Return the cupy module, or raise BackendError with install advice."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA install
        raise BackendError(f"CuPy is not available ({exc}). {_CUPY_HINT}") from exc
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise BackendError(f"CuPy is installed but no CUDA device can be used ({exc}). {_CUPY_HINT}") from exc
    if n < 1:
        raise BackendError(f"CuPy is installed but found no CUDA device. {_CUPY_HINT}")
    return cupy


def _cupy_with_devices():
    """The cupy module if it is loaded and sees a CUDA device, else None."""
    cp = _cupy_if_loaded()
    if cp is None:
        return None
    try:
        return cp if cp.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:
        return None


def cuda_devices():
    """["0: NVIDIA H200", ...]: the CUDA devices CuPy sees (BackendError without CuPy or GPU)."""
    cp = _import_cupy()
    names = []
    for i in range(cp.cuda.runtime.getDeviceCount()):
        name = cp.cuda.runtime.getDeviceProperties(i)["name"]
        names.append(f"{i}: {name.decode() if isinstance(name, bytes) else name}")
    return names


def check_devices(devices, name=None):
    """Refuse device numbers this machine does not have, naming the devices it has.

    On the stand-in any device number >= 0 exists; on CuPy only the GPUs found.
    """
    name = name or get_backend()
    bad = [d for d in devices if int(d) < 0]
    if bad:
        raise BackendError(f"device numbers must be >= 0, got {bad[0]}")
    if name != "cupy":
        return
    found = cuda_devices()
    missing = [d for d in devices if int(d) >= len(found)]
    if missing:
        raise BackendError(f"CUDA device {', '.join(map(str, missing))} does not exist; this machine has "
                           f"{len(found)}: {'; '.join(found)}. Choose from these, e.g. --devices 0")


def _cupy_if_loaded():
    """The cupy module if it was already imported by someone, else None.

    Checking ``sys.modules`` keeps ``get_array_module`` cheap and keeps NumPy
    users from importing CuPy by accident.
    """
    return sys.modules.get("cupy")


# --------------------------------------------------------------------------
# The current backend.
# --------------------------------------------------------------------------
def _initial_backend():
    name = os.environ.get("TINYALEX_BACKEND", "numpy").strip().lower() or "numpy"
    if name not in BACKENDS:
        raise BackendError(f"TINYALEX_BACKEND={name!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    return name


_backend = {"name": None, "device": 0}


def available_backends():
    """Names of the backends that work on this machine (cupy only with a GPU)."""
    names = ["numpy", "standin"]
    try:
        _import_cupy()
        names.insert(1, "cupy")
    except BackendError:
        pass
    return names


def set_backend(name: str, device: int = 0) -> None:
    """Choose where new arrays are created: ``"numpy"``, ``"cupy"`` or ``"standin"``.

    ``device`` is the CuPy device id (or the stand-in's device number). Raises
    :class:`BackendError` with install advice if CuPy or a GPU is missing.
    """
    name = str(name).lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "cupy":
        cp = _import_cupy()
        n = cp.cuda.runtime.getDeviceCount()
        if not 0 <= device < n:
            raise BackendError(f"CUDA device {device} does not exist; this machine has {n} (0..{n - 1})")
    if device < 0:
        raise BackendError(f"device must be >= 0, got {device}")
    _backend["name"], _backend["device"] = name, int(device)
    # ``device`` becomes the current device, as cupy.cuda.Device(d).use() does,
    # so asarray/zeros/current_device agree with to_device's default.
    if name == "standin":
        standin.set_current_device(device)
    elif name == "cupy":
        cp.cuda.Device(device).use()


def get_backend() -> str:
    """The current backend's name."""
    if _backend["name"] is None:
        _backend["name"] = _initial_backend()
    return _backend["name"]


@contextlib.contextmanager
def use_backend(name: str, device: int = 0):
    """Temporarily switch backend: ``with use_backend("standin"): ...``."""
    old = (get_backend(), _backend["device"], standin.current_device())
    set_backend(name, device)
    try:
        yield
    finally:
        _backend["name"], _backend["device"] = old[:2]
        standin.set_current_device(old[2])


def get_array_module(*arrays):
    """The array module (numpy, cupy or the stand-in) for these arrays.

    Like ``chainer.backend.get_array_module``: layers call it on their inputs
    so that the same code runs wherever the data lives.
    """
    for a in arrays:
        if isinstance(a, DeviceArray):
            return standin
    cp = _cupy_if_loaded()
    if cp is not None:
        for a in arrays:
            if isinstance(a, cp.ndarray):
                return cp
    return numpy


def is_device_array(x) -> bool:
    """True for CuPy arrays and stand-in DeviceArrays."""
    if isinstance(x, DeviceArray):
        return True
    cp = _cupy_if_loaded()
    return cp is not None and isinstance(x, cp.ndarray)


def device_of(x):
    """The device number of an array, or None for a host (NumPy) array."""
    if isinstance(x, DeviceArray):
        return x.device
    cp = _cupy_if_loaded()
    if cp is not None and isinstance(x, cp.ndarray):
        return x.device.id
    return None


def current_device() -> int:
    """The current device of the current backend (0 for NumPy)."""
    name = get_backend()
    if name == "standin":
        return standin.current_device()
    if name == "cupy":
        return _import_cupy().cuda.Device().id
    return 0


@contextlib.contextmanager
def device(dev):
    """Make ``dev`` the current device inside the block.

    It sets both devices, whatever the global backend: CuPy's
    (``cupy.cuda.Device(dev)``, when CuPy is loaded and sees a GPU) and the
    stand-in's (where new DeviceArrays are created and checked against).
    Library code that runs a two-device model with another global backend
    thus still runs each tower on its own GPU. ``dev=None`` does nothing (the
    NumPy case): pass ``device_of(x)``.
    """
    if dev is None:
        yield
        return
    old = standin.current_device()
    standin.set_current_device(dev)
    try:
        cp = _cupy_with_devices()
        if cp is not None:
            with cp.cuda.Device(dev):
                yield
        else:
            yield
    finally:
        standin.set_current_device(old)


def to_device(x, dev=None, backend=None):
    """Copy an array to ``dev`` of the backend (explicit transfer).

    Host -> device, device -> device, or (NumPy backend) a no-op returning
    ``x``. ``dev=None`` means the backend's default device.
    """
    name = backend or get_backend()
    if dev is None:
        dev = _backend["device"]
    if name == "numpy":
        return to_host(x)
    if name == "standin":
        return standin.copy_to_device(x, dev)
    cp = _import_cupy()
    if not isinstance(x, cp.ndarray):
        with cp.cuda.Device(dev):
            return cp.asarray(x)
    if x.device.id == dev:
        return x
    # Device to device: the copy runs on the destination's stream, which knows
    # nothing of the work still queued on the source's stream (the layer that
    # computed x). An event recorded there orders the copy after it, without
    # making the host wait.
    with cp.cuda.Device(x.device.id):
        ready = cp.cuda.get_current_stream().record()
    with cp.cuda.Device(dev):
        cp.cuda.get_current_stream().wait_event(ready)
        return x.copy()


def backend_of(x) -> str:
    """"numpy", "cupy" or "standin": which backend an array belongs to."""
    if isinstance(x, DeviceArray):
        return "standin"
    cp = _cupy_if_loaded()
    if cp is not None and isinstance(x, cp.ndarray):
        return "cupy"
    return "numpy"


def to_device_of(x, ref):
    """Copy ``x`` (host or device) to the backend and device of the array ``ref``."""
    return to_device(x, device_of(ref), backend_of(ref))


def to_host(x):
    """Copy an array to a host NumPy array (explicit transfer); NumPy input is returned as is."""
    if isinstance(x, DeviceArray):
        return x.get()
    cp = _cupy_if_loaded()
    if cp is not None and isinstance(x, cp.ndarray):
        return cp.asnumpy(x)
    return numpy.asarray(x)


def asarray(x, dtype=None):
    """Put host data on the current backend and device (explicit transfer)."""
    out = to_device(x, current_device() if get_backend() != "numpy" else None)
    if dtype is not None and out.dtype != numpy.dtype(dtype):
        out = out.astype(dtype)
    return out


def zeros(shape, dtype=numpy.float32):
    """A zero array on the current backend and device."""
    name = get_backend()
    if name == "numpy":
        return numpy.zeros(shape, dtype)
    if name == "standin":
        return standin.zeros(shape, dtype)
    return _import_cupy().zeros(shape, dtype)


def xp_for_backend(name=None):
    """The array module of a backend by name (default: the current one)."""
    name = name or get_backend()
    if name == "numpy":
        return numpy
    if name == "standin":
        return standin
    return _import_cupy()


def synchronize(devices=None):
    """Wait until every GPU in ``devices`` (default: the current one) has finished its work.

    For timing: a model on devices (0, 1) must wait for both. A no-op on NumPy
    and the stand-in, which run synchronously.
    """
    cp = _cupy_if_loaded()
    if cp is None or get_backend() != "cupy":
        return
    for d in ([cp.cuda.Device().id] if devices is None else devices):
        cp.cuda.Device(int(d)).synchronize()


class DeviceGenerators:
    """One random generator per device, created once, from one seed; its state goes into checkpoints.

    ``gens.on(x)`` is the generator of the device ``x`` lives on:
    ``numpy.random.Generator`` on the host, ``cupy.random.Generator`` on a GPU,
    the stand-in's on a stand-in device. It is made on first use there (for
    CuPy that allocates and initialises cuRAND states, too costly to repeat
    every batch) and drawn from ever after. Device 0 (and the host) is seeded
    with ``seed`` itself, so the stand-in draws what NumPy draws; device d > 0
    with ``[seed, d]``, so the towers draw different masks.
    """

    def __init__(self, seed=None):
        self.seed = seed
        self.generators = {}          # "numpy:0", "cupy:1", "standin:1" -> generator

    def on(self, x):
        """The generator of ``x``'s backend and device (created now if it is the first draw there)."""
        return self._get(backend_of(x), device_of(x) or 0)

    def _get(self, name, dev):
        key = f"{name}:{dev}"
        if key not in self.generators:
            seed = self.seed if self.seed is None or dev == 0 else [self.seed, dev]
            with device(None if name == "numpy" else dev):
                self.generators[key] = xp_for_backend(name).random.default_rng(seed)
        return self.generators[key]

    def state_dict(self):
        """{"cupy:1": host array, ...}: each generator's state, for ``checkpoint.npz`` (no pickle needed)."""
        state = {}
        for key, gen in self.generators.items():
            if key.startswith("cupy:"):
                # cupy.random.Generator has no public state: its cuRAND states are this device array
                state[key] = to_host(gen.bit_generator._state)
            else:
                bits = gen.state_dict() if key.startswith("standin:") else gen.bit_generator.state
                state[key] = numpy.array(json.dumps(bits))
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned."""
        for key, value in state.items():
            name, dev = key.split(":")
            gen = self._get(name, int(dev))
            if name == "cupy":
                with device(int(dev)):
                    gen.bit_generator._state[...] = to_device(value, int(dev), "cupy")
            elif name == "standin":
                gen.load_state_dict(json.loads(str(value[()])))
            else:
                gen.bit_generator.state = json.loads(str(value[()]))
