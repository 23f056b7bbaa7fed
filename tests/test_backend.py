"""The array backend: choosing it, get_array_module, devices and explicit transfers.

The stand-in's own rules and counters are in tests/test_standin.py.
"""
import sys
import types

import numpy as np
import pytest

from tinyalex import backend
from tinyalex.backend import (BackendError, DeviceArray, device,
                              device_of, get_array_module, to_device, to_host)


def on(dev, data=(1.0, 2.0, 3.0)):
    return to_device(np.array(data), dev, "standin")


# -- explicit transfers ---------------------------------------------------------------
def test_explicit_reads_work():
    a = on(0)
    np.testing.assert_array_equal(to_host(a), [1, 2, 3])
    np.testing.assert_array_equal(a.get(), [1, 2, 3])
    assert a[1].item() == 2.0 and a.sum().item() == 6.0
    assert isinstance(to_host(a), np.ndarray)


def test_to_host_returns_a_copy():
    a = on(0)
    h = to_host(a)
    h[0] = 100.0
    assert a[0].item() == 1.0


def test_to_device_copies_between_devices():
    a = on(0)
    b = to_device(a, 1, "standin")
    assert device_of(a) == 0 and device_of(b) == 1
    with device(1):
        b[0] = 50.0
    assert a[0].item() == 1.0


def test_to_device_to_the_same_device_returns_the_array():
    a = on(1)
    assert to_device(a, 1, "standin") is a


def test_to_device_of_follows_a_reference_array():
    ref = on(1)
    moved = backend.to_device_of(np.zeros(2), ref)
    assert backend.backend_of(moved) == "standin" and device_of(moved) == 1
    assert isinstance(backend.to_device_of(np.zeros(2), np.ones(2)), np.ndarray)


def test_to_device_with_numpy_backend_gives_a_host_array():
    out = to_device(on(0), None, "numpy")
    assert isinstance(out, np.ndarray) and device_of(out) is None


def test_backend_of_and_device_of_name_where_an_array_lives():
    assert backend.backend_of(np.ones(2)) == "numpy" and device_of(np.ones(2)) is None
    assert backend.backend_of(on(1)) == "standin" and device_of(on(1)) == 1
    assert backend.is_device_array(on(0)) and not backend.is_device_array(np.ones(2))


# -- get_array_module ---------------------------------------------------------------
def test_get_array_module_returns_numpy_for_host_arrays_and_scalars():
    assert get_array_module(np.ones(2)) is np
    assert get_array_module(1.0, np.ones(2)) is np
    assert get_array_module() is np


def test_get_array_module_returns_the_standin_for_device_arrays():
    assert get_array_module(on(0)) is backend.standin
    assert get_array_module(np.ones(2), on(1)) is backend.standin


def test_standin_module_computes_like_numpy():
    xp = get_array_module(on(0))
    x = on(0, [[1.0, -2.0], [3.0, 4.0]])
    out = xp.where(x > 0, x, xp.zeros((), dtype=x.dtype))
    np.testing.assert_array_equal(to_host(out), [[1, 0], [3, 4]])
    assert isinstance(out, DeviceArray) and out.dtype == np.float64


def test_standin_keeps_float32():
    a = to_device(np.ones(3, np.float32), 0, "standin")
    assert (a * 2.5 + 1).dtype == np.float32


# -- choosing the backend -------------------------------------------------------------
def test_set_backend_rejects_unknown_names_naming_the_allowed_ones():
    with pytest.raises(BackendError, match=r"unknown backend 'torch'; choose one of numpy, cupy, standin"):
        backend.set_backend("torch")


def test_set_backend_rejects_a_negative_device():
    with pytest.raises(BackendError, match=r"device must be >= 0"):
        backend.set_backend("standin", -1)


def test_use_backend_switches_and_restores():
    with backend.use_backend("standin", 1):
        assert backend.get_backend() == "standin" and backend.current_device() == 1
        z = backend.zeros((2,))
        a = backend.asarray(np.ones(2), dtype=np.float32)
        assert device_of(z) == 1 and device_of(a) == 1 and a.dtype == np.float32
    assert backend.get_backend() == "numpy" and backend.standin.current_device() == 0
    assert isinstance(backend.zeros((2,)), np.ndarray)


def test_set_backend_device_is_the_default_for_new_arrays():
    with backend.use_backend("numpy"):
        backend.set_backend("standin", 1)
        assert device_of(backend.zeros(3)) == 1
        assert device_of(backend.to_device(np.ones(3))) == 1
    assert backend.standin.current_device() == 0


def _reinit(monkeypatch, value):
    monkeypatch.setenv("TINYALEX_BACKEND", value)
    monkeypatch.setitem(backend._backend, "name", None)      # as on a fresh import


def test_tinyalex_backend_environment_variable_is_honoured(monkeypatch):
    _reinit(monkeypatch, "standin")
    assert backend.get_backend() == "standin"
    assert isinstance(backend.zeros(2), DeviceArray)


def test_tinyalex_backend_is_case_and_space_tolerant(monkeypatch):
    _reinit(monkeypatch, " NumPy ")
    assert backend.get_backend() == "numpy"


