"""The CPU stand-in for several GPUs: arrays that follow CuPy's rules, and counters.

A :class:`DeviceArray` is a NumPy array tagged with a device number. This
module is its array module, as ``cupy`` is the array module of CuPy arrays:
``get_array_module(x)`` returns it for DeviceArrays, and layer code calls
``xp.maximum``, ``xp.zeros``, ``xp.random.default_rng`` on it. It runs on the
CPU and refuses what CuPy 13/14 would refuse, or would do only through a
hidden copy:

* an operation that mixes arrays of two devices, or uses an array of device
  ``d`` while another device is current (CuPy: peer access, a
  ``PerformanceWarning``, or ``ValueError`` where the GPUs have no peer access);
* a host (NumPy) array in device code, including 0-d ones (CuPy:
  ``TypeError: Unsupported type <class 'numpy.ndarray'>``); NumPy scalars and
  Python numbers are fine;
* implicit conversion to the host (``np.asarray(x)``, ``float(x)``,
  ``bool(x)``, pickling): use :func:`tinyalex.backend.to_host` or ``x.item()``;
* a function, submodule name or keyword argument that CuPy 13/14 lack
  (the list is ``tinyalex/cupy_api.txt``, made by ``tools/cupy_api.py`` from
  CuPy's sources), ufunc keywords other than ``out``, ``dtype``, ``casting``;
* a random-generator method that ``cupy.random.Generator`` lacks
  (``normal``, ``permutation``, ``choice``, ``shuffle``, ...), and a generator
  used while another device is current (CuPy: "This Generator state is
  allocated in a different device").

It also counts, inside ``with count() as c:``, the device operations
(``c.device_ops``: every call that would launch work on a GPU; a view or
reshape that copies nothing counts 0, an allocation with ``empty`` counts 0)
and the host synchronisations (``c.host_syncs``: every read of a device
value by the host: ``.item()``, ``.get()``, ``to_host``, printing, and
``float()``/``bool()``, which are also refused; and the functions that read
back inside CuPy, such as ``bincount``). It counts one operation per array
call; CuPy may launch a few kernels for one call.

It does not model speed, memory, asynchronous execution or CuPy's random
numbers: a seeded stand-in generator draws what ``numpy.random.default_rng``
draws. It is a correctness and counting tool, not a GPU emulator.
"""
from __future__ import annotations

import collections
import contextlib
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy

# The tinyalex.standin module is itself the "xp" of DeviceArrays: names not
# defined here resolve through __getattr__ at the end of this file.


class DeviceMismatchError(ValueError):
    """An operation mixed arrays of different devices (or host and device)."""


class ImplicitTransferError(TypeError):
    """A device array was converted to a host array without an explicit call."""


class NotInCupyError(AttributeError):
    """The code used a function, argument or method that CuPy does not have."""


# --------------------------------------------------------------------------
# CuPy's API: the names and keywords CuPy 13 and 14 both have.
# --------------------------------------------------------------------------
def _read_cupy_api():
    """{"cupy.sum": ("a", "axis", ...) or None (any keywords), ...} from cupy_api.txt."""
    api = {}
    for line in (Path(__file__).with_name("cupy_api.txt")).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, args = line.partition("(")
        api[name] = tuple(a.strip() for a in args.rstrip(")").split(",") if a.strip()) if args else None
    return api


CUPY_API = _read_cupy_api()
UFUNC_KEYWORDS = ("out", "dtype", "casting")      # cupy/_core/_kernel.pyx: ufunc.__call__

# CuPy functions that read a device value back to the host before they return
# (e.g. cupy.bincount: ``if (x < 0).any()`` and ``int(cupy.max(x))``).
SYNCING_FUNCTIONS = {"bincount": 2, "nonzero": 1, "argwhere": 1, "flatnonzero": 1, "unique": 1}
# Allocation without a kernel (CuPy's memory pool only).
ALLOCATION_ONLY = {"empty", "empty_like"}


def _cupy_name(func_name, prefixes=("cupy", "cupy.linalg", "cupy.lib.stride_tricks")):
    """The CuPy name of a NumPy function, or None if CuPy lacks it."""
    for p in prefixes:
        if f"{p}.{func_name}" in CUPY_API:
            return f"{p}.{func_name}"
    return None


