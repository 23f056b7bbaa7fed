"""LRN: the paper's formula (alpha not divided by n), the Caffe/PyTorch convention, edges, gradients."""
import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck
from tinyalex.layers import LRN

f64 = np.float64


def lrn_loop(a, n, alpha_eff, beta, k):
    """Section 3.3 written out: b[i] = a[i] / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a[j]^2)^beta."""
    C = a.shape[1]
    b = np.empty_like(a)
    for i in range(C):
        lo, hi = max(0, i - n // 2), min(C - 1, i + (n - 1) // 2)
        s = k + alpha_eff * (a[:, lo:hi + 1] ** 2).sum(axis=1)
        b[:, i] = a[:, i] / s ** beta
    return b


def test_lrn_defaults_are_the_papers():
    layer = LRN()
    assert (layer.size, layer.alpha, layer.beta, layer.k, layer.convention) == (5, 1e-4, 0.75, 2.0, "paper")
    assert layer.alpha_eff == 1e-4                       # NOT divided by n
    assert LRN(convention="caffe").alpha_eff == pytest.approx(2e-5)


@pytest.mark.parametrize("convention", ["paper", "caffe"])
@pytest.mark.parametrize("C", [3, 5, 8], ids=["C<n", "C==n", "C>n"])
def test_lrn_large_alpha_matches_formula(convention, C, rng):
    x = rng.standard_normal((2, C, 3, 4)) * 2
    layer = LRN(alpha=0.5, convention=convention, dtype=f64)
    ref = lrn_loop(x, 5, 0.5 if convention == "paper" else 0.1, 0.75, 2.0)
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-13)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
def test_lrn_any_window_size_matches_formula(size, rng):
    x = rng.standard_normal((2, 7, 2, 3))
    ref = lrn_loop(x, size, 0.3, 0.75, 1.0)
    np.testing.assert_allclose(LRN(size, alpha=0.3, k=1.0, dtype=f64).forward(x), ref, rtol=1e-13)


def test_lrn_conventions_differ_at_large_alpha(rng):
    x = rng.standard_normal((1, 6, 2, 2))
    paper = LRN(alpha=0.5, dtype=f64).forward(x)
    caffe = LRN(alpha=0.5, convention="caffe", dtype=f64).forward(x)
    assert np.abs(paper - caffe).max() > 0.05


def test_lrn_paper_equals_caffe_with_alpha_times_n(rng):
    x = rng.standard_normal((2, 7, 3, 3))
    np.testing.assert_allclose(LRN(alpha=0.1, dtype=f64).forward(x),
                               LRN(alpha=0.5, convention="caffe", dtype=f64).forward(x), rtol=1e-14)


@pytest.mark.parametrize("C", [3, 5, 8])
def test_lrn_paper_convention_equals_torch_with_alpha_times_n(C, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, C, 3, 4)) * 2
    ref = torch.nn.functional.local_response_norm(torch.tensor(x), size=5, alpha=5 * 0.5, beta=0.75, k=2.0)
    np.testing.assert_allclose(LRN(alpha=0.5, dtype=f64).forward(x), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("size", [4, 5])
def test_lrn_caffe_convention_equals_torch_with_the_same_alpha(size, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 8, 3, 4)) * 2
    ref = torch.nn.functional.local_response_norm(torch.tensor(x), size=size, alpha=0.5, beta=0.75, k=2.0)
    np.testing.assert_allclose(LRN(size, alpha=0.5, convention="caffe", dtype=f64).forward(x), ref.numpy(), rtol=1e-12)


def test_lrn_backward_matches_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 7, 3, 3)) * 2
    dout = rng.standard_normal(x.shape)
    layer = LRN(alpha=0.5, dtype=f64)
    layer.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.local_response_norm(tx, size=5, alpha=2.5, beta=0.75, k=2.0).backward(torch.tensor(dout))
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("convention", ["paper", "caffe"])
@pytest.mark.parametrize("C", [3, 5, 8], ids=["C<n", "C==n", "C>n"])
@pytest.mark.parametrize("alpha", [1e-4, 0.5], ids=["paper alpha", "large alpha"])
def test_lrn_gradients_match_numerical(convention, C, alpha, rng):
    x = rng.standard_normal((2, C, 3, 3)) * 2
    assert gradcheck(LRN(alpha=alpha, convention=convention, dtype=f64), x).passed(1e-6)


@pytest.mark.parametrize("size", [2, 4, 6])
def test_lrn_gradients_match_numerical_for_even_windows(size, rng):
    """Even n makes the window asymmetric; backward must use the mirrored window."""
    x = rng.standard_normal((2, 7, 2, 2)) * 2
    assert gradcheck(LRN(size, alpha=0.5, dtype=f64), x).passed(1e-6)


def test_lrn_gradients_match_numerical_with_other_beta_and_k(rng):
    x = rng.standard_normal((2, 6, 2, 3))
    assert gradcheck(LRN(alpha=1.0, beta=0.5, k=1.0, dtype=f64), x).passed(1e-6)


def test_lrn_edge_channel_uses_clipped_window():
    x = np.zeros((1, 4, 1, 1))
    x[0, 3] = 1.0                              # only the last channel is active
    out = LRN(alpha=1.0, beta=1.0, k=1.0, dtype=f64).forward(x)
    assert out[0, 3, 0, 0] == pytest.approx(1 / (1 + 1))        # its clipped window holds itself
    assert out[0, 0, 0, 0] == 0.0


def test_lrn_rejects_unknown_convention():
    with pytest.raises(ValueError, match=r"convention must be one of \('paper', 'caffe'\), got 'torch'"):
        LRN(convention="torch")


def test_lrn_wrong_rank_raises_naming_shapes():
    with pytest.raises(ValueError, match=r"LRN\(size=5.*expected rank 4, got shape \(3, 4\)"):
        LRN().forward(np.zeros((3, 4), np.float32))


class LRNWithoutCrossTerm(LRN):
    """A planted bug: backward forgets that b[i] depends on the neighbours a[j], j != i."""


    def backward(self, dout):
        return dout * self.s_pow


@pytest.mark.parametrize("alpha", [1e-4, 0.5], ids=["paper alpha", "large alpha"])
def test_gradcheck_catches_a_forgotten_cross_channel_term(alpha, rng):
    """Even at the paper's small alpha the missing term is far above the 1e-6 tolerance."""
    x = rng.standard_normal((2, 7, 3, 3)) * 2
    res = gradcheck(LRNWithoutCrossTerm(alpha=alpha, dtype=f64), x)
    assert res.errors["x"] > 1e-4
