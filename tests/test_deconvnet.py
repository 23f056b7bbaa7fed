"""ZFNet's deconvnet: projections through the switches, the search for the strongest units, the visualize command."""
import numpy as np
import pytest

from tinyalex.cli import main
from tinyalex.deconvnet import Unit, deconv_chain, project, receptive_field, top_activations, visualize
from tinyalex.layers import Conv2D, MaxPool2D, ReLU, Sequential
from tinyalex.models import build_model

f64 = np.float64


def tiny_net(relu_between=False, seed=0):
    rng = np.random.default_rng(seed)
    layers = [("conv1", Conv2D(2, 4, 3, padding=1, rng=rng, dtype=f64))]
    if relu_between:
        layers.append(("relu1", ReLU(f64)))
    layers += [("pool1", MaxPool2D(3, 2, dtype=f64)), ("conv2", Conv2D(4, 5, 3, rng=rng, dtype=f64)),
               ("relu2", ReLU(f64))]
    net = Sequential(*layers)
    net.name = "tiny"
    return net


def strongest_unit(net, x, channel):
    out = net.forward(x)
    y, xx = np.unravel_index(np.argmax(out[0, channel]), out.shape[2:])
    return Unit(0, channel, int(y), int(xx), float(out[0, channel, y, xx])), out


def test_projection_of_one_unit_is_its_activation_times_its_input_gradient_without_inner_relus():
    # conv1 -> pool1 -> conv2 -> relu2: unpooling with the switches is the max pool's gradient and the transposed
    # filters are the convolution's input gradient, so the deconvnet gives value * d unit / d x exactly
    net, x = tiny_net(), np.random.default_rng(1).standard_normal((1, 2, 11, 11))
    unit, out = strongest_unit(net, x, channel=3)
    dout = np.zeros_like(out)
    dout[0, 3, unit.y, unit.x] = 1.0
    grad = net.backward(dout)[0]
    np.testing.assert_allclose(project(net, x, "conv2", unit), unit.value * grad, rtol=1e-12, atol=1e-12)


def value_times_gradient(net, x, unit):
    out = net.forward(x)
    dout = np.zeros_like(out)
    dout[0, unit.channel, unit.y, unit.x] = unit.value
    return net.backward(dout)[0]


def test_the_deconvnets_relu_rectifies_the_reconstruction_where_the_gradient_would_gate_it():
    net, x = tiny_net(relu_between=True), np.random.default_rng(2).standard_normal((1, 2, 11, 11))
    net.layers["conv1"].params["b"] += 100.0              # relu1's input > 0 everywhere: the gradient is not gated
    unit, _ = strongest_unit(net, x, channel=1)
    # mixed-sign conv2 filters: the reconstruction below relu1 has negative parts, which the deconvnet drops
    assert not np.allclose(project(net, x, "conv2", unit), value_times_gradient(net, x, unit))
    net.layers["conv2"].params["W"] = np.abs(net.layers["conv2"].params["W"])   # nothing negative to drop
    unit, _ = strongest_unit(net, x, channel=1)
    np.testing.assert_allclose(project(net, x, "conv2", unit), value_times_gradient(net, x, unit), rtol=1e-12)


def test_a_projection_is_zero_outside_the_units_receptive_field():
    net, x = tiny_net(relu_between=True), np.random.default_rng(3).standard_normal((1, 2, 11, 11))
    unit, _ = strongest_unit(net, x, channel=0)
    proj = project(net, x, "conv2", unit)
    t, b, l, r = receptive_field(deconv_chain(net, "conv2"), unit.y, unit.x, x.shape)
    outside = proj.copy()
    outside[:, t:b, l:r] = 0
    assert np.abs(proj).sum() > 0 and np.all(outside == 0)


def test_top_activations_finds_the_images_with_the_largest_units():
    net = tiny_net()
    images = np.random.default_rng(4).standard_normal((10, 2, 11, 11))
    found = top_activations(net, images, "conv2", channels=[2], top=3, batch_size=4)
    acts = net.forward(images)[:, 2].reshape(10, -1).max(axis=1)
    assert [u.index for u in found[2]] == list(np.argsort(-acts)[:3])
    assert found[2][0].value == pytest.approx(acts.max())


def test_alexnet_projection_does_not_depend_on_the_fast_pools_switches():
    # AlexNet's fast pools keep no argmax: the reference pool run on the same input records the switches
    fast, ref = build_model("alexnet-small", width=0.25, fast=True), build_model("alexnet-small", width=0.25, fast=False)
    ref.load_state_dict(fast.state_dict())
    x = np.random.default_rng(5).standard_normal((1, 1, 28, 28)).astype(np.float32)
    unit = top_activations(fast, x, "conv3", channels=[0], top=1)[0][0]
    np.testing.assert_allclose(project(fast, x, "conv3", unit), project(ref, x, "conv3", unit), rtol=1e-4, atol=1e-5)


def test_visualize_draws_zfnets_projections():
    model = build_model("zfnet-small", seed=1).eval()
    x = np.random.default_rng(6).standard_normal((6, 1, 28, 28)).astype(np.float32)
    fig, found = visualize(model, x, "conv2", channels=[0, 1], top=2)
    assert list(found) == [0, 1] and len(fig.axes) == 4


def test_a_layer_that_does_not_exist_names_the_ones_that_do():
    with pytest.raises(ValueError, match="layer 'conv9' is not in zfnet-small; choose one of conv1, pool1, conv2"):
        deconv_chain(build_model("zfnet-small"), "conv9")


def test_a_model_without_max_pooling_switches_is_refused():
    with pytest.raises(ValueError, match="resnet20: conv1 .*has no deconvnet counterpart.*alexnet, zfnet or vgg"):
        deconv_chain(build_model("resnet20"), "layer1")


TINY = ["--dataset", "synthetic", "--model", "alexnet-small", "--width", "0.125", "--epochs", "1", "--batch-size",
        "32", "--limit-train", "96", "--limit-test", "40", "--no-progress", "--no-plots", "--seed", "3"]


def test_visualize_command_runs_on_a_tiny_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    out = tmp_path / "deconv.png"
    assert main(["visualize", str(run), "--layer", "conv3", "--top", "4", "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and "conv3 map" in capsys.readouterr().out
    assert main(["visualize", str(run), "--layer", "fc9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "layer 'fc9' is not in alexnet-small" in err
