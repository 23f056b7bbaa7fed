"""SGD follows the paper's rule: v <- m v - wd lr w - lr g; w <- w + v."""
import numpy as np
import pytest

from tinyalex import backend
from tinyalex.layers import Linear
from tinyalex.train import SGD


def _paper_steps(w, grads, lr, m, wd):
    """The rule computed by hand in float64, one line per symbol of the paper."""
    w = w.astype(np.float64).copy()
    v = np.zeros_like(w)
    for g in grads:
        v = m * v - wd * lr * w - lr * g
        w = w + v
    return w, v


def test_three_steps_match_hand_computation_with_momentum_and_weight_decay(rng):
    w0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(3)]
    w = w0.copy()
    opt = SGD([("w", w)], lr=0.1, momentum=0.9, weight_decay=0.01)
    for g in grads:
        opt.step({"w": g})
    expected_w, expected_v = _paper_steps(w0, grads, 0.1, 0.9, 0.01)
    np.testing.assert_allclose(w, expected_w, rtol=1e-12)
    np.testing.assert_allclose(opt.velocities["w"], expected_v, rtol=1e-12)


def test_first_step_is_minus_lr_times_gradient_plus_decay():
    w = np.array([2.0, -1.0])
    opt = SGD([("w", w)], lr=0.5, momentum=0.9, weight_decay=0.1)
    opt.step({"w": np.array([1.0, 1.0])})
    # v = -0.1*0.5*[2,-1] - 0.5*[1,1] = [-0.6, -0.45]; w = [1.4, -1.45]
    np.testing.assert_allclose(w, [1.4, -1.45])


def test_updates_model_parameters_in_place_and_keeps_float32(rng):
    layer = Linear(3, 2, rng=rng)
    W = layer.params["W"]
    before = W.copy()
    x = rng.standard_normal((5, 3)).astype(np.float32)
    layer.backward(layer.forward(x))
    opt = SGD(layer, lr=0.01)
    opt.step()
    assert layer.params["W"] is W and W.dtype == np.float32
    assert opt.velocities["W"].dtype == np.float32
    expected, _ = _paper_steps(before, [layer.grads["W"].astype(np.float64)], 0.01, 0.9, 5e-4)
    np.testing.assert_allclose(W, expected, rtol=1e-5)


def test_velocity_lives_on_the_parameters_device(rng):
    with backend.use_backend("standin"):
        layer = Linear(3, 2, rng=rng).to(1, "standin")
        x = backend.to_device(rng.standard_normal((5, 3)).astype(np.float32), 1, "standin")
        with backend.device(1):
            layer.backward(layer.forward(x))
        opt = SGD(layer, lr=0.01)
        opt.step()      # current device is 0: step must switch to device 1 itself
        assert backend.device_of(opt.velocities["W"]) == 1
        assert backend.device_of(layer.params["W"]) == 1


def test_state_dict_round_trip_continues_identically(rng):
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    a = w0.copy()
    opt_a = SGD([("w", a)], lr=0.05)
    for g in grads:
        opt_a.step({"w": g})
    b = w0.copy()
    opt_b = SGD([("w", b)], lr=0.05)
    for g in grads[:2]:
        opt_b.step({"w": g})
    state = opt_b.state_dict()
    assert isinstance(state["velocities"]["w"], np.ndarray)
    c = b.copy()
    opt_c = SGD([("w", c)], lr=1.0).load_state_dict(state)
    assert opt_c.lr == 0.05
    for g in grads[2:]:
        opt_c.step({"w": g})
    np.testing.assert_array_equal(a, c)


def test_lr_is_settable_and_used_by_the_next_step():
    w = np.zeros(1)
    opt = SGD([("w", w)], lr=1.0, momentum=0.0, weight_decay=0.0)
    opt.lr = 0.1
    opt.step({"w": np.ones(1)})
    np.testing.assert_allclose(w, [-0.1])


@pytest.mark.parametrize("kw", [{"lr": 0}, {"lr": float("nan")}, {"momentum": 1.0}, {"weight_decay": -1}])
def test_bad_hyperparameters_are_refused_by_name(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        SGD([("w", np.zeros(1))], **kw)


def test_missing_gradient_names_the_parameter():
    opt = SGD([("w", np.zeros(1))])
    with pytest.raises(ValueError, match="'w'"):
        opt.step({})


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_chunked_numpy_update_is_bit_identical_to_the_two_lines_as_written(threads, monkeypatch):
    from tinyalex.train.sgd import CHUNK, _update

    monkeypatch.setenv("TINYALEX_THREADS", threads)      # 3: thread ranges that do not end on a chunk

    rng = np.random.default_rng(3)
    n = 3 * CHUNK + 17                       # several chunks and a ragged end
    w, g, v = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    w2, v2 = w.copy(), v.copy()
    _update(v, w, g, 0.9, 0.01, 5e-6, chunked=True)
    v2 *= 0.9
    v2 -= 5e-6 * w2
    v2 -= 0.01 * g
    w2 += v2
    assert np.array_equal(v, v2) and np.array_equal(w, w2)
