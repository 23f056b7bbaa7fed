"""The CPU stand-in: CuPy's rules on the CPU, and counters of device work and host reads.

The stand-in must refuse what CuPy 13/14 refuse on a multi-GPU machine (mixed
devices, an array used while another device is current, names and arguments
CuPy lacks, a generator used on another device) and what would silently copy
to the host (np.asarray, float, bool), so device bugs show up on a laptop.
"""
import pickle

import numpy as np
import pytest

from tinyalex import standin
from tinyalex.backend import device, device_of, to_device, to_host
from tinyalex.standin import DeviceMismatchError, ImplicitTransferError, NotInCupyError


def on(dev, data=(1.0, 2.0, 3.0)):
    return to_device(np.array(data), dev, "standin")


# -- what the stand-in refuses ------------------------------------------------------
def test_standin_refuses_mixing_two_devices():
    a, b = on(0), on(1)
    with pytest.raises(DeviceMismatchError, match=r"mixes arrays on device 0 and device 1.*to_device"):
        a + b


def test_standin_refuses_mixing_devices_in_a_numpy_function():
    a, b = on(0), on(1)
    with pytest.raises(DeviceMismatchError):
        np.concatenate([a, b])


@pytest.mark.parametrize("expr", [lambda d, h: d + h, lambda d, h: h * d, lambda d, h: np.maximum(d, h),
                                  lambda d, h: d @ h],
                         ids=["device + host", "host * device", "ufunc", "matmul"])
def test_standin_refuses_mixing_with_a_host_array(expr):
    with pytest.raises(DeviceMismatchError, match=r"host \(NumPy\) array"):
        expr(on(0), np.ones(3))


def test_standin_refuses_writing_a_host_array_into_a_device_array():
    a = on(0)
    with pytest.raises(DeviceMismatchError):
        a[...] = np.zeros(3)


def test_standin_refuses_in_place_update_from_host():
    a = on(0)
    with pytest.raises(DeviceMismatchError):
        a += np.ones(3)


def test_standin_refuses_an_array_of_device_1_while_device_0_is_current():
    a = on(1)
    with pytest.raises(DeviceMismatchError, match=r"on device 1 but the current device is 0.*device\(1\)"):
        a * 2


def test_standin_works_on_device_1_inside_its_device_block():
    a = on(1)
    with device(1):
        out = (a * 2).sum()
    assert device_of(out) == 1 and out.item() == 12.0


def test_standin_new_arrays_land_on_the_current_device():
    with device(1):
        z = standin.zeros((2, 3))
        r = standin.random.default_rng(0).random((2,))
    assert device_of(z) == 1 and device_of(r) == 1


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda a: float(a[0]), lambda a: bool(a[0]),
                                     lambda a: int(a[0])],
                         ids=["np.asarray", "np.array", "float", "bool", "int"])
def test_standin_refuses_implicit_conversion_to_host(convert):
    with pytest.raises(ImplicitTransferError, match=r"to_host|\.item\(\)"):
        convert(on(0))


def test_standin_refuses_if_on_a_device_array():
    with pytest.raises(ImplicitTransferError):
        if on(0)[0] > 0:
            pass


def test_standin_asarray_refuses_host_data_inside_device_code():
    with pytest.raises(DeviceMismatchError, match=r"to_device"):
        standin.asarray(np.ones(3))


def test_standin_refuses_pickling():
    with pytest.raises(ImplicitTransferError, match="to_host"):
        pickle.dumps(on(0))


def test_standin_refuses_a_0d_host_array_as_cupy_does():
    with pytest.raises(DeviceMismatchError, match=r"host \(NumPy\) array of shape \(\).*NumPy scalar"):
        on(0) * np.array(2.0)


def test_standin_accepts_numpy_scalars_and_python_numbers():
    a = on(0)
    assert to_host(a * np.float64(2.0) + 1).tolist() == [3.0, 5.0, 7.0]


# -- CuPy's API: names, arguments, generator methods -------------------------------
def test_the_cupy_api_list_holds_what_layers_use_and_not_what_cupy_lacks():
    for name in ("cupy.matmul", "cupy.copyto", "cupy.take_along_axis", "cupy.lib.stride_tricks.as_strided",
                 "cupy.random.default_rng", "cupy.random.Generator.random", "cupy.ufunc.at"):
        assert name in standin.CUPY_API, name
    for name in ("cupy.put_along_axis", "cupy.random.Generator.permutation", "cupy.random.Generator.normal"):
        assert name not in standin.CUPY_API, name


def test_standin_module_refuses_a_function_cupy_lacks():
    with pytest.raises(NotInCupyError, match=r"no attribute 'put_along_axis'.*cupy_api.txt"):
        standin.put_along_axis
    assert not hasattr(standin, "put_along_axis")          # an AttributeError, as on the cupy module


def test_standin_refuses_a_numpy_function_cupy_lacks_called_on_a_device_array():
    with pytest.raises(NotInCupyError, match=r"no put_along_axis\(\)"):
        np.put_along_axis(on(0), to_device(np.array([0]), 0, "standin"), 5.0, axis=0)


