"""The array backend: NumPy, CuPy, or a CPU stand-in for several devices.

Every layer in tinyalex takes its array module from the arrays it is given::

    xp = get_array_module(x)      # numpy, cupy, or the device stand-in
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
    :class:`DeviceArray`, a NumPy array tagged with a device number. It
    behaves as CuPy does on a machine with several GPUs, but runs on the CPU:

    * an operation that mixes arrays of two devices raises;
    * an operation on arrays of device ``d`` while the current device is not
      ``d`` raises (CuPy: "Array device must be same as the current device");
    * mixing a device array with a host (NumPy) array raises;
    * converting a device array to NumPy implicitly (``np.asarray(x)``,
      ``float(x)``) raises; :func:`to_host` (or ``x.get()``) is the explicit
      way, as in CuPy.

    The test suite runs the two-tower AlexNet under the stand-in, so any hidden
    device mix-up or implicit transfer fails on a laptop with no GPU.

Choosing the backend
--------------------
``TINYALEX_BACKEND=numpy|cupy|standin`` in the environment, or
``tinyalex.set_backend("cupy", device=0)``. The backend decides where *new*
arrays (parameters, data batches) are created: :func:`asarray` and
:func:`zeros` put them on the current backend and device.
"""
from __future__ import annotations

import contextlib
import os
import threading
from types import SimpleNamespace

import numpy

__all__ = [
    "BackendError",
    "DeviceMismatchError",
    "ImplicitTransferError",
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
    "standin",
]

BACKENDS = ("numpy", "cupy", "standin")


class BackendError(RuntimeError):
    """The requested backend or device cannot be used here."""


class DeviceMismatchError(ValueError):
    """An operation mixed arrays of different devices (or host and device)."""


class ImplicitTransferError(TypeError):
    """A device array was converted to a host array without an explicit call."""


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


def _cupy_if_loaded():
    """The cupy module if it was already imported by someone, else None.

    Checking ``sys.modules`` keeps ``get_array_module`` cheap and keeps NumPy
    users from importing CuPy by accident.
    """
    import sys

    return sys.modules.get("cupy")


# --------------------------------------------------------------------------
# The CPU stand-in for several devices.
# --------------------------------------------------------------------------
_state = threading.local()


def _standin_current() -> int:
    return getattr(_state, "standin_device", 0)


def _unwrap(obj, dev_holder):
    """Replace DeviceArrays in obj (recursively in lists/tuples) by their data.

    dev_holder is a one-element list collecting the device seen; a second,
    different device, or a host ndarray, raises.
    """
    if isinstance(obj, DeviceArray):
        if dev_holder[0] is None:
            dev_holder[0] = obj.device
        elif dev_holder[0] != obj.device:
            raise DeviceMismatchError(
                f"operation mixes arrays on device {dev_holder[0]} and device {obj.device}; "
                "move one explicitly with tinyalex.backend.to_device(x, device)"
            )
        return obj._data
    if isinstance(obj, numpy.ndarray):
        if obj.ndim == 0:  # numpy scalars behave like Python scalars
            return obj
        raise DeviceMismatchError(
            f"operation mixes a device array with a host (NumPy) array of shape {obj.shape}; "
            "move it explicitly with tinyalex.backend.to_device(x, device)"
        )
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, dev_holder) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, dev_holder) for k, v in obj.items()}
    return obj


def _wrap(obj, dev):
    if isinstance(obj, numpy.ndarray):
        return DeviceArray(obj, dev)
    if isinstance(obj, numpy.generic):
        # Reductions give NumPy scalars; CuPy gives 0-d device arrays. Keep them on the device.
        return DeviceArray(numpy.asarray(obj), dev)
    if isinstance(obj, tuple):
        return tuple(_wrap(o, dev) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o, dev) for o in obj]
    return obj


def _check_current(dev):
    cur = _standin_current()
    if dev is not None and dev != cur:
        raise DeviceMismatchError(
            f"array is on device {dev} but the current device is {cur}; "
            f"run the operation inside `with tinyalex.backend.device({dev}):` "
            "(CuPy: 'Array device must be same as the current device')"
        )


