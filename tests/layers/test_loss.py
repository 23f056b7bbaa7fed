"""SoftmaxCrossEntropy (and softmax / log_softmax): known answers, stability, gradients, bad labels."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import SoftmaxCrossEntropy, log_softmax, softmax

f64 = np.float64


def test_loss_is_minus_log_softmax_at_the_label():
    logits = np.array([[1.0, 2.0, 3.0]])
    expected = -np.log(np.exp(2.0) / np.exp([1.0, 2.0, 3.0]).sum())
    assert SoftmaxCrossEntropy(f64).forward(logits, np.array([1])).item() == pytest.approx(expected, rel=1e-14)


def test_loss_is_the_mean_over_the_batch(rng):
    logits, labels = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    loss = SoftmaxCrossEntropy(f64)
    per_row = [loss.forward(logits[i:i + 1], labels[i:i + 1]).item() for i in range(5)]
    assert loss.forward(logits, labels).item() == pytest.approx(np.mean(per_row), rel=1e-14)


def test_loss_returns_a_0d_array_of_the_logits_dtype(rng):
    out = SoftmaxCrossEntropy().forward(rng.standard_normal((3, 4)).astype(np.float32), np.array([0, 1, 2]))
    assert out.shape == () and out.dtype == np.float32


def test_loss_of_uniform_logits_is_log_k():
    assert SoftmaxCrossEntropy(f64).forward(np.zeros((2, 10)), np.array([3, 7])).item() == pytest.approx(np.log(10))


def test_loss_is_stable_and_exact_at_logits_1e4():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 2e4]])
    loss = SoftmaxCrossEntropy(f64)
    value = loss.forward(logits, np.array([0, 1])).item()
    assert np.isfinite(value)
    assert value == pytest.approx((0.0 + 1e4) / 2)        # row 0 is right, row 1 is off by 1e4
    assert np.all(np.isfinite(loss.backward()))


def test_loss_float32_is_finite_at_logits_1e4():
    logits = np.array([[1e4, -1e4, 0.0]], np.float32)
    loss = SoftmaxCrossEntropy()
    assert np.isfinite(loss.forward(logits, np.array([1])).item())
    assert np.all(np.isfinite(loss.backward()))


def test_loss_gradient_is_softmax_minus_onehot_over_n(rng):
    logits, labels = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    loss = SoftmaxCrossEntropy(f64)
    loss.forward(logits, labels)
    expected = (softmax(logits) - np.eye(5)[labels]) / 4
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-13)
    np.testing.assert_allclose(loss.backward(2.0), 2 * expected, rtol=1e-13)


def test_loss_gradients_match_numerical(rng):
    res = gradcheck(SoftmaxCrossEntropy(f64), rng.standard_normal((4, 6)) * 3, rng.integers(0, 6, 4))
    assert res.passed(1e-6)


def test_loss_gradients_match_numerical_with_large_logits(rng):
    """At |z| ~ 1e4 the loss is locally linear, so a larger step h is exact and avoids cancellation."""
    logits = rng.standard_normal((4, 6)) * 1e4
    labels = np.array([0, 1, 2, 3])
    res = gradcheck(SoftmaxCrossEntropy(f64), logits, labels, h=1e-2)
    assert res.passed(1e-6)


def test_loss_matches_torch_cross_entropy(rng):
    torch = pytest.importorskip("torch")
    logits, labels = rng.standard_normal((6, 5)) * 10, rng.integers(0, 5, 6)
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels))
    assert SoftmaxCrossEntropy(f64).forward(logits, labels).item() == pytest.approx(ref.item(), rel=1e-13)


def test_softmax_rows_sum_to_one_and_survive_huge_logits():
    p = softmax(np.array([[1e4, 1e4 - 1.0, -1e4], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    assert np.all(np.isfinite(p))
    assert p[0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_log_softmax_equals_log_of_softmax(rng):
    z = rng.standard_normal((3, 7)) * 5
    np.testing.assert_allclose(log_softmax(z), np.log(softmax(z)), rtol=1e-12)


def test_loss_accepts_unsigned_labels():
    assert np.isfinite(SoftmaxCrossEntropy(f64).forward(np.zeros((2, 3)), np.array([0, 2], np.uint8)).item())


# -- bad input ------------------------------------------------------------------
def test_loss_mismatched_label_count_raises_naming_both_shapes():
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*expected \(3,\), got \(2,\)"):
        SoftmaxCrossEntropy(f64).forward(np.zeros((3, 4)), np.array([0, 1]))


def test_loss_float_labels_raise_type_error():
    with pytest.raises(TypeError, match=r"labels must be integers, got dtype float64"):
        SoftmaxCrossEntropy(f64).forward(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("labels", [[0, 1, 4], [0, -1, 2]], ids=["too large", "negative"])
def test_loss_labels_outside_the_classes_raise(labels):
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\]"):
        SoftmaxCrossEntropy(f64).forward(np.zeros((3, 4)), np.array(labels))


def test_loss_labels_given_as_a_list_raise_type_error():
    with pytest.raises(TypeError, match=r"labels must be an integer array"):
        SoftmaxCrossEntropy(f64).forward(np.zeros((3, 4)), [0, 1, 2])


def test_loss_logits_of_wrong_rank_raise_naming_shape():
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*expected rank 2, got shape \(3, 4, 1\)"):
        SoftmaxCrossEntropy(f64).forward(np.zeros((3, 4, 1)), np.array([0, 1, 2]))


def test_loss_backward_with_non_scalar_dout_raises():
    loss = SoftmaxCrossEntropy(f64)
    loss.forward(np.zeros((3, 4)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"expected a scalar, got \(3,\)"):
        loss.backward(np.ones(3))


def test_loss_backward_before_forward_raises():
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy\(\): backward\(\) called before forward\(\)"):
        SoftmaxCrossEntropy().backward()


def test_loss_on_a_device_reads_nothing_back_to_the_host(monkeypatch):
    """No .item()/.get() inside the loss: on a GPU each would be a synchronisation."""
    from tinyalex import backend as B

    def refuse(*a, **k):
        raise AssertionError("the loss read a device array back to the host")

    logits = B.to_device(np.random.default_rng(0).standard_normal((3, 4)), 1, "standin")
    labels = B.to_device(np.array([0, 1, 3]), 1, "standin")
    monkeypatch.setattr(B.DeviceArray, "item", refuse)
    monkeypatch.setattr(B.DeviceArray, "get", refuse)
    loss = SoftmaxCrossEntropy(f64)
    with B.device(1):
        out = loss.forward(logits, labels)
        dlogits = loss.backward()
    assert out.device == 1 and dlogits.device == 1


def test_label_smoothing_loss_is_cross_entropy_against_the_smoothed_targets(rng):
    logits, labels, e = rng.standard_normal((5, 4)), rng.integers(0, 4, 5), 0.1
    q = (1 - e) * np.eye(4)[labels] + e / 4
    expected = -(q * log_softmax(logits)).sum(axis=1).mean()
    assert SoftmaxCrossEntropy(f64, label_smoothing=e).forward(logits, labels).item() == pytest.approx(expected,
                                                                                                      rel=1e-14)


def test_label_smoothing_gradient_is_softmax_minus_smoothed_targets_over_n(rng):
    logits, labels, e = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2]), 0.2
    loss = SoftmaxCrossEntropy(f64, label_smoothing=e)
    loss.forward(logits, labels)
    expected = (softmax(logits) - ((1 - e) * np.eye(5)[labels] + e / 5)) / 4
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-13)


def test_label_smoothing_gradients_match_numerical(rng):
    res = gradcheck(SoftmaxCrossEntropy(f64, label_smoothing=0.1), rng.standard_normal((4, 6)) * 3,
                    rng.integers(0, 6, 4))
    assert res.passed(1e-6)


def test_label_smoothing_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    logits, labels = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    ours = SoftmaxCrossEntropy(f64, label_smoothing=0.1).forward(logits, labels).item()
    theirs = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels),
                                               label_smoothing=0.1).item()
    assert ours == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_label_smoothing_outside_0_1_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        SoftmaxCrossEntropy(label_smoothing=bad)
