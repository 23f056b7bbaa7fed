"""The model reads like Figure 2: named layers in the paper's order, implementations chosen once,
the Layer base class's state methods, reproducible seeds."""
import numpy as np
import pytest

from tinyalex import backend as B
from tinyalex.layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU
from tinyalex.layers.base import Layer
from tinyalex.models import MODELS, AlexNet, GroupLRN, build_model, default_input_shape, model_names
from tinyalex.models.towers import TowerPair

FIGURE_2 = ["conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2", "conv3", "relu3",
            "conv4", "relu4", "conv5", "relu5", "pool5", "flatten", "fc6", "relu6", "drop6",
            "fc7", "relu7", "drop7", "fc8"]
REFERENCE_CLASS = {"conv": Conv2D, "relu": ReLU, "pool": MaxPool2D, "flat": Flatten, "fc": Linear, "drop": Dropout}
TINY = dict(width=0.25, dtype=np.float64, seed=3)


def _reference_class(name):
    return REFERENCE_CLASS[name[:4] if name.startswith("flat") else name.rstrip("0123456789")]


def test_layers_are_named_attributes_in_the_order_of_figure_2():
    net = build_model("alexnet-small", width=0.25)
    assert list(net.children()) == FIGURE_2
    for name, layer in net.children().items():
        assert getattr(net, name) is layer
    assert net.conv2.groups == net.conv4.groups == net.conv5.groups == 2
    assert net.conv1.groups == net.conv3.groups == 1


def test_forward_runs_the_layers_in_figure_2_order_and_backward_in_reverse():
    net = build_model("alexnet-small", **TINY).eval()
    calls = []
    for name, layer in net.children().items():
        for pass_ in ("forward", "backward"):
            real = getattr(layer, pass_)
            setattr(layer, pass_, lambda x, real=real, name=name, pass_=pass_: calls.append((pass_, name)) or real(x))
    net.forward(np.zeros((2, 1, 28, 28)))
    net.backward(np.ones((2, 10)))
    assert [n for p, n in calls if p == "forward"] == FIGURE_2
    assert [n for p, n in calls if p == "backward"] == FIGURE_2[::-1]


def test_two_tower_net_has_the_same_layers_with_the_crossings_between_them():
    net = build_model("alexnet-small", devices=(0, 1), **TINY)
    names = list(net.children())
    assert [n for n in names if n in FIGURE_2] == FIGURE_2
    assert [n for n in names if n not in FIGURE_2] == ["input", "to_conv3", "to_fc6", "to_fc7", "to_fc8", "logits"]
    assert names.index("to_conv3") == names.index("conv3") - 1 and names.index("to_fc6") == names.index("fc6") - 1
    assert all(isinstance(getattr(net, n), TowerPair) for n in FIGURE_2)


@pytest.mark.parametrize("devices", [None, (0, 1)], ids=["one device", "two towers"])
def test_fast_false_builds_every_layer_from_the_reference_classes(devices):
    net = build_model("alexnet-small", fast=False, devices=devices, **TINY)
    for name in FIGURE_2:
        layer = getattr(net, name)
        halves = (layer.A, layer.B) if isinstance(layer, TowerPair) else (layer,)
        for half in halves:
            if name.startswith("lrn"):
                lrn = half.lrn if isinstance(half, GroupLRN) else half
                assert type(lrn) is LRN, name
            else:
                assert type(half) is _reference_class(name), (name, type(half))
    assert net.config["fast"] is False


def test_fast_true_layers_are_implementations_of_the_reference_classes():
    net = build_model("alexnet-small", fast=True, **TINY)
    for name in FIGURE_2:
        layer = getattr(net, name)
        assert isinstance(layer.lrn if isinstance(layer, GroupLRN) else layer,
                          LRN if name.startswith("lrn") else _reference_class(name)), name


def test_fast_and_reference_nets_compute_the_same_function_with_the_same_weights():
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    fast, ref = (build_model("alexnet-small", fast=f, **TINY).eval() for f in (True, False))
    for (n, p), (m, q) in zip(fast.named_parameters(), ref.named_parameters()):
        assert n == m
        np.testing.assert_array_equal(p, q)
    np.testing.assert_allclose(fast.forward(x), ref.forward(x), rtol=1e-10, atol=1e-12)


def test_the_full_net_built_from_the_reference_classes_has_60965224_parameters():
    assert AlexNet(fast=False).num_parameters() == 60_965_224


def test_model_uses_the_layer_base_class_state_methods():
    for method in ("zero_grad", "state_dict", "load_state_dict", "to", "named_parameters"):
        assert method not in vars(AlexNet), method
        assert getattr(AlexNet, method) is getattr(Layer, method)


def test_zero_grad_zeroes_the_gradients_in_place():
    net = build_model("alexnet-small", **TINY).train()
    net.forward(np.ones((2, 1, 28, 28)))
    net.backward(np.ones((2, 10)))
    before = {n: g for n, g in net.named_gradients()}
    assert any(g.any() for g in before.values())
    net.zero_grad()
    for n, g in net.named_gradients():
        assert g is before[n] and not g.any(), n


def test_to_moves_the_towers_each_to_its_own_device_through_layer_to():
    net = build_model("alexnet-small", devices=(0, 1), **TINY)
    net.to((1, 0), "standin")
    where = {n: B.device_of(p) for n, p in net.named_parameters()}
    assert all(d == (1 if ".A." in n else 0) for n, d in where.items())
    assert net.devices == (1, 0) and net.input.devices == (1, 0) and net.input_device == 1


def test_same_seed_gives_the_same_weights_whichever_implementation_or_placement():
    a = build_model("alexnet-small", **TINY).state_dict()
    b = build_model("alexnet-small", fast=False, **TINY).state_dict()
    c = build_model("alexnet-small", devices=(0, 1), **TINY).grouped_state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], c[k])


def test_seed_none_draws_fresh_weights_each_time():
    a, b = (build_model("alexnet-small", width=0.25, seed=None).state_dict()["conv1.W"] for _ in range(2))
    assert not np.array_equal(a, b)


def test_every_registered_name_is_listed_and_declares_its_input_shape():
    assert model_names() == list(MODELS)
    assert default_input_shape("alexnet") == (3, 227, 227)
    assert default_input_shape("alexnet-small") == default_input_shape("alexnet-fmnist") == (1, 28, 28)
    assert default_input_shape("alexnet-cifar") == (3, 32, 32)


def test_unknown_model_name_lists_every_registered_model():
    with pytest.raises(ValueError) as err:
        build_model("alexnet-huge")
    assert all(name in str(err.value) for name in MODELS)


SMALL_MODELS = [n for n in model_names() if n.endswith(("-small", "-cifar", "-fmnist")) or n == "resnet20"]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_a_model_that_says_it_runs_its_children_in_order_does(name):
    # fast/replicas.py runs such a model's fully connected head apart from its trunk: both must equal forward
    m = build_model(name, seed=0, dtype=np.float64).eval()
    x = np.random.default_rng(0).standard_normal((2,) + tuple(m.input_shape))
    expected = m.forward(x)
    if not m.runs_children_in_order:
        assert name.startswith("googlenet"), "only GoogLeNet branches off its main path (aux heads)"
        return
    out = x
    for layer in m.children().values():
        out = layer.forward(out)
    np.testing.assert_array_equal(out, expected)
