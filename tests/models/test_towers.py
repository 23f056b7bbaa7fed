"""The two-tower split (section 3.2): same function as the grouped net, explicit counted transfers."""
import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.gradcheck import rel_error
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.models import build_model, merge_state_dict, split_state_dict, tower_sizes

F64 = np.float64
SMALL = dict(width=0.25, dtype=F64, seed=3)        # channels 8-16-24-24-16, fc 128-128, 10 classes
N = 4


def _batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, 1, 28, 28)), rng.integers(0, 10, N)


def _masks(net_grouped):
    rng = np.random.default_rng(1)
    return {name: rng.random((N, shape[0])) >= 0.5
            for name, shape in net_grouped.output_shapes().items() if name.startswith("drop")}


def _run(net, x, y, masks=None):
    """forward, loss, backward on the model's input device; everything returned on the host."""
    dev = net.input_device
    if masks is not None:
        for name, m in masks.items():
            step = getattr(net, name)
            if net.split:
                ka = tower_sizes(m.shape[1])[0]
                step.A.set_mask(B.to_device(m[:, :ka], net.devices[0], net.backend))
                step.B.set_mask(B.to_device(m[:, ka:], net.devices[1], net.backend))
            else:
                step.set_mask(B.to_device(m, dev, net.backend))
    if dev is not None:
        x, y = B.to_device(x, dev, net.backend), B.to_device(y, dev, net.backend)
    loss = SoftmaxCrossEntropy(F64)
    logits = net.forward(x)
    with B.device(dev):                     # the loss runs where the logits are gathered
        L = loss.forward(logits, y)
        dlogits = loss.backward()
    dx = net.backward(dlogits)
    grads = dict(net.named_gradients())
    if net.split:
        grads = merge_state_dict(grads)
    return B.to_host(logits), L.item(), B.to_host(dx), {k: B.to_host(v) for k, v in grads.items()}


def _assert_same(ref, got, tol=1e-6):
    logits, L, dx, grads = ref
    logits2, L2, dx2, grads2 = got
    assert rel_error(logits, logits2) < tol
    assert abs(L - L2) <= tol * abs(L)
    assert rel_error(dx, dx2) < tol
    assert grads.keys() == grads2.keys()
    for k in grads:
        assert rel_error(grads[k], grads2[k]) < tol, k


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("devices", [(0, 1), (0, 0), (1, 0)])
def test_split_on_standin_devices_equals_grouped_model(mode, devices):
    x, y = _batch()
    grouped = build_model("alexnet-small", **SMALL)
    getattr(grouped, mode)()
    masks = _masks(grouped) if mode == "train" else None
    ref = _run(grouped, x, y, masks)
    with B.use_backend("standin"):
        split = build_model("alexnet-small", devices=devices, **SMALL)
        getattr(split, mode)()
        got = _run(split, x, y, masks)
    _assert_same(ref, got)


def test_split_on_numpy_equals_grouped_model_in_train_mode():
    x, y = _batch()
    grouped = build_model("alexnet-small", **SMALL).train()
    masks = _masks(grouped)
    split = build_model("alexnet-small", devices=(0, 1), **SMALL).train()
    _assert_same(_run(grouped, x, y, masks), _run(split, x, y, masks))


def test_split_with_odd_number_of_classes_equals_grouped():
    x, y = _batch()
    grouped = build_model("alexnet-small", num_classes=7, **SMALL).eval()
    with B.use_backend("standin"):
        split = build_model("alexnet-small", num_classes=7, devices=(0, 1), **SMALL).eval()
        got = _run(split, x, y % 7)
    _assert_same(_run(grouped, x, y % 7), got)


def test_split_parameters_live_on_their_towers_devices():
    with B.use_backend("standin"):
        split = build_model("alexnet-small", devices=(0, 1), **SMALL)
        where = {n: B.device_of(p) for n, p in split.named_parameters()}
    assert where["conv1.A.W"] == 0 and where["conv1.B.W"] == 1 and where["fc8.B.b"] == 1
    assert all(d == (0 if ".A." in n else 1) for n, d in where.items())


def test_split_parameter_names_are_per_tower_halves():
    split = build_model("alexnet-small", devices=(0, 1), **SMALL)
    shapes = {n: p.shape for n, p in split.named_parameters()}
    assert shapes["conv2.A.W"] == (8, 4, 3, 3) and shapes["conv2.B.W"] == (8, 4, 3, 3)   # grouped: own tower only
    assert shapes["conv3.A.W"] == (12, 16, 3, 3)                                          # reads both towers
    assert shapes["fc6.A.W"] == (64, 144) and shapes["fc8.A.W"] == (5, 128)


