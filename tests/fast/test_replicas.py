"""tinyalex/fast/replicas.py: a training step's batch split over threads computes the model's own step."""
import numpy as np
import pytest
import threadpoolctl

from tinyalex import backend as B
from tinyalex.fast import FastLinear, ThreadReplicas, step_runner
from tinyalex.fast.cpu import num_threads
from tinyalex.fast.cpu import blas_controller
from tinyalex.fast.replicas import replica_count, trunk_and_head
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.models import build_model
from tinyalex.train import SGD


def net(name="alexnet-small", dropout=0.0, dtype=np.float64, fast=True, **kw):
    m = build_model(name, seed=0, dtype=dtype, fast=fast, dropout=dropout, **kw)
    return m.train()


def batch(m, n=12, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(m.input_shape)).astype(m.dtype)
    return x, rng.integers(0, m.num_classes, n)


def step(runner, x, y):
    """Forward, loss, backward through ``runner``: (logits, loss, input gradient)."""
    loss = SoftmaxCrossEntropy(dtype=x.dtype)
    logits = runner.forward(x)
    value = float(loss.forward(logits, y))
    return logits.copy(), value, runner.backward(loss.backward())


def gradients(m):
    return {k: g.copy() for k, g in m.named_gradients()}


@pytest.mark.parametrize("name", ["alexnet-small", "zfnet-small"])
@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("whole_batch_head", [True, False])
def test_replicas_compute_the_models_logits_loss_and_gradients(name, replicas, whole_batch_head):
    m = net(name)
    x, y = batch(m, n=10)
    ref_logits, ref_loss, ref_dx = step(m, x, y)
    ref = gradients(m)
    runner = ThreadReplicas(m, replicas, blas_controller(), whole_batch_head=whole_batch_head)
    assert bool(runner.head) == whole_batch_head
    logits, value, dx = step(runner, x, y)
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-12)
    assert value == pytest.approx(ref_loss, abs=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=1e-12)
    for k, g in m.named_gradients():
        np.testing.assert_allclose(g, ref[k], rtol=0, atol=1e-12, err_msg=k)


def test_replicas_skip_the_input_gradient_when_the_model_does():
    m = net().requires_input_grad(False)
    x, y = batch(m)
    assert step(step_runner(m, 2), x, y)[2] is None


def test_replicas_compute_with_the_weights_sgd_just_updated():
    m = net()
    runner = step_runner(m, 2)
    x, y = batch(m)
    step(runner, x, y)
    SGD(m, lr=0.1).step()
    m.eval()
    expected = m.forward(x)
    np.testing.assert_allclose(runner.eval().forward(x), expected, rtol=0, atol=1e-12)


def test_replicas_see_weights_loaded_into_the_model():
    m, other = net(), build_model("alexnet-small", seed=5, dtype=np.float64, dropout=0.0).eval()
    runner = step_runner(m, 2).eval()
    x, _ = batch(m)
    m.load_state_dict(other.state_dict())
    np.testing.assert_allclose(runner.forward(x), other.forward(x), rtol=0, atol=1e-12)


def test_a_batch_smaller_than_the_replica_count_runs_on_fewer_replicas():
    m = net()
    x, y = batch(m, n=1)
    ref_logits, _, _ = step(m, x, y)
    ref = gradients(m)
    logits, _, _ = step(step_runner(m, 3), x, y)
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-12)
    for k, g in m.named_gradients():
        np.testing.assert_allclose(g, ref[k], rtol=0, atol=1e-12, err_msg=k)


def _threads_seen_by(layers, seen):
    """Make each layer's forward record (BLAS threads, tinyalex threads) in ``seen`` when it runs."""
    for layer in layers:
        def spy(x, original=layer.forward):
            blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
            seen.append((blas, num_threads()))
            return original(x)

        layer.forward = spy