def _check_cupy_call(func_name, kwargs):
    name = _cupy_name(func_name)
    if name is None:
        raise NotInCupyError(f"CuPy 13/14 have no {func_name}(); the stand-in refuses what a GPU run would refuse "
                             "(see tinyalex/cupy_api.txt)")
    allowed = CUPY_API[name]
    bad = [k for k in kwargs if allowed is not None and k not in allowed]
    if bad:
        raise NotInCupyError(f"{name}() has no argument {', '.join(map(repr, bad))} in CuPy 13/14; "
                             f"it accepts ({', '.join(allowed)})")


# --------------------------------------------------------------------------
# Counters of device operations and host synchronisations.
# --------------------------------------------------------------------------
class Counts:
    """What ran inside one ``with count():`` block."""

    def __init__(self):
        self.device_ops = 0
        self.host_syncs = 0
        self.ops_by_name = collections.Counter()
        self.syncs_by_name = collections.Counter()

    def __repr__(self):
        return f"Counts(device_ops={self.device_ops}, host_syncs={self.host_syncs})"


_active = []          # the Counts of every open count() block (they nest)


@contextlib.contextmanager
def count():
    """Count device operations and host synchronisations in the block::

        with standin.count() as c:
            y = x + 1
        c.device_ops, c.host_syncs      # 1, 0
    """
    counts = Counts()
    _active.append(counts)
    try:
        yield counts
    finally:
        _active.remove(counts)


def _op(name, n=1):
    for c in _active:
        c.device_ops += n
        c.ops_by_name[name] += n


def _sync(name, n=1):
    for c in _active:
        c.host_syncs += n
        c.syncs_by_name[name] += n


# --------------------------------------------------------------------------
# The current device (per thread, as CuPy's).
# --------------------------------------------------------------------------
_state = threading.local()


def current_device() -> int:
    """The stand-in's current device (0 unless set)."""
    return getattr(_state, "device", 0)


def set_current_device(dev: int) -> None:
    """Make ``dev`` current (``tinyalex.backend.device`` does this in a with block)."""
    _state.device = int(dev)


def _check_current(dev):
    cur = current_device()
    if dev is not None and dev != cur:
        raise DeviceMismatchError(
            f"array is on device {dev} but the current device is {cur}; "
            f"run the operation inside `with tinyalex.backend.device({dev}):` "
            f"(CuPy: 'The device where the array resides ({dev}) is different from the current device ({cur})')"
        )


# --------------------------------------------------------------------------
# Unwrapping arguments, wrapping results.
# --------------------------------------------------------------------------
def _unwrap(obj, dev_holder):
    """Replace DeviceArrays in obj (recursively in lists/tuples/dicts) by their data.

    dev_holder is a one-element list collecting the device seen; a second,
    different device, or a host ndarray (also a 0-d one), raises.
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
        raise DeviceMismatchError(
            f"operation mixes a device array with a host (NumPy) array of shape {obj.shape}; "
            "move it explicitly with tinyalex.backend.to_device(x, device)"
            + ("; for a number use a NumPy scalar (x[()]) or a Python float" if obj.ndim == 0 else "")
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


def _arrays(obj):
    """The NumPy arrays inside unwrapped arguments."""
    if isinstance(obj, numpy.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _arrays(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _arrays(o)


def _is_view(result, inputs):
    """True when ``result`` only looks at memory of ``inputs`` (no data was copied)."""
    if isinstance(result, (tuple, list)):
        return len(result) > 0 and all(_is_view(r, inputs) for r in result)
    if not isinstance(result, numpy.ndarray):
        return False
    return any(result is a or (result.base is not None and numpy.may_share_memory(result, a)) for a in inputs)


def _count_call(name, result, inputs, kwargs):
    """Count one call: a view is free, an allocation-only call is free, anything else is one op."""
    if "out" in kwargs or result is None:
        _op(name)
    elif name not in ALLOCATION_ONLY and not _is_view(result, list(inputs)):
        _op(name)
    if name in SYNCING_FUNCTIONS:
        _sync(name, SYNCING_FUNCTIONS[name])


def _apply(func, args, kwargs):
    """Run a NumPy function on unwrapped data, with CuPy's rules, and wrap the result."""
    _check_cupy_call(func.__name__, kwargs)
    dev = [None]
    args = _unwrap(args, dev)
    kwargs = _unwrap(kwargs, dev)
    _check_current(dev[0])
    out_dev = dev[0] if dev[0] is not None else current_device()
    result = func(*args, **kwargs)
    _count_call(func.__name__, result, _arrays(args), kwargs)
    return _wrap(result, out_dev)