def test_whole_forward_backward_and_sgd_update_run_under_the_standin():
    x, y = _batch()
    with B.use_backend("standin"):
        net = build_model("alexnet-small", devices=(0, 1), **SMALL).train()
        loss = SoftmaxCrossEntropy(F64)
        xd, yd = B.to_device(x, net.input_device), B.to_device(y, net.input_device)
        losses = []
        for _ in range(3):
            net.zero_grad()
            losses.append(loss.forward(net.forward(xd), yd).item())
            net.backward(loss.backward())
            for (name, p), (_, g) in zip(net.named_parameters(), net.named_gradients()):
                assert B.device_of(g) == B.device_of(p), name
                with B.device(B.device_of(p)):
                    p -= 0.05 * g
        assert B.device_of(dict(net.named_parameters())["fc7.B.W"]) == 1
    assert np.isfinite(losses).all() and losses[-1] != losses[0]


def test_an_operation_mixing_the_towers_devices_fails_under_the_standin():
    """The stand-in does catch a mix-up: feeding tower A's activation to tower B's layer raises."""
    with B.use_backend("standin"):
        net = build_model("alexnet-small", devices=(0, 1), **SMALL)
        x = B.to_device(np.zeros((1, 1, 28, 28)), 0)
        with pytest.raises(B.DeviceMismatchError):
            net.conv1.forward((x, x))


def test_split_refuses_input_on_the_wrong_device_naming_the_input_device():
    with B.use_backend("standin"):
        net = build_model("alexnet-small", devices=(0, 1), **SMALL)
        assert net.input_device == 0
        with pytest.raises(B.DeviceMismatchError, match="input_device"):
            net.forward(B.to_device(np.zeros((1, 1, 28, 28)), 1))
        with pytest.raises(B.DeviceMismatchError, match="input_device"):
            net.forward(np.zeros((1, 1, 28, 28)))


@pytest.mark.parametrize("backend_name", ["standin", "numpy"])
def test_transfer_bytes_equal_the_hand_computed_count(backend_name):
    """On NumPy nothing moves, but the count by device numbers shows what two devices would exchange."""
    x, y = _batch()
    with B.use_backend(backend_name):
        net = build_model("alexnet-small", devices=(0, 1), **SMALL).train()
        _run(net, x, y)
        report, total = net.transfer_report(), net.transfer_bytes
    f8 = 8                                   # bytes per float64
    expected_forward = {
        "input": N * 1 * 28 * 28 * f8,       # the image copied to tower B
        "to_conv3": N * 16 * 7 * 7 * f8,     # pool2: 8 maps of 7x7 each way
        "to_fc6": N * 16 * 3 * 3 * f8,       # pool5: 8 maps of 3x3 each way
        "to_fc7": N * 128 * f8,              # fc6: 64 neurons each way
        "to_fc8": N * 128 * f8,              # fc7: 64 neurons each way
        "logits": N * 5 * f8,                # tower B's 5 of the 10 logits
    }
    assert {k: v["forward"] for k, v in report.items()} == expected_forward
    assert {k: v["backward"] for k, v in report.items()} == expected_forward   # gradients go back the same way
    assert total == 2 * sum(expected_forward.values()) == 126_272


def test_nothing_crosses_when_both_towers_share_a_device():
    x, y = _batch()
    with B.use_backend("standin"):
        net = build_model("alexnet-small", devices=(0, 0), **SMALL)
        _run(net, x, y)
    assert net.transfer_bytes == 0


def test_split_activations_are_gathered_and_equal_the_grouped_ones():
    x, _ = _batch()
    grouped = build_model("alexnet-small", **SMALL).eval()
    with grouped.keep_activations():
        grouped.forward(x)
    with B.use_backend("standin"):
        split = build_model("alexnet-small", devices=(0, 1), **SMALL).eval()
        with split.keep_activations():
            split.forward(B.to_device(x, 0))
        fc7 = split.activations["relu7"]
        assert B.device_of(fc7) == 0
        conv2 = B.to_host(split.activations["conv2"])
        fc7 = B.to_host(fc7)
    # the same float64 numbers up to round-off: the towers run im2col (CudaConv2D), the grouped net Winograd
    np.testing.assert_allclose(fc7, grouped.activations["relu7"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2, grouped.activations["conv2"], rtol=1e-12, atol=1e-12)


def test_split_and_merge_state_dict_round_trip():
    grouped = build_model("alexnet-small", num_classes=7, **SMALL)
    state = grouped.state_dict()
    split = split_state_dict(state)
    assert split["fc8.A.W"].shape == (4, 128) and split["fc8.B.W"].shape == (3, 128)
    merged = merge_state_dict(split)
    assert list(merged) == list(state)
    for k in state:
        np.testing.assert_array_equal(merged[k], state[k])


def test_same_seed_gives_the_same_weights_grouped_or_split():
    grouped = build_model("alexnet-small", **SMALL)
    with B.use_backend("standin"):
        split = build_model("alexnet-small", devices=(0, 1), **SMALL)
        merged = merge_state_dict(split.state_dict())
    for k, v in grouped.state_dict().items():
        np.testing.assert_array_equal(merged[k], v)


def test_split_model_loads_a_grouped_state_dict_and_back():
    grouped = build_model("alexnet-small", **SMALL)
    other = build_model("alexnet-small", **{**SMALL, "seed": 9})
    with B.use_backend("standin"):
        split = build_model("alexnet-small", devices=(0, 1), **{**SMALL, "seed": 9})
        split.load_state_dict(grouped.state_dict())
        assert B.device_of(dict(split.named_parameters())["conv4.B.W"]) == 1
        other.load_state_dict(split.state_dict())
    for k, v in grouped.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v)


