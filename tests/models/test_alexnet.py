"""The paper's network: exact parameter count, the reference table's shapes, init, input checks, variants."""
import numpy as np
import pytest

from tinyalex.layers import Tanh
from tinyalex.models import AlexNet, build_model, model_names

REFERENCE_WEIGHTS = {  # weights alone, from the reference notes
    "conv1": 34_848, "conv2": 307_200, "conv3": 884_736, "conv4": 663_552, "conv5": 442_368,
    "fc6": 37_748_736, "fc7": 16_777_216, "fc8": 4_096_000,
}
REFERENCE_SHAPES = {
    "conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
    "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6),
    "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
}


@pytest.fixture(scope="module")
def alexnet():
    return AlexNet()


def test_alexnet_has_exactly_60965224_parameters(alexnet):
    assert alexnet.num_parameters() == 60_965_224


def test_alexnet_weight_counts_match_the_reference_table(alexnet):
    params = dict(alexnet.named_parameters())
    assert {n: params[f"{n}.W"].size for n in REFERENCE_WEIGHTS} == REFERENCE_WEIGHTS


def test_alexnet_parameter_names_are_readable_and_ordered(alexnet):
    names = [n for n, _ in alexnet.named_parameters()]
    assert names == [f"{l}.{k}" for l in REFERENCE_WEIGHTS for k in ("W", "b")]


def test_alexnet_forward_of_one_227_image_gives_the_reference_shapes(alexnet):
    x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
    alexnet.eval()
    with alexnet.keep_activations():
        logits = alexnet.forward(x)
    acts = alexnet.activations
    assert logits.shape == (1, 1000) and logits.dtype == np.float32
    assert {n: tuple(acts[n].shape[1:]) for n in REFERENCE_SHAPES} == REFERENCE_SHAPES


def test_alexnet_output_shapes_computed_from_the_layers_match_the_reference_table(alexnet):
    shapes = alexnet.output_shapes()
    assert {n: shapes[n] for n in REFERENCE_SHAPES} == REFERENCE_SHAPES


def test_paper_init_draws_weights_with_std_001(alexnet):
    params = dict(alexnet.named_parameters())
    for name in REFERENCE_WEIGHTS:
        W = params[f"{name}.W"]
        assert abs(W.mean()) < 2e-3, name
        assert W.std() == pytest.approx(0.01, rel=0.05 if W.size < 100_000 else 0.01), name


def test_paper_init_sets_biases_to_one_in_conv2_conv4_conv5_fc6_fc7_and_zero_elsewhere(alexnet):
    params = dict(alexnet.named_parameters())
    ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
    for name in REFERENCE_WEIGHTS:
        b = params[f"{name}.b"]
        assert np.all(b == (1.0 if name in ones else 0.0)), name


def test_released_init_uses_std_003_for_conv3_to_conv5():
    net = AlexNet(width=0.5, init="released")
    p = dict(net.named_parameters())
    for name, std in [("conv1", 0.01), ("conv2", 0.01), ("conv3", 0.03), ("conv4", 0.03), ("conv5", 0.03),
                      ("fc6", 0.01)]:
        assert p[f"{name}.W"].std() == pytest.approx(std, rel=0.05), name


def test_he_init_uses_std_sqrt_2_over_fan_in_and_zero_biases():
    net = build_model("alexnet-cifar", init="he", seed=1)        # conv1 64 @ 5x5x3, fc6 1024 x 1152
    state = net.state_dict()
    assert state["conv1.W"].std() == pytest.approx(np.sqrt(2 / 75), rel=0.05)
    assert state["conv2.W"].std() == pytest.approx(np.sqrt(2 / (32 * 25)), rel=0.05)   # fan-in of one group
    assert state["fc6.W"].std() == pytest.approx(np.sqrt(2 / 1152), rel=0.05)
    assert not any(state[f"{n}.b"].any() for n in REFERENCE_WEIGHTS)


def test_same_seed_gives_same_weights_and_other_seed_differs():
    a, b, c = (build_model("alexnet-small", seed=s) for s in (5, 5, 6))
    wa, wb, wc = (dict(m.named_parameters())["conv2.W"] for m in (a, b, c))
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


def test_224_input_is_refused_with_an_error_naming_227(alexnet):
    x = np.zeros((1, 3, 224, 224), np.float32)
    with pytest.raises(ValueError, match="227"):
        alexnet.forward(x)


def test_wrong_dtype_input_is_refused_without_casting():
    net = build_model("alexnet-small", width=0.25)
    with pytest.raises(TypeError, match="float32"):
        net.forward(np.zeros((2, 1, 28, 28), np.float64))


def test_input_too_small_for_the_three_pools_is_refused_at_build_time():
    with pytest.raises(ValueError, match="too small"):
        build_model("alexnet-small", input_shape=(1, 8, 8))


def test_small_variant_has_the_same_structure_and_documented_shapes():
    net = build_model("alexnet-small")
    shapes = net.output_shapes()
    assert [n for n, _ in net.named_parameters()][::2] == [f"{l}.W" for l in REFERENCE_WEIGHTS]
    assert {k for k in shapes if k.startswith(("lrn", "pool", "drop"))} == \
        {"lrn1", "lrn2", "pool1", "pool2", "pool5", "drop6", "drop7"}
    assert shapes["conv1"] == (32, 28, 28) and shapes["pool1"] == (32, 13, 13)
    assert shapes["conv2"] == (64, 15, 15) and shapes["pool2"] == (64, 7, 7)
    assert shapes["conv5"] == (64, 7, 7) and shapes["pool5"] == (64, 3, 3)
    assert shapes["fc8"] == (10,)
    assert net.conv2.groups == 2 and net.conv3.groups == 1