def _apply(func, args, kwargs):
    """Run a NumPy function on unwrapped data and wrap the result."""
    dev = [None]
    args = _unwrap(args, dev)
    kwargs = _unwrap(kwargs, dev)
    _check_current(dev[0])
    out_dev = dev[0] if dev[0] is not None else _standin_current()
    return _wrap(func(*args, **kwargs), out_dev)


class DeviceArray(numpy.lib.mixins.NDArrayOperatorsMixin):
    """A NumPy array that lives on a (pretend) device, for testing on the CPU.

    Arithmetic, ufuncs and NumPy functions work as usual on arrays of one
    device; mixing devices, mixing with host arrays, or implicit conversion to
    NumPy raises, exactly where CuPy would fail or silently copy.
    """

    __slots__ = ("_data", "device")

    def __init__(self, data, device):
        if isinstance(data, DeviceArray):
            data = data._data
        self._data = data
        self.device = int(device)

    # -- explicit transfer, as in CuPy -----------------------------------
    def get(self):
        """Copy to a host NumPy array (explicit, like ``cupy.ndarray.get``)."""
        return self._data.copy()

    # -- implicit transfers raise ----------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise ImplicitTransferError(
            "Implicit conversion of a device array to a NumPy array is not allowed "
            f"(device {self.device}). Use tinyalex.backend.to_host(x) or x.get() explicitly."
        )

    def _no_scalar(self, kind):
        raise ImplicitTransferError(
            f"{kind}() of a device array reads it back to the host implicitly "
            f"(device {self.device}); use x.item() or tinyalex.backend.to_host(x) explicitly."
        )

    def __float__(self):
        self._no_scalar("float")

    def __int__(self):
        self._no_scalar("int")

    def __bool__(self):
        self._no_scalar("bool")

    def __index__(self):
        self._no_scalar("index")

    def item(self, *args):
        """Explicit read of one element to the host (as ``cupy.ndarray.item``)."""
        return self._data.item(*args)

    def tolist(self):
        return self._data.tolist()

    # -- NumPy protocols ----------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        dev = [None]
        inputs = _unwrap(inputs, dev)
        if out is not None:
            kwargs["out"] = _unwrap(out, dev)
        _check_current(dev[0])
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result, dev[0])

    def __array_function__(self, func, types, args, kwargs):
        return _apply(func, args, kwargs)

    # -- the ndarray surface --------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    strides = property(lambda self: self._data.strides)
    itemsize = property(lambda self: self._data.itemsize)
    nbytes = property(lambda self: self._data.nbytes)
    flags = property(lambda self: self._data.flags)
    T = property(lambda self: DeviceArray(self._data.T, self.device))

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"DeviceArray(device={self.device}, {self._data!r})"

    def __getitem__(self, key):
        dev = [self.device]
        key = _unwrap(key, dev)
        return _wrap(self._data[key], self.device)

    def __setitem__(self, key, value):
        dev = [self.device]
        key = _unwrap(key, dev)
        value = _unwrap(value, dev)
        _check_current(self.device)
        self._data[key] = value

    def __iter__(self):
        for row in self._data:
            yield _wrap(row, self.device)

    def __getattr__(self, name):
        # Methods (reshape, sum, astype, transpose, ...) run on the data, with
        # the same device checks as functions.
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._data, name)
        if callable(attr):
            def method(*args, **kwargs):
                dev = [self.device]
                args = _unwrap(args, dev)
                kwargs = _unwrap(kwargs, dev)
                _check_current(self.device)
                return _wrap(attr(*args, **kwargs), self.device)
            return method
        return _wrap(attr, self.device)

    def __getstate__(self):
        raise ImplicitTransferError("a device array cannot be pickled; save tinyalex.backend.to_host(x) instead")


def _creator(fn):
    """Wrap a NumPy creation function so it allocates on the current device."""
    def create(*args, **kwargs):
        dev = [None]
        args = _unwrap(args, dev)
        kwargs = _unwrap(kwargs, dev)
        return DeviceArray(numpy.asarray(fn(*args, **kwargs)), _standin_current())
    create.__name__ = fn.__name__
    create.__doc__ = f"Like numpy.{fn.__name__}, on the current stand-in device."
    return create


