"""Layer base class: parameters by name, zero_grad, modes, state dicts, dtype, moving to a device."""
import numpy as np
import pytest

from tinyalex import backend
from tinyalex.layers import Conv2D, Dropout, Flatten, Linear, ReLU, Sequential


def net(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(
        ("conv1", Conv2D(2, 4, 3, rng=rng, dtype=dtype)),
        ("relu1", ReLU(dtype)),
        ("drop", Dropout(0.5, dtype=dtype)),
        ("flatten", Flatten(dtype)),
        ("head", Sequential(("fc", Linear(4, 3, rng=rng, dtype=dtype)))),
    )


def test_params_and_grads_are_dicts_keyed_w_and_b(rng):
    layer = Linear(3, 2, rng=rng, dtype=np.float64)
    assert list(layer.params) == ["W", "b"]
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(np.ones((4, 2)))
    assert list(layer.grads) == ["W", "b"]
    assert layer.grads["W"].shape == layer.params["W"].shape


def test_named_parameters_use_dotted_names():
    assert [n for n, _ in net().named_parameters()] == ["conv1.W", "conv1.b", "head.fc.W", "head.fc.b"]


def test_named_layers_lists_every_layer_with_its_path():
    assert [n for n, _ in net().named_layers()] == ["", "conv1", "relu1", "drop", "flatten", "head", "head.fc"]


def test_num_parameters_counts_weights_and_biases():
    assert net().num_parameters() == 4 * 2 * 9 + 4 + 3 * 4 + 3
    assert Conv2D(3, 96, 11).num_parameters() == 34848 + 96        # the paper's conv1


def test_zero_grad_allocates_and_clears_every_gradient(rng):
    model = net(np.float64)
    model.zero_grad()
    grads = dict(model.named_gradients())
    assert list(grads) == ["conv1.W", "conv1.b", "head.fc.W", "head.fc.b"]
    assert all(np.all(g == 0) for g in grads.values())
    model["conv1"].grads["W"] += 1.0
    model.zero_grad()
    assert np.all(model["conv1"].grads["W"] == 0)


def test_train_and_eval_propagate_to_every_sublayer():
    model = net()
    model.eval()
    assert all(not layer.training for _, layer in model.named_layers())
    assert model.train() is model
    assert all(layer.training for _, layer in model.named_layers())


def test_state_dict_round_trip_restores_the_output(rng):
    a, b = net(np.float64, seed=1), net(np.float64, seed=2)
    a.eval(), b.eval()
    x = rng.standard_normal((2, 2, 3, 3))
    assert not np.allclose(a.forward(x), b.forward(x))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_state_dict_holds_host_copies():
    model = net()
    state = model.state_dict()
    assert list(state) == ["conv1.W", "conv1.b", "head.fc.W", "head.fc.b"]
    state["conv1.W"][...] = 7.0
    assert not np.any(model["conv1"].params["W"] == 7.0)


def test_load_state_dict_refuses_a_shape_mismatch_naming_both_shapes():
    state = net().state_dict()
    state["head.fc.W"] = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"'head.fc.W'.*expects shape \(3, 4\), the state has \(5, 4\)"):
        net().load_state_dict(state)


def test_load_state_dict_refuses_missing_and_unexpected_keys():
    state = net().state_dict()
    del state["conv1.b"]
    state["fc9.W"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"missing parameters \['conv1.b'\], unexpected parameters \['fc9.W'\]"):
        net().load_state_dict(state)


def test_load_state_dict_non_strict_loads_what_matches():
    src, dst = net(seed=1), net(seed=2)
    state = src.state_dict()
    del state["conv1.W"]
    before = dst["conv1"].params["W"].copy()
    dst.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(dst["head"]["fc"].params["W"], src["head"]["fc"].params["W"])
    np.testing.assert_array_equal(dst["conv1"].params["W"], before)


def test_load_state_dict_keeps_the_layer_dtype():
    model = net(np.float32)
    model.load_state_dict(net(np.float64).state_dict())
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_dtype_defaults_to_float32_and_accepts_float64():
    assert Linear(2, 2).params["W"].dtype == np.float32
    assert Linear(2, 2, dtype=np.float64).params["W"].dtype == np.float64


def test_dtype_other_than_float32_or_float64_is_refused():
    with pytest.raises(ValueError, match=r"dtype must be float32 or float64, got float16"):
        Linear(2, 2, dtype=np.float16)


def test_to_moves_parameters_and_gradients_to_a_device_and_back(rng):
    model = net(np.float64)
    model.zero_grad()
    model.to(1, "standin")
    assert all(backend.device_of(p) == 1 for p in model.parameters())
    assert all(backend.device_of(g) == 1 for _, g in model.named_gradients())
    model.to(None, "numpy")
    assert all(isinstance(p, np.ndarray) for p in model.parameters())


def split_across_two_devices():
    """conv1 on stand-in device 0, the head on device 1, like the paper's two GPUs."""
    model = net(np.float64)
    model["conv1"].to(0, "standin")
    model["head"].to(1, "standin")
    return model


def test_load_state_dict_writes_into_parameters_on_their_own_devices():
    model = split_across_two_devices()
    src = net(np.float64, seed=5)
    model.load_state_dict(src.state_dict())            # no device block needed
    assert backend.device_of(model["conv1"].params["W"]) == 0
    assert backend.device_of(model["head"]["fc"].params["W"]) == 1
    np.testing.assert_array_equal(backend.to_host(model["head"]["fc"].params["W"]), src["head"]["fc"].params["W"])


def test_zero_grad_works_on_a_model_split_across_devices():
    model = split_across_two_devices()
    model.zero_grad()
    model.zero_grad()                                   # second call clears in place
    for name, g in model.named_gradients():
        assert backend.device_of(g) == (0 if name.startswith("conv1") else 1)
        assert np.all(backend.to_host(g) == 0)


def test_repr_shows_the_structure():
    text = repr(net())
    assert "(conv1): Conv2D(2, 4, kernel_size=(3, 3)" in text and "(fc): Linear(in_features=4, out_features=3)" in text


def bn_net(dtype=np.float64):
    from tinyalex.layers import BatchNorm2d
    return Sequential(("conv1", Conv2D(2, 3, 1, dtype=dtype)), ("bn1", BatchNorm2d(3, dtype=dtype)))


def test_buffers_are_in_the_state_dict_after_their_layers_parameters_but_not_parameters():
    model = bn_net()
    assert list(model.state_dict()) == ["conv1.W", "conv1.b", "bn1.gamma", "bn1.beta", "bn1.running_mean",
                                        "bn1.running_var"]
    assert [n for n, _ in model.named_buffers()] == ["bn1.running_mean", "bn1.running_var"]
    assert "bn1.running_mean" not in dict(model.named_parameters())


def test_load_state_dict_restores_buffers_and_refuses_a_missing_one():
    model = bn_net()
    state = model.state_dict()
    state["bn1.running_var"] = np.full(3, 5.0)
    model.load_state_dict(state)
    np.testing.assert_array_equal(model["bn1"].buffers["running_var"], 5.0)
    del state["bn1.running_mean"]
    with pytest.raises(KeyError, match=r"missing parameters \['bn1.running_mean'\]"):
        model.load_state_dict(state)


def test_to_moves_buffers_to_the_device():
    model = bn_net()
    model.to(1, "standin")
    assert all(backend.device_of(b) == 1 for _, b in model.named_buffers())