def test_each_replica_runs_its_trunk_with_one_blas_thread_and_no_elementwise_threads(monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", "2")
    m = net()
    runner = step_runner(m)
    seen = []
    _threads_seen_by([r.conv1 for r in runner.replicas], seen)
    runner.forward(batch(m)[0])
    assert seen == [([1], 1), ([1], 1)]
    assert num_threads() == 2          # the calling thread keeps its own count


def test_each_fully_connected_layer_of_the_head_runs_on_the_whole_batch_split_by_neurons(monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", "2")
    m = net()
    runner = step_runner(m)
    seen, original = [], FastLinear.forward

    def spy(self, x):
        blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        seen.append((x.shape[0], self.out_features, blas))
        return original(self, x)

    monkeypatch.setattr(FastLinear, "forward", spy)
    runner.forward(batch(m, n=12)[0])
    assert seen[:2] == [(12, 256, [1])] * 2            # fc6's 512 neurons: half in each thread
    assert sorted(seen) == sorted([(12, 256, [1])] * 4 + [(12, 5, [1])] * 2)


def test_the_head_is_the_trailing_fully_connected_layers_of_a_model_that_runs_its_children_in_order():
    trunk, head = trunk_and_head(net())
    assert trunk[0] == "conv1" and trunk[-1] == "pool5"
    assert head == ["flatten", "fc6", "relu6", "fc7", "relu7", "fc8"]
    assert trunk_and_head(build_model("googlenet-small", seed=0))[1] == []     # its aux heads branch off


def test_dropout_in_the_head_draws_the_masks_the_model_alone_draws():
    x, y = batch(net(), n=8)
    alone = net(dropout=0.5)
    expected = alone.forward(x)
    np.testing.assert_allclose(step_runner(net(dropout=0.5), 2).forward(x), expected, rtol=0, atol=1e-12)


def test_replica_dropout_masks_differ_between_slices_and_repeat_from_the_same_seed():
    def logits_of_identical_halves():                   # the head split over the slices too, as in a trunk
        m = net(dropout=0.5)
        x, _ = batch(m, n=4)
        return ThreadReplicas(m, 2, blas_controller(), whole_batch_head=False).forward(np.concatenate([x, x]))

    a = logits_of_identical_halves()
    assert not np.allclose(a[:4], a[4:])          # the copy draws its own masks, not the model's again
    np.testing.assert_array_equal(a, logits_of_identical_halves())


def test_backward_before_forward_says_so():
    runner = step_runner(net(), 2)
    with pytest.raises(ValueError, match="backward\\(\\) called before forward"):
        runner.backward(np.zeros((2, 10)))


@pytest.mark.parametrize("why,make", [
    ("one replica", lambda: (net(), 1)),
    ("the reference layers run as written", lambda: (net(fast=False), 2)),
    ("batch norm sees the whole batch", lambda: (build_model("resnet20-small", seed=0, fast=True), 2)),
    ("an AlexNet with batch norm too", lambda: (net(batchnorm=True), 2)),
])
def test_the_runner_is_the_model_itself_when_replicas_would_change_or_not_help(why, make):
    m, n = make()
    assert step_runner(m, n) is m, why


def test_the_runner_is_the_model_itself_on_a_gpu_backend():
    with B.use_backend("standin"):
        m = build_model("alexnet-small", seed=0, fast=True, backend="standin")
        assert step_runner(m, 2) is m


@pytest.mark.parametrize("value,expected", [("", None), ("1", 1), ("3", 3)])
def test_replica_count_is_tinyalex_replicas_else_the_thread_count(value, expected, monkeypatch):
    monkeypatch.setenv("TINYALEX_THREADS", "2")
    monkeypatch.setenv("TINYALEX_REPLICAS", value)
    assert replica_count() == (expected or 2)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_tinyalex_replicas_names_the_variable(value, monkeypatch):
    monkeypatch.setenv("TINYALEX_REPLICAS", value)
    with pytest.raises(ValueError, match="TINYALEX_REPLICAS must be a positive integer"):
        replica_count()


def test_runners_of_one_size_share_one_pool_of_threads():
    assert step_runner(net(), 2).pool is step_runner(net(), 2).pool


def test_a_fully_connected_layer_too_narrow_to_split_runs_whole_and_gives_the_same_step():
    m = net(num_classes=3)                              # fc8: 3 neurons, fewer than 2 per thread
    x, y = batch(m, n=8)
    ref_logits, ref_loss, _ = step(m, x, y)
    ref = gradients(m)
    runner = step_runner(m, 2)
    logits, value, _ = step(runner, x, y)
    assert "fc8" not in runner.shards and "fc7" in runner.shards
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-12)
    for k, g in m.named_gradients():
        np.testing.assert_allclose(g, ref[k], rtol=0, atol=1e-12, err_msg=k)