def test_tinyalex_backend_with_an_unknown_name_says_what_is_allowed(monkeypatch):
    _reinit(monkeypatch, "tensorflow")
    with pytest.raises(BackendError, match=r"TINYALEX_BACKEND='tensorflow' is not a backend; choose one of numpy, cupy, standin"):
        backend.get_backend()


def test_missing_cupy_raises_with_install_advice_and_numpy_fallback(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)            # makes `import cupy` fail
    with pytest.raises(BackendError) as err:
        backend.set_backend("cupy")
    msg = str(err.value)
    assert "CuPy is not available" in msg
    assert "pip install cupy-cuda12x" in msg
    assert "set_backend('numpy')" in msg and "TINYALEX_BACKEND=numpy" in msg
    assert backend.get_backend() == "numpy"                    # unchanged


def test_cupy_without_a_gpu_raises_with_install_advice(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.SimpleNamespace(ndarray=type("ndarray", (), {}),
                                 cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(BackendError, match=r"no CUDA device can be used.*pip install cupy-cuda12x.*NumPy backend"):
        backend.set_backend("cupy")


def test_available_backends_lists_numpy_and_standin_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert backend.available_backends() == ["numpy", "standin"]


def test_xp_for_backend_names_the_module():
    assert backend.xp_for_backend("numpy") is np
    assert backend.xp_for_backend("standin") is backend.standin


def test_synchronize_is_a_no_op_off_the_gpu():
    assert backend.synchronize() is None


def test_tinyalex_backend_cupy_without_cupy_explains_at_first_use(monkeypatch):
    _reinit(monkeypatch, "cupy")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(BackendError, match=r"pip install cupy-cuda12x.*TINYALEX_BACKEND=numpy"):
        backend.zeros(3)


# -- CUDA devices, with a fake CuPy that records what it is asked -----------------------
class _FakeDevice:
    log = []

    def __init__(self, dev=None):
        self.id = 0 if dev is None else dev

    def __enter__(self):
        self.log.append(("enter", self.id))

    def __exit__(self, *exc):
        self.log.append(("exit", self.id))

    def synchronize(self):
        self.log.append(("synchronize", self.id))

    def use(self):
        pass


def _fake_cupy(monkeypatch, n_gpus):
    _FakeDevice.log = []
    runtime = types.SimpleNamespace(getDeviceCount=lambda: n_gpus,
                                    getDeviceProperties=lambda i: {"name": b"Fake GPU"})
    fake = types.SimpleNamespace(ndarray=type("ndarray", (), {}), cuda=types.SimpleNamespace(runtime=runtime,
                                                                                            Device=_FakeDevice))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    return fake


def test_device_switches_cupys_device_even_when_the_global_backend_is_numpy(monkeypatch):
    _fake_cupy(monkeypatch, 2)
    assert backend.get_backend() == "numpy"
    with device(1):
        assert backend.standin.current_device() == 1
    assert _FakeDevice.log == [("enter", 1), ("exit", 1)]


def test_device_leaves_cupy_alone_when_it_sees_no_gpu(monkeypatch):
    _fake_cupy(monkeypatch, 0)
    with device(1):
        pass
    assert _FakeDevice.log == []


def test_two_devices_on_a_one_gpu_machine_are_refused_naming_the_gpus_found(monkeypatch):
    _fake_cupy(monkeypatch, 1)
    with pytest.raises(BackendError, match=r"CUDA device 1 does not exist; this machine has 1: 0: Fake GPU"):
        backend.check_devices((0, 1), "cupy")
    backend.check_devices((0, 1), "standin")           # the stand-in has any device


def test_synchronize_waits_for_every_device_it_is_given(monkeypatch):
    _fake_cupy(monkeypatch, 2)
    monkeypatch.setitem(backend._backend, "name", "cupy")
    backend.synchronize((0, 1))
    assert _FakeDevice.log == [("synchronize", 0), ("synchronize", 1)]


# -- random generators, one per device ---------------------------------------------------
def test_device_generators_make_one_generator_per_device_seeded_apart():
    gens = backend.DeviceGenerators(seed=3)
    x0, x1 = to_device(np.zeros(2), 0, "standin"), to_device(np.zeros(2), 1, "standin")
    assert gens.on(x0) is gens.on(x0)
    with device(1):
        d1 = to_host(gens.on(x1).random((4,)))
    d0 = to_host(gens.on(x0).random((4,)))
    np.testing.assert_array_equal(d0, np.random.default_rng(3).random((4,)))     # device 0: the seed itself
    assert not np.array_equal(d0, d1)
    assert sorted(gens.generators) == ["standin:0", "standin:1"]


def test_device_generators_state_round_trips_on_host_and_standin():
    gens = backend.DeviceGenerators(seed=5)
    host, dev = np.zeros(3), to_device(np.zeros(3), 1, "standin")
    gens.on(host).random(3)
    with device(1):
        gens.on(dev).random(3)
    restored = backend.DeviceGenerators(seed=0)
    restored.load_state_dict(gens.state_dict())
    np.testing.assert_array_equal(restored.on(host).random(3), gens.on(host).random(3))
    with device(1):
        np.testing.assert_array_equal(to_host(restored.on(dev).random(3)), to_host(gens.on(dev).random(3)))
