"""ZFNet, VGG, GoogLeNet, ResNet: exact parameter counts, output shapes, forward and backward, gradient checks."""
import re
from collections import OrderedDict

import numpy as np
import pytest

from tinyalex.fast import implementations
from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Layer
from tinyalex.models.googlenet import AUX_TAPS, GoogLeNet, Inception, googlenet
from tinyalex.models.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet20, resnet50
from tinyalex.models.successors import SUCCESSORS, TRAINABLE, complexity_table
from tinyalex.models.vgg import vgg11, vgg16
from tinyalex.models.zfnet import zfnet, zfnet_small

f64 = np.float64


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def googlenet_count_from_table_1(num_classes=1000):
    """Weights and biases of Table 1's rows, counted here independently of the model code."""
    rows = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
            (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
            (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128)]
    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    for cin, a, b, c, d, e, f in rows:
        total += conv(cin, a, 1) + conv(cin, b, 1) + conv(b, c, 3) + conv(cin, d, 1) + conv(d, e, 5) + conv(cin, f, 1)
    return total + 1024 * num_classes + num_classes


def torchvision_or_skip():
    pytest.importorskip("torch")
    return pytest.importorskip("torchvision")


# -- parameter counts ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def vgg16_net():
    return vgg16()


def test_vgg16_has_138357544_parameters(vgg16_net):
    assert vgg16_net.num_parameters() == 138_357_544


def test_vgg11_has_132863336_parameters():
    assert vgg11().num_parameters() == 132_863_336


def test_resnet18_has_11689512_parameters():
    assert resnet18().num_parameters() == 11_689_512


def test_resnet50_has_25557032_parameters():
    assert resnet50().num_parameters() == 25_557_032


def test_cifar_resnet20_has_about_027_million_parameters():
    assert resnet20().num_parameters() == 269_722          # section 4.2: "0.27M"


def test_googlenet_parameters_are_table_1s_weights_and_biases():
    assert googlenet().num_parameters() == googlenet_count_from_table_1() == 6_998_552


def test_googlenet_auxiliary_classifiers_add_their_heads():
    head = lambda cin: conv(cin, 128, 1) + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    assert googlenet(aux=True).num_parameters() == googlenet_count_from_table_1() + head(512) + head(528)


def test_zfnet_parameters_follow_figure_3():
    expected = (conv(3, 96, 7) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3)
                + 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)
    assert zfnet().num_parameters() == expected == 62_357_608


@pytest.mark.parametrize("name, ours", [("vgg11", vgg11), ("vgg16", vgg16), ("resnet18", resnet18),
                                        ("resnet50", resnet50)])
def test_parameter_count_equals_torchvisions(name, ours):
    tv = torchvision_or_skip()
    theirs = getattr(tv.models, name)(weights=None)
    assert ours().num_parameters() == sum(p.numel() for p in theirs.parameters())


# -- shapes -----------------------------------------------------------------------------------
FULL_SHAPES = {
    "zfnet": {"conv1": (96, 110, 110), "pool1": (96, 55, 55), "conv2": (256, 26, 26), "pool2": (256, 13, 13),
              "conv5": (256, 13, 13), "pool5": (256, 6, 6), "fc8": (1000,)},
    "vgg16": {"pool1": (64, 112, 112), "pool4": (512, 14, 14), "pool5": (512, 7, 7), "fc8": (1000,)},
    "googlenet": {"pool1": (64, 56, 56), "pool2": (192, 28, 28), "inception3a": (256, 28, 28),
                  "inception3b": (480, 28, 28), "inception4a": (512, 14, 14), "inception4d": (528, 14, 14),
                  "inception4e": (832, 14, 14), "inception5b": (1024, 7, 7), "fc": (1000,)},
    "resnet18": {"pool1": (64, 56, 56), "layer1": (64, 56, 56), "layer2": (128, 28, 28),
                 "layer3": (256, 14, 14), "layer4": (512, 7, 7), "fc": (1000,)},
    "resnet50": {"layer1": (256, 56, 56), "layer4": (2048, 7, 7), "fc": (1000,)},
}