def test_fmnist_alias_builds_the_small_net():
    assert build_model("alexnet-fmnist").config["name"] == "alexnet-small"
    assert build_model("alexnet-fmnist").num_parameters() == build_model("alexnet-small").num_parameters()


def test_cifar_variant_takes_3x32x32_and_ends_with_pool5_3x3():
    net = build_model("alexnet-cifar")
    shapes = net.output_shapes()
    assert net.input_shape == (3, 32, 32) and shapes["pool5"] == (128, 3, 3)
    logits = net.forward(np.zeros((2, 3, 32, 32), np.float32))
    assert logits.shape == (2, 10)


def test_width_scales_every_layer_to_even_sizes():
    net = build_model("alexnet-small", width=0.5)
    shapes = net.output_shapes()
    assert [shapes[f"conv{i}"][0] for i in range(1, 6)] == [16, 32, 48, 48, 32]
    assert shapes["fc6"] == (256,) and shapes["fc7"] == (256,)


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="alexnet-cifar"):
        build_model("alexnet-huge")
    assert "alexnet-small" in model_names()


def test_config_rebuilds_the_same_architecture_and_weights():
    net = build_model("alexnet-small", num_classes=7, width=0.5, lrn=False, overlap_pool=False, dropout=0.3,
                      activation="tanh", seed=11)
    again = build_model(**net.config)
    assert again.config == net.config
    assert [(n, p.shape) for n, p in again.named_parameters()] == [(n, p.shape) for n, p in net.named_parameters()]
    for (_, p), (_, q) in zip(net.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(p, q)


def test_options_remove_lrn_change_pooling_dropout_and_activation():
    net = build_model("alexnet-small", lrn=False, overlap_pool=False, dropout=0, activation="tanh")
    names = list(net.children())
    assert not any(n.startswith(("lrn", "drop")) for n in names)
    assert all(type(getattr(net, f"relu{i}")) is Tanh for i in (1, 2, 3, 4, 5, 6, 7))
    assert net.pool1.kernel_size == (2, 2) and net.lrn1 is None and net.drop6 is None


def test_lrn_convention_option_reaches_the_lrn_layers():
    net = build_model("alexnet-small", lrn_convention="caffe")
    assert net.lrn1.lrn.convention == "caffe"
    assert net.lrn1.lrn.alpha_eff == pytest.approx(2e-5)


def test_lrn_normalizes_within_each_tower_by_default():
    """Channel 0 of tower B is not affected by tower A's last channels (the two GPUs' maps)."""
    net = build_model("alexnet-small", width=0.25, dtype=np.float64, lrn_alpha=10.0)
    lrn = net.lrn1
    x = np.ones((1, 8, 2, 2))
    y = lrn.forward(x)
    x2 = x.copy()
    x2[:, 3] = 5.0                       # the last channel of tower A
    y2 = lrn.forward(x2)
    np.testing.assert_array_equal(y2[:, 4:], y[:, 4:])
    assert not np.allclose(y2[:, 2], y[:, 2])


def test_bad_arguments_name_the_argument_and_choices():
    with pytest.raises(ValueError, match="init must be one of paper, released, he"):
        AlexNet(init="xavier")
    with pytest.raises(ValueError, match="activation"):
        build_model("alexnet-small", activation="sigmoid")
    with pytest.raises(ValueError, match="devices"):
        build_model("alexnet-small", devices=(0, 1, 2))
    with pytest.raises(ValueError, match="even"):
        build_model("alexnet-small", channels=(31, 64, 96, 96, 64))


def test_activations_are_not_kept_during_normal_training():
    net = build_model("alexnet-small", width=0.25)
    net.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert len(net.activations) == 0
    with pytest.raises(KeyError, match="keep_activations"):
        net.activations["relu7"]


def test_activations_give_every_layers_output_by_name():
    net = build_model("alexnet-small", width=0.25).eval()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    with net.keep_activations():
        logits = net.forward(x)
    acts = net.activations
    assert list(acts) == list(net.children())
    np.testing.assert_array_equal(acts["fc8"], logits)
    assert acts["relu7"].shape == (3, 128) and (acts["relu7"] >= 0).all()


def test_keep_activations_also_works_as_an_attribute_like_sequential():
    net = build_model("alexnet-small", width=0.25).eval()
    net.keep_activations = True
    assert net.keep_activations
    net.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert net.activations["pool5"].shape == (2, 16, 3, 3)
    net.keep_activations = False
    net.activations.clear()
    assert len(net.activations) == 0 and not net.keep_activations


def test_batchnorm_option_puts_a_batch_norm_after_every_conv_before_its_relu():
    net = build_model("alexnet-small", batchnorm=True, lrn=False)
    names = list(net.children())
    for i in range(1, 6):
        assert names[names.index(f"conv{i}") + 1:names.index(f"conv{i}") + 3] == [f"bn{i}", f"relu{i}"]
        assert getattr(net, f"bn{i}").num_features == getattr(net, f"conv{i}").out_channels
    assert "bn1.running_mean" in net.state_dict()
    assert not any(n.startswith("bn") for n in build_model("alexnet-small").children())    # the paper's net


def test_a_batch_norm_alexnet_is_rebuilt_from_its_saved_config(tmp_path):
    from tinyalex.models import load_model
    net = build_model("alexnet-small", batchnorm=True, width=0.25)
    net.save(tmp_path / "bn.npz")
    again = load_model(tmp_path / "bn.npz")
    assert again.config["batchnorm"] and again.bn3 is not None