# --------------------------------------------------------------------------
# The array.
# --------------------------------------------------------------------------
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
        _sync("get")
        return self._data.copy()

    def item(self, *args):
        """Explicit read of one element to the host (as ``cupy.ndarray.item``)."""
        _sync("item")
        return self._data.item(*args)

    def tolist(self):
        _sync("tolist")
        return self._data.tolist()

    # -- implicit transfers raise ----------------------------------------
    def __array__(self, dtype=None, copy=None):
        _sync("__array__")
        raise ImplicitTransferError(
            "Implicit conversion of a device array to a NumPy array is not allowed "
            f"(device {self.device}). Use tinyalex.backend.to_host(x) or x.get() explicitly."
        )

    def _no_scalar(self, kind):
        _sync(kind)
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

    def __repr__(self):
        _sync("repr")
        return f"DeviceArray(device={self.device}, {self._data!r})"

    def __getstate__(self):
        raise ImplicitTransferError("a device array cannot be pickled; save tinyalex.backend.to_host(x) instead")

    # -- NumPy protocols ----------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        bad = [k for k in kwargs if k not in UFUNC_KEYWORDS]
        if bad:
            raise NotInCupyError(f"CuPy's ufuncs take only {', '.join(UFUNC_KEYWORDS)} as keywords, not "
                                 f"{', '.join(map(repr, bad))}")
        if method != "__call__" and f"cupy.ufunc.{method}" not in CUPY_API:
            raise NotInCupyError(f"CuPy's ufuncs have no method {method!r}")
        out = kwargs.get("out")
        dev = [None]
        inputs = _unwrap(inputs, dev)
        if out is not None:
            kwargs["out"] = _unwrap(out, dev)
        _check_current(dev[0])
        result = getattr(ufunc, method)(*inputs, **kwargs)
        _op(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")
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

    def __getitem__(self, key):
        dev = [self.device]
        key = _unwrap(key, dev)
        result = self._data[key]
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, (numpy.ndarray, list)) for k in keys):      # advanced indexing: a gather kernel
            _op("getitem")
            if any(getattr(k, "dtype", None) == bool for k in keys):      # a mask: CuPy reads its count back
                _sync("getitem[mask]")
        return _wrap(result, self.device)     # basic indexing: a view, as in CuPy (also for one element)

    def __setitem__(self, key, value):
        dev = [self.device]
        key = _unwrap(key, dev)
        value = _unwrap(value, dev)
        _check_current(self.device)
        self._data[key] = value
        _op("setitem")

    def __iter__(self):
        for row in self._data:
            yield _wrap(row, self.device)

    def __getattr__(self, name):
        # Methods (reshape, sum, astype, transpose, ...) run on the data, with
        # the same device checks and counting as functions.
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._data, name)
        if callable(attr):
            def method(*args, **kwargs):
                dev = [self.device]
                args = _unwrap(args, dev)
                kwargs = _unwrap(kwargs, dev)
                _check_current(self.device)
                result = attr(*args, **kwargs)
                _count_call(name, result, [self._data], kwargs)
                return _wrap(result, self.device)
            return method
        return _wrap(attr, self.device)


# --------------------------------------------------------------------------
# Transfers (tinyalex.backend.to_device calls these).
# --------------------------------------------------------------------------
def copy_to_device(x, dev):
    """Copy a host array, or a DeviceArray of another device, to device ``dev`` (one op)."""
    if isinstance(x, DeviceArray):
        if x.device == dev:
            return x
        data = x._data
    else:
        data = numpy.asarray(x)
    _op("to_device")
    return DeviceArray(data.copy(), dev)


# --------------------------------------------------------------------------
# Creation functions and asarray.
# --------------------------------------------------------------------------
def _creator(fn):
    """Wrap a NumPy creation function so it allocates on the current device."""
    def create(*args, **kwargs):
        _check_cupy_call(fn.__name__, kwargs)
        dev = [None]
        args = _unwrap(args, dev)
        kwargs = _unwrap(kwargs, dev)
        if fn.__name__ not in ALLOCATION_ONLY:
            _op(fn.__name__)
        return DeviceArray(numpy.asarray(fn(*args, **kwargs)), current_device())
    create.__name__ = fn.__name__
    create.__doc__ = f"Like numpy.{fn.__name__}, on the current stand-in device."
    return create