@pytest.mark.parametrize("name", list(FULL_SHAPES))
def test_full_network_shapes_follow_the_paper(name, vgg16_net):
    model = vgg16_net if name == "vgg16" else SUCCESSORS[name]()
    layers = list(model.layers)
    for lname, shape in FULL_SHAPES[name].items():
        upto = OrderedDict((n, model.layers[n]) for n in layers[:layers.index(lname) + 1])
        assert model.shape(upto) == shape, lname


@pytest.mark.parametrize("name", ["zfnet", "googlenet", "resnet18"])
def test_full_network_forward_of_one_224_image_gives_1000_logits(name):
    model = SUCCESSORS[name]().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with_acts = model.forward(x)
    assert with_acts.shape == (1, 1000) and np.all(np.isfinite(with_acts))


@pytest.mark.parametrize("name", TRAINABLE)
def test_small_variant_forward_and_backward_run(name):
    model = SUCCESSORS[name](num_classes=10)
    x = np.random.default_rng(0).standard_normal((2,) + model.input_shape).astype(np.float32)
    out = model.forward(x)
    assert out.shape == (2, 10) and out.dtype == np.float32
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape
    grads = dict(model.named_gradients())
    for pname, p in model.named_parameters():
        assert grads[pname] is not None and grads[pname].shape == p.shape, pname


@pytest.mark.parametrize("name, shape", [(n, s) for n in TRAINABLE for s in [(1, 28, 28), (3, 32, 32)]
                                         if (n, s) != ("vgg11-cifar", (1, 28, 28))])
def test_small_variants_take_both_28_and_32_pixel_images(name, shape):
    """(vgg11-cifar's five 2x2 pools need 32 pixels; vgg11-small pads 28 to 32.)"""
    model = SUCCESSORS[name](num_classes=10, input_shape=shape)
    assert model.shape() == (10,)


def test_a_too_small_input_names_the_size_the_model_needs():
    with pytest.raises(ValueError, match=re.escape("vgg11-cifar: input 3x16x16 is too small: pool5 fails")
                       + r".*it needs at least 3x32x32"):
        SUCCESSORS["vgg11-cifar"](input_shape=(3, 16, 16))


# -- gradient checks of the blocks and of tiny networks ---------------------------------------
def test_inception_module_gradients_match_numerical(rng):
    L = implementations(fast=True)
    block = Inception(L, 3, 2, 2, 3, 1, 2, 1, rng=rng, dtype=f64)
    res = gradcheck(block, rng.standard_normal((2, 3, 5, 5)))
    assert len(res.errors) == 1 + 2 * 6 and res.passed(1e-6), str(res)


@pytest.mark.parametrize("cin, cout, stride, shortcut", [(4, 4, 1, "B"), (3, 4, 2, "B"), (3, 4, 2, "A")],
                         ids=["identity", "projection (B)", "zero channels (A)"])
def test_basic_block_gradients_match_numerical(cin, cout, stride, shortcut, rng):
    block = BasicBlock(implementations(True), cin, cout, stride, shortcut, rng=rng, dtype=f64)
    res = gradcheck(block, rng.standard_normal((2, cin, 5, 5)))
    assert res.passed(1e-6), str(res)


@pytest.mark.parametrize("cin, stride", [(8, 1), (4, 2)], ids=["identity", "projection"])
def test_bottleneck_block_gradients_match_numerical(cin, stride, rng):
    block = Bottleneck(implementations(True), cin, 2, stride, rng=rng, dtype=f64)
    res = gradcheck(block, rng.standard_normal((2, cin, 5, 5)))
    assert res.passed(1e-6), str(res)


