"""Dropout: inverted (default) and the paper's form, seeded masks, eval behaviour, gradients."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import Dropout

f64 = np.float64


def with_mask(mode, rng, shape=(4, 6), p=0.5):
    layer = Dropout(p, mode=mode, dtype=f64)
    mask = rng.random(shape) >= p
    layer.set_mask(mask)
    return layer, mask


@pytest.mark.parametrize("mode", ["inverted", "paper"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_dropout_gradients_match_numerical_with_fixed_mask(mode, training, rng):
    layer, _ = with_mask(mode, rng, (2, 3, 4, 4))
    layer.train(training)
    assert gradcheck(layer, rng.standard_normal((2, 3, 4, 4))).passed(1e-6)


def test_inverted_dropout_scales_kept_units_by_one_over_keep_probability(rng):
    layer, mask = with_mask("inverted", rng, p=0.25)
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(layer.forward(x), x * mask / 0.75, rtol=1e-15)
    dout = rng.standard_normal((4, 6))
    np.testing.assert_allclose(layer.backward(dout), dout * mask / 0.75, rtol=1e-15)


def test_paper_dropout_zeroes_without_scaling_in_training(rng):
    layer, mask = with_mask("paper", rng)
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(layer.forward(x), x * mask)


def test_inverted_dropout_is_identity_in_eval(rng):
    layer = Dropout(0.5, dtype=f64).eval()
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_paper_dropout_multiplies_by_one_minus_p_in_eval(rng):
    layer = Dropout(0.5, mode="paper", dtype=f64).eval()
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(layer.forward(x), 0.5 * x, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.ones((4, 6))), np.full((4, 6), 0.5), rtol=1e-15)


def test_dropout_same_seed_gives_same_masks():
    x = np.ones((8, 50), np.float32)
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    for _ in range(2):
        np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(Dropout(0.5, seed=4).forward(x), Dropout(0.5, seed=3).forward(x))


def test_dropout_draws_a_new_mask_each_forward():
    layer = Dropout(0.5, seed=0)
    x = np.ones((8, 50), np.float32)
    assert not np.array_equal(layer.forward(x), layer.forward(x))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keep_fraction_is_close_to_one_minus_p(p):
    out = Dropout(p, seed=1).forward(np.ones((400, 500), np.float32))
    assert np.mean(out != 0) == pytest.approx(1 - p, abs=0.005)      # 200k draws: sd < 0.0012


@pytest.mark.parametrize("mode", ["inverted", "paper"])
def test_dropout_preserves_expected_value_between_train_and_eval(mode):
    x = np.full((400, 500), 2.0, np.float32)
    layer = Dropout(0.5, mode=mode, seed=2)
    train_mean = float(layer.forward(x).mean())
    eval_mean = float(layer.eval().forward(x).mean())
    assert train_mean == pytest.approx(eval_mean, rel=0.01)


def test_dropout_backward_uses_the_forward_mask(rng):
    layer = Dropout(0.5, seed=5, dtype=f64)
    out = layer.forward(np.ones((6, 7)))
    np.testing.assert_array_equal(layer.backward(np.ones((6, 7))), out)


def test_dropout_set_mask_none_returns_to_random_draws(rng):
    layer, _ = with_mask("inverted", rng)
    layer.set_mask(None)
    x = np.ones((40, 50))
    assert not np.array_equal(layer.forward(x), layer.forward(x))


def test_dropout_p_zero_keeps_everything(rng):
    x = rng.standard_normal((5, 5))
    np.testing.assert_array_equal(Dropout(0.0, dtype=f64).forward(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_p_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        Dropout(p)


def test_dropout_rejects_unknown_mode():
    with pytest.raises(ValueError, match=r"mode must be one of \('inverted', 'paper'\), got 'scaled'"):
        Dropout(mode="scaled")


def test_dropout_mask_of_wrong_shape_raises_naming_both_shapes(rng):
    layer = Dropout(dtype=f64)
    layer.set_mask(np.ones((4, 5), bool))
    with pytest.raises(ValueError, match=r"Dropout.*expected \(4, 6\), got \(4, 5\)"):
        layer.forward(rng.standard_normal((4, 6)))


def test_dropout_fixed_mask_moves_with_the_layer(rng):
    from tinyalex import backend

    layer, mask = with_mask("inverted", rng)
    layer.to(1, "standin")
    assert backend.device_of(layer.fixed_mask) == 1
    x = backend.to_device(rng.standard_normal((4, 6)), 1, "standin")
    with backend.device(1):
        out = layer.forward(x)
    np.testing.assert_allclose(backend.to_host(out), backend.to_host(x) * mask * 2.0, rtol=1e-15)


def test_dropout_makes_one_generator_per_device_once_and_keeps_it():
    from tinyalex import backend, standin

    layer = Dropout(0.5, seed=1)
    x = backend.to_device(np.ones((4, 6), np.float32), 1, "standin")
    with backend.device(1):
        layer.forward(x)
        with standin.count() as c:
            layer.forward(x)
    assert list(layer.generators.generators) == ["standin:1"]
    assert "default_rng" not in c.ops_by_name            # the second batch draws from the same generator


def test_dropout_resumes_its_masks_from_a_saved_generator_state():
    x = np.ones((4, 6))
    a = Dropout(0.5, seed=7, dtype=np.float64)
    a.forward(x)
    saved = a.generators.state_dict()
    expected = a.forward(x)
    b = Dropout(0.5, seed=0, dtype=np.float64)
    b.generators.load_state_dict(saved)
    np.testing.assert_array_equal(b.forward(x), expected)