def test_standin_refuses_an_argument_cupy_lacks():
    with pytest.raises(NotInCupyError, match=r"cupy.sum\(\) has no argument 'where'.*accepts \(a, axis"):
        standin.sum(on(0), where=True)


def test_standin_refuses_a_ufunc_keyword_cupy_lacks():
    with pytest.raises(NotInCupyError, match=r"only out, dtype, casting.*'where'"):
        np.add(on(0), 1.0, where=True)


def test_standin_linalg_has_only_cupys_functions():
    assert standin.linalg.norm is np.linalg.norm
    with pytest.raises(NotInCupyError, match="cupy.linalg has no 'matrix_norm'"):
        standin.linalg.matrix_norm


@pytest.mark.parametrize("method", ["permutation", "choice", "shuffle", "normal"])
def test_standin_generator_refuses_methods_cupys_generator_lacks(method):
    rng = standin.random.default_rng(0)
    with pytest.raises(NotInCupyError, match=rf"Generator has no method '{method}'.*random"):
        getattr(rng, method)


def test_standin_generator_draws_what_numpy_draws_on_its_device():
    with device(1):
        r = standin.random.default_rng(3).random((4,), dtype=np.float32)
    assert device_of(r) == 1
    np.testing.assert_array_equal(to_host(r), np.random.default_rng(3).random((4,), dtype=np.float32))


def test_standin_generator_refuses_to_draw_while_another_device_is_current():
    rng = standin.random.default_rng(0)                    # made on device 0
    with device(1), pytest.raises(DeviceMismatchError, match=r"allocated in a different device"):
        rng.random((2,))


def test_standin_generator_state_round_trips():
    a = standin.random.default_rng(5)
    a.random((3,))
    b = standin.random.default_rng(0)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(to_host(a.random((3,))), to_host(b.random((3,))))


# -- counters ---------------------------------------------------------------------------
def test_an_add_counts_one_device_op_and_no_sync():
    a, b = on(0), on(0)
    with standin.count() as c:
        a + b
    assert (c.device_ops, c.host_syncs) == (1, 0)
    assert c.ops_by_name == {"add": 1}


@pytest.mark.parametrize("view", [lambda a: a.reshape(3, 2), lambda a: a.T, lambda a: a[1:],
                                  lambda a: a[0, 1], lambda a: np.expand_dims(a, 0), lambda a: a.ravel(),
                                  lambda a: standin.lib.stride_tricks.as_strided(a, (2, 2), a.strides)],
                         ids=["reshape", "T", "slice", "element", "expand_dims", "ravel", "as_strided"])
def test_a_view_counts_no_device_op(view):
    a = on(0, np.zeros((2, 3)))
    with standin.count() as c:
        view(a)
    assert (c.device_ops, c.host_syncs) == (0, 0)


@pytest.mark.parametrize("work", [lambda a, i: a.T.copy(), lambda a, i: a.T.reshape(6), lambda a, i: a.sum(),
                                  lambda a, i: a.astype(np.float32), lambda a, i: a[i],
                                  lambda a, i: a.__setitem__(0, 1.0), lambda a, i: np.copyto(a, 2.0),
                                  lambda a, i: standin.zeros((2,))],
                         ids=["copy", "reshape that copies", "sum", "astype", "gather", "setitem", "copyto", "zeros"])
def test_work_on_the_device_counts_one_op(work):
    a, index = on(0, np.zeros((2, 3))), on(0, [0, 1]).astype(np.intp)
    with standin.count() as c:
        work(a, index)
    assert (c.device_ops, c.host_syncs) == (1, 0)


def test_empty_allocates_without_an_op():
    a = on(0)
    with standin.count() as c:
        standin.empty((4,))
        np.empty_like(a)
    assert c.device_ops == 0


@pytest.mark.parametrize("read", [lambda a: a.sum().item(), lambda a: to_host(a), lambda a: a.get(),
                                  lambda a: a.tolist(), repr], ids=["item", "to_host", "get", "tolist", "repr"])
def test_a_read_by_the_host_counts_one_sync(read):
    a = on(0)
    with standin.count() as c:
        read(a)
    assert c.host_syncs == 1


@pytest.mark.parametrize("convert", [lambda a: float(a[0]), lambda a: bool(a[0]), np.asarray],
                         ids=["float", "bool", "np.asarray"])
def test_an_implicit_read_counts_a_sync_and_is_refused(convert):
    a = on(0)
    with standin.count() as c, pytest.raises(ImplicitTransferError):
        convert(a)
    assert c.host_syncs == 1


def test_bincount_counts_the_two_reads_cupy_makes():
    idx = to_device(np.array([0, 2, 2]), 0, "standin")
    with standin.count() as c:
        np.bincount(idx, minlength=4)
    assert (c.device_ops, c.host_syncs) == (1, 2)


def test_a_transfer_to_the_device_counts_one_op():
    with standin.count() as c:
        a = on(1)
        to_device(a, 1, "standin")          # already there: nothing to do
    assert (c.device_ops, c.host_syncs) == (1, 0)


def test_counters_nest_and_stop_at_the_end_of_the_block():
    a = on(0)
    with standin.count() as outer:
        a + 1
        with standin.count() as inner:
            a * 2
    a - 1
    assert (outer.device_ops, inner.device_ops) == (2, 1)