for _name in ("zeros", "ones", "empty", "full", "arange", "eye", "linspace", "identity"):
    globals()[_name] = _creator(getattr(numpy, _name))

ndarray = DeviceArray


def asarray(a, dtype=None):
    """Like ``cupy.asarray``: host arrays are refused in device code, device data must be local."""
    if isinstance(a, DeviceArray):
        _check_current(a.device)
        if dtype is None or a.dtype == dtype:
            return a
        _op("astype")
        return DeviceArray(a._data.astype(dtype), a.device)
    if isinstance(a, numpy.ndarray) and a.ndim > 0:
        raise DeviceMismatchError(
            "xp.asarray() of a host array inside device code; move data with "
            "tinyalex.backend.to_device(x, device) explicitly"
        )
    _op("asarray")                                      # a number copied to the device
    return DeviceArray(numpy.asarray(a, dtype=dtype), current_device())


def array(a, dtype=None, copy=True):
    """Like ``cupy.array``: a copy on the current device (host arrays refused, as in asarray)."""
    out = asarray(a, dtype)
    if copy and out is a:
        _op("copy")
        return DeviceArray(out._data.copy(), out.device)
    return out


# --------------------------------------------------------------------------
# Submodules: lib.stride_tricks, random, linalg.
# --------------------------------------------------------------------------
def _as_strided(x, shape=None, strides=None, **kw):
    _check_cupy_call("as_strided", kw)
    if not isinstance(x, DeviceArray):
        raise DeviceMismatchError("as_strided on a host array inside device code")
    _check_current(x.device)
    return DeviceArray(numpy.lib.stride_tricks.as_strided(x._data, shape, strides, **kw), x.device)


def _sliding_window_view(x, *args, **kw):
    return _apply(numpy.lib.stride_tricks.sliding_window_view, (x,) + args, kw)


lib = SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=_as_strided, sliding_window_view=_sliding_window_view))


class Generator:
    """A stand-in ``cupy.random.Generator``: NumPy's draws, CuPy's methods, bound to one device.

    Draws land on the generator's device, as in CuPy, where the cuRAND state
    lives on the device that was current when the generator was made.
    """

    def __init__(self, seed=None):
        self._gen = numpy.random.default_rng(seed)
        self.device = current_device()
        _op("default_rng", 2)           # CuPy: allocate the cuRAND states and initialise them (2 kernels)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if f"cupy.random.Generator.{name}" not in CUPY_API:
            have = sorted(n.rsplit(".", 1)[1] for n in CUPY_API if n.startswith("cupy.random.Generator."))
            raise NotInCupyError(f"cupy.random.Generator has no method {name!r} in CuPy 13/14; it has "
                                 f"{', '.join(have)}")
        fn = getattr(self._gen, name)

        def draw(*args, **kwargs):
            if current_device() != self.device:
                raise DeviceMismatchError(
                    f"a generator made on device {self.device} used while device {current_device()} is current "
                    "(CuPy: 'This Generator state is allocated in a different device'); make one per device")
            _op(f"random.{name}")
            return DeviceArray(numpy.asarray(fn(*args, **kwargs)), self.device)
        return draw

    def state_dict(self):
        """The state of the generator (NumPy's bit-generator state), for checkpoints."""
        return self._gen.bit_generator.state

    def load_state_dict(self, state):
        self._gen.bit_generator.state = state


class _Namespace:
    """A NumPy submodule seen through CuPy's list of names (``xp.linalg``)."""

    def __init__(self, prefix, module):
        self._prefix, self._module = prefix, module

    def __getattr__(self, name):
        if name.startswith("_") or f"{self._prefix}.{name}" not in CUPY_API:
            raise NotInCupyError(f"{self._prefix} has no {name!r} in CuPy 13/14 (see tinyalex/cupy_api.txt)")
        return getattr(self._module, name)


random = SimpleNamespace(default_rng=Generator, Generator=Generator)
linalg = _Namespace("cupy.linalg", numpy.linalg)


def __getattr__(name):
    """Everything not defined above is NumPy's own (dtypes, constants, functions that
    dispatch to DeviceArray.__array_function__), if CuPy 13/14 have it too."""
    if name.startswith("__") or f"cupy.{name}" not in CUPY_API:
        raise NotInCupyError(f"module 'cupy' has no attribute {name!r} in CuPy 13/14; the stand-in refuses it "
                             "as a GPU run would (see tinyalex/cupy_api.txt)")
    return getattr(numpy, name)