def test_tiny_resnet_gradients_match_numerical(rng):
    model = ResNet(3, (1, 8, 8), "basic", (1, 1), (2, 4), stem="cifar", name="tiny", dtype=f64, seed=1)
    res = gradcheck(model, rng.standard_normal((3, 1, 8, 8)), max_entries=25)
    assert res.passed(1e-6), str(res)


class MainAndAux(Layer):
    """GoogLeNet's three outputs side by side, so one gradient check covers the heads' backward."""

    def __init__(self, net):
        super().__init__(net.dtype)
        self.net = net

    def children(self):
        return OrderedDict(net=self.net)

    def forward(self, x):
        main = self.net.forward(x)
        return np.concatenate([main] + list(self.net.aux_logits.values()), axis=1)

    def backward(self, dout):
        k = self.net.num_classes
        return self.net.backward(dout[:, :k], {"aux1": dout[:, k:2 * k], "aux2": dout[:, 2 * k:]})


def test_googlenet_with_auxiliary_heads_input_gradient_matches_numerical(rng):
    net = GoogLeNet(3, (1, 28, 28), (3, 1, 1), 1, 0.0625, aux=True, dropout=0, dtype=f64, seed=0)
    for head in net.aux.values():
        head.layers["drop"].p = 0.0            # deterministic heads (dropout 0.7 otherwise)
    res = gradcheck(MainAndAux(net), rng.standard_normal((2, 1, 28, 28)), max_entries=30, params=False)
    assert res.passed(1e-6), str(res)


def test_googlenet_aux_heads_run_only_in_training():
    net = GoogLeNet(10, (1, 28, 28), (3, 1, 1), 1, 0.0625, aux=True)
    x = np.zeros((2, 1, 28, 28), np.float32)
    net.forward(x)
    assert list(net.aux_logits) == list(AUX_TAPS.values())
    net.eval().forward(x)
    assert not net.aux_logits
    with pytest.raises(ValueError, match=r"gradients for \['aux1'\].*none"):
        net.backward(np.ones((2, 10), np.float32), {"aux1": np.ones((2, 10), np.float32)})


# -- the rest of the model interface -------------------------------------------------------
def test_zfnet_records_pooling_switches_for_the_deconvnet():
    model = zfnet_small()
    with pytest.raises(ValueError, match="no switches recorded yet"):
        model.switches()
    model.forward(np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32))
    switches = model.switches()
    assert {k: v.shape for k, v in switches.items()} == {"pool1": (2, 32, 14, 14), "pool2": (2, 64, 4, 4),
                                                          "pool5": (2, 64, 1, 1)}
    assert all(v.min() >= 0 and v.max() < 9 for v in switches.values())


def test_resnet_state_dict_holds_batchnorm_running_statistics_and_round_trips(rng):
    a, b = resnet20(seed=1, dtype=f64), resnet20(seed=2, dtype=f64)
    a.forward(rng.standard_normal((4, 3, 32, 32)))                     # moves a's running averages
    state = a.state_dict()
    assert "layer1.0.body.bn1.running_mean" in state and "layer1.0.body.bn1.running_mean" not in dict(
        a.named_parameters())
    b.load_state_dict(state)
    x = rng.standard_normal((2, 3, 32, 32))
    np.testing.assert_array_equal(a.eval().forward(x), b.eval().forward(x))


def test_reference_and_fast_builds_compute_the_same_function(rng):
    fast, ref = resnet20(fast=True, dtype=f64), resnet20(fast=False, dtype=f64)
    assert "reference implementations (fast=False)" in ref.summary()
    assert "FastConv2D" not in ref.summary() and "ChunkedConv2D" not in ref.summary()
    assert "fast implementations" in fast.summary() and "ChunkedConv2D" in fast.summary()     # conv1: 3 channels
    x = rng.standard_normal((2, 3, 32, 32))
    np.testing.assert_allclose(fast.forward(x), ref.forward(x), rtol=1e-10, atol=1e-12)