def _standin_asarray(a, dtype=None):
    """Like ``cupy.asarray``: host data is refused, device data must be local."""
    if isinstance(a, DeviceArray):
        _check_current(a.device)
        return a if dtype is None or a.dtype == dtype else DeviceArray(a._data.astype(dtype), a.device)
    if isinstance(a, numpy.ndarray) and a.ndim > 0:
        raise DeviceMismatchError(
            "xp.asarray() of a host array inside device code; move data with "
            "tinyalex.backend.to_device(x, device) explicitly"
        )
    return DeviceArray(numpy.asarray(a, dtype=dtype), _standin_current())


class _StandinGenerator:
    """``numpy.random.Generator`` whose draws land on the current device."""

    def __init__(self, seed=None):
        self._gen = numpy.random.default_rng(seed)

    @property
    def bit_generator(self):
        return self._gen.bit_generator

    def __getattr__(self, name):
        fn = getattr(self._gen, name)

        def draw(*args, **kwargs):
            return DeviceArray(numpy.asarray(fn(*args, **kwargs)), _standin_current())
        return draw


class _StandinModule(SimpleNamespace):
    """The ``xp`` module for DeviceArrays: NumPy's functions plus device rules."""

    def __getattr__(self, name):
        # Everything not defined here is NumPy's own: dtypes, constants, and
        # functions, which dispatch to DeviceArray.__array_function__.
        return getattr(numpy, name)


def _make_standin_module():
    def as_strided(x, shape=None, strides=None, **kw):
        if not isinstance(x, DeviceArray):
            raise DeviceMismatchError("as_strided on a host array inside device code")
        _check_current(x.device)
        return DeviceArray(numpy.lib.stride_tricks.as_strided(x._data, shape, strides, **kw), x.device)

    def sliding_window_view(x, *args, **kw):
        return _apply(numpy.lib.stride_tricks.sliding_window_view, (x,) + args, kw)

    mod = _StandinModule(
        __name__="tinyalex.backend.standin",
        ndarray=DeviceArray,
        asarray=_standin_asarray,
        array=lambda a, dtype=None, copy=True: _standin_asarray(numpy.array(a, dtype=dtype) if not isinstance(a, DeviceArray) and numpy.ndim(a) == 0 else a, dtype).copy(),
        lib=SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=as_strided, sliding_window_view=sliding_window_view)),
        random=SimpleNamespace(default_rng=_StandinGenerator),
    )
    for name in ("zeros", "ones", "empty", "full", "arange", "eye", "linspace", "identity"):
        setattr(mod, name, _creator(getattr(numpy, name)))
    return mod


standin = _make_standin_module()
"""The array module of the CPU device stand-in (what ``get_array_module`` returns for DeviceArrays)."""


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
        _state.standin_device = int(device)
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
    old = (get_backend(), _backend["device"], _standin_current())
    set_backend(name, device)
    try:
        yield
    finally:
        _backend["name"], _backend["device"], _state.standin_device = old


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
        return _standin_current()
    if name == "cupy":
        return _import_cupy().cuda.Device().id
    return 0


@contextlib.contextmanager
def device(dev):
    """Make ``dev`` the current device inside the block.

    On CuPy this is ``cupy.cuda.Device(dev)``; on the stand-in it sets the
    device new arrays are created on and checked against; on NumPy (``dev`` is
    None or any number) it does nothing. Arrays' own device is what counts for
    the stand-in: pass ``device_of(x)``.
    """
    if dev is None:
        yield
        return
    old = _standin_current()
    _state.standin_device = int(dev)
    try:
        if get_backend() == "cupy":
            with _import_cupy().cuda.Device(dev):
                yield
        else:
            yield
    finally:
        _state.standin_device = old


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
        data = x._data if isinstance(x, DeviceArray) else numpy.asarray(x)
        if isinstance(x, DeviceArray) and x.device == dev:
            return x
        return DeviceArray(data.copy(), dev)
    cp = _import_cupy()
    with cp.cuda.Device(dev):
        if isinstance(x, cp.ndarray) and x.device.id == dev:
            return x
        return cp.asarray(x) if not isinstance(x, cp.ndarray) else x.copy()


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


def synchronize(x=None):
    """Wait for the GPU (timing); a no-op on NumPy and the stand-in."""
    cp = _cupy_if_loaded()
    if cp is not None and get_backend() == "cupy":
        cp.cuda.Device().synchronize()