def test_full_alexnet_split_has_the_papers_halves():
    net = build_model("alexnet", devices=(0, 1), width=1.0)
    p = {n: a.shape for n, a in net.named_parameters()}
    assert p["conv1.A.W"] == (48, 3, 11, 11) and p["conv2.A.W"] == (128, 48, 5, 5)
    assert p["conv3.A.W"] == (192, 256, 3, 3) and p["conv4.B.W"] == (192, 192, 3, 3)
    assert p["fc6.B.W"] == (2048, 9216) and p["fc8.A.W"] == (500, 4096)
    assert net.num_parameters() == 60_965_224


def test_one_device_model_runs_on_standin_device_1_outside_the_backend_block():
    """A model keeps its own backend and device: it works after the use_backend block ends."""
    x, y = _batch()
    ref = _run(build_model("alexnet-small", **SMALL).eval(), x, y)
    with B.use_backend("standin"):
        net = build_model("alexnet-small", devices=1, **SMALL).eval()
    assert net.input_device == 1 and B.device_of(dict(net.named_parameters())["fc8.W"]) == 1
    net.zero_grad()
    _assert_same(ref, _run(net, x, y))


def test_to_moves_the_split_model_to_another_pair_of_devices():
    x, y = _batch()
    ref = _run(build_model("alexnet-small", **SMALL).eval(), x, y)
    split = build_model("alexnet-small", devices=(0, 1), **SMALL).eval()      # built on NumPy
    split.to((1, 0), "standin")
    assert split.input_device == 1
    assert B.device_of(dict(split.named_parameters())["conv5.B.W"]) == 0
    _assert_same(ref, _run(split, x, y))


def test_to_refuses_one_device_for_the_split_model():
    split = build_model("alexnet-small", devices=(0, 1), **SMALL)
    with pytest.raises(ValueError, match="pair of devices"):
        split.to(0, "standin")


@pytest.mark.parametrize("devices", [None, (0, 1)], ids=["grouped", "split"])
def test_without_input_gradient_backward_returns_none_and_parameter_gradients_are_unchanged(devices):
    """Training skips conv1's input gradient; the weights' gradients must not change."""
    with B.use_backend("standin"):
        grads = []
        for need in (True, False):
            net = build_model("alexnet-small", devices=devices, dtype=np.float64, dropout=0)
            net.requires_input_grad(need)
            dev = net.input_device
            x = B.to_device(np.random.default_rng(0).random((2, 1, 28, 28)), dev, "standin")
            y = B.to_device(np.array([1, 2]), dev, "standin")
            loss = SoftmaxCrossEntropy(np.float64)
            with B.device(dev):
                loss.forward(net.forward(x), y)
                dx = net.backward(loss.backward())
            assert (dx is None) == (not need)
            grads.append({n: B.to_host(g) for n, g in net.named_gradients()})
        for name in grads[0]:
            np.testing.assert_allclose(grads[1][name], grads[0][name], rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_split_with_batch_norm_equals_grouped_model_each_tower_normalizing_its_own_channels(mode):
    x, y = _batch()
    grouped = build_model("alexnet-small", batchnorm=True, lrn=False, **SMALL)
    getattr(grouped, mode)()
    masks = _masks(grouped) if mode == "train" else None
    with B.use_backend("standin"):
        split = build_model("alexnet-small", batchnorm=True, lrn=False, devices=(0, 1), **SMALL)
        split.load_state_dict(grouped.state_dict())          # the running statistics too
        getattr(split, mode)()
        got = _run(split, x, y, masks)
    ref = _run(grouped, x, y, masks)
    if mode == "train":     # batch norm cancels the conv biases: their gradients are 0 up to round-off
        for run in (ref, got):
            biases = [k for k in run[3] if k.startswith("conv") and k.endswith(".b")]
            assert all(abs(run[3].pop(k)).max() < 1e-12 for k in biases)
    _assert_same(ref, got)
