"""Sequential: forward in order, backward in reverse, parameters collected under dotted names."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import (LRN, Conv2D, Dropout, Flatten, Layer, Linear, MaxPool2D, ReLU, Sequential,
                             SoftmaxCrossEntropy)

f64 = np.float64


class Recorder(Layer):
    """Identity layer that logs its calls."""

    def __init__(self, name, log):
        super().__init__(f64)
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append(("forward", self.name))
        return x

    def backward(self, dout):
        self.log.append(("backward", self.name))
        return dout


def small_net(rng):
    return Sequential(
        ("conv1", Conv2D(3, 4, 3, padding=1, rng=rng, dtype=f64)),
        ("relu1", ReLU(f64)),
        ("norm1", LRN(alpha=0.1, dtype=f64)),
        ("pool1", MaxPool2D(3, 2, dtype=f64)),
        ("flatten", Flatten(f64)),
        ("fc", Linear(4 * 3 * 3, 5, rng=rng, dtype=f64)),
    )


def test_sequential_runs_forward_in_order_and_backward_in_reverse():
    log = []
    net = Sequential(Recorder("a", log), Recorder("b", log), Recorder("c", log))
    net.backward(net.forward(np.ones(2)))
    assert log == [("forward", "a"), ("forward", "b"), ("forward", "c"),
                   ("backward", "c"), ("backward", "b"), ("backward", "a")]


def test_sequential_output_equals_layers_applied_by_hand(rng):
    net = small_net(rng)
    x = rng.standard_normal((2, 3, 7, 7))
    y = x
    for layer in net.layers.values():
        y = layer.forward(y)
    np.testing.assert_array_equal(net.forward(x), y)


def test_sequential_gradients_match_numerical(rng):
    net = small_net(rng)
    res = gradcheck(net, rng.standard_normal((2, 3, 7, 7)))
    assert set(res.errors) == {"x", "conv1.W", "conv1.b", "fc.W", "fc.b"}
    assert res.passed(1e-6), str(res)


def test_sequential_with_loss_gradients_match_numerical(rng):
    """A network ending in the loss: d(loss)/d(every parameter)."""
    class WithLoss(Layer):
        def __init__(self, net):
            super().__init__(f64)
            self.net, self.loss = net, SoftmaxCrossEntropy(f64)

        def children(self):
            return {"net": self.net}

        def forward(self, x, labels):
            return self.loss.forward(self.net.forward(x), labels)

        def backward(self, dout=1.0):
            return self.net.backward(self.loss.backward(dout))

    res = gradcheck(WithLoss(small_net(rng)), rng.standard_normal((3, 3, 7, 7)), np.array([0, 4, 2]))
    assert res.passed(1e-6), str(res)


def test_sequential_names_parameters_with_dotted_paths(rng):
    names = [n for n, _ in small_net(rng).named_parameters()]
    assert names == ["conv1.W", "conv1.b", "fc.W", "fc.b"]


def test_sequential_of_a_list_numbers_its_layers():
    net = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    assert [n for n, _ in net.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert isinstance(net[1], ReLU) and isinstance(net["2"], Linear) and len(net) == 3


def test_sequential_accepts_a_dict_of_layers():
    net = Sequential({"fc6": Linear(3, 4), "relu6": ReLU()})
    assert list(net.layers) == ["fc6", "relu6"]


def test_nested_sequential_names_nest():
    net = Sequential(("features", Sequential(("conv1", Conv2D(1, 2, 3)))), ("fc", Linear(2, 2)))
    assert [n for n, _ in net.named_parameters()] == ["features.conv1.W", "features.conv1.b", "fc.W", "fc.b"]


def test_sequential_keeps_activations_when_asked(rng):
    net = small_net(rng)
    net.keep_activations = True
    out = net.forward(rng.standard_normal((1, 3, 7, 7)))
    assert list(net.activations) == list(net.layers)
    assert net.activations["pool1"].shape == (1, 4, 3, 3)
    assert net.activations["fc"] is out


def test_sequential_eval_switches_dropout_off(rng):
    net = Sequential(Linear(4, 4, rng=rng, dtype=f64), Dropout(0.5, seed=0, dtype=f64))
    x = rng.standard_normal((3, 4))
    net.eval()
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    net.train()
    assert not np.array_equal(net.forward(x), net.forward(x))


def test_sequential_reports_the_failing_layer_for_bad_input(rng):
    with pytest.raises(ValueError, match=r"Conv2D\(3, 4.*expected 3, got 1"):
        small_net(rng).forward(np.zeros((1, 1, 7, 7)))