def test_requires_input_grad_false_skips_the_first_layers_input_gradient():
    model = resnet20().requires_input_grad(False)
    out = model.forward(np.zeros((2, 3, 32, 32), np.float32))
    assert model.backward(np.ones_like(out)) is None


def test_config_rebuilds_the_same_network_through_the_registry(rng):
    model = SUCCESSORS["googlenet-small"](num_classes=7, seed=3, aux=True, dtype=f64)
    config = dict(model.config)
    assert config == {"name": "googlenet-small", "num_classes": 7, "input_shape": (1, 28, 28), "fast": True,
                      "dtype": "float64", "seed": 3, "aux": True}
    again = SUCCESSORS[config.pop("name")](**config)
    x = rng.standard_normal((2, 1, 28, 28))
    np.testing.assert_array_equal(model.eval().forward(x), again.eval().forward(x))


def test_summary_lists_every_layer_and_the_total():
    text = resnet18().summary()
    assert "layer4.1  BasicBlock" in text and "Total parameters: 11,689,512" in text


def test_summary_shows_googlenets_auxiliary_heads_and_where_they_branch_off():
    text = SUCCESSORS["googlenet-small"](aux=True).summary()
    assert re.search(r"aux1 \(from inception4a\) +Sequential \(8 layers\) +10 ", text)
    assert "aux2 (from inception4d)" in text


def test_complexity_table_is_computed_from_the_models():
    rows = {name: (params, macs) for name, _, params, macs in complexity_table()}
    assert rows["alexnet"][0] == 60_965_224 and rows["vgg16"][0] == 138_357_544
    assert rows["resnet50"][0] == 25_557_032 and rows["googlenet"][0] == 6_998_552
    gmacs = {n: round(m / 1e9, 2) for n, (_, m) in rows.items()}
    # the papers: VGG-16 15.5G (commonly quoted), GoogLeNet "1.5 billion", ResNet-50 "3.8 x 10^9"
    assert gmacs["vgg16"] == 15.47 and gmacs["googlenet"] == 1.58 and gmacs["resnet50"] == 3.86
    assert gmacs["alexnet"] < gmacs["zfnet"] < gmacs["googlenet"] < gmacs["resnet50"] < gmacs["vgg16"]


@pytest.mark.parametrize("name", ["resnet20-small", "zfnet-small"])
def test_small_variant_learns_a_fixed_batch_with_sgd(name):
    """Ten SGD steps on one batch of 8 images lower the loss a lot: forward, backward and update fit together."""
    from tinyalex.layers import SoftmaxCrossEntropy
    from tinyalex.train.sgd import SGD

    rng = np.random.default_rng(0)
    model = SUCCESSORS[name](num_classes=4, seed=0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model, lr=0.02, momentum=0.9, weight_decay=0.0)
    losses = []
    for _ in range(10):
        losses.append(float(loss_fn.forward(model.forward(x), y)))
        model.backward(loss_fn.backward())
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses


def test_inception_module_matches_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    ours = Inception(implementations(True), 3, 2, 2, 3, 1, 2, 1, rng=rng, dtype=f64)
    W = {n: torch.tensor(p) for n, p in ours.named_parameters()}

    def theirs(x):
        def c(name, x, pad=0):
            return F.relu(F.conv2d(x, W[f"{name}.W"], W[f"{name}.b"], padding=pad))
        return torch.cat([c("branch1x1.conv", x),
                          c("branch3x3.conv", c("branch3x3.reduce", x), 1),
                          c("branch5x5.conv", c("branch5x5.reduce", x), 2),
                          c("branch_pool.proj", F.max_pool2d(x, 3, 1, 1))], dim=1)

    x = rng.standard_normal((2, 3, 6, 5))
    dout = rng.standard_normal((2, 8, 6, 5))
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    ty.backward(torch.tensor(dout))
    np.testing.assert_allclose(ours.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
