"""The loss: softmax cross-entropy ("multinomial logistic regression")."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from .base import Layer, check_input, need_cache, shape_error


def softmax(logits, axis=-1):
    """Numerically stable softmax: subtract the row maximum before exp."""
    xp = get_array_module(logits)
    z = logits - logits.max(axis=axis, keepdims=True)
    e = xp.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(logits, axis=-1):
    """log softmax(z) = z - max - log(sum(exp(z - max))), stable for large logits."""
    xp = get_array_module(logits)
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))


class SoftmaxCrossEntropy(Layer):
    r"""Mean softmax cross-entropy over a batch.

    For logits z (N, K) and integer labels y (N,):

    .. math::
        p = \text{softmax}(z), \qquad
        L = -\frac{1}{N} \sum_n \log p_{n, y_n}, \qquad
        \frac{\partial L}{\partial z} = \frac{1}{N}\,(p - \text{onehot}(y))

    ``forward(logits, labels)`` returns the loss as a 0-d array on the
    logits' device (read it with ``float(to_host(loss))``);
    ``backward(dout=1.0)`` returns dL/dlogits.

    Label smoothing (``label_smoothing=e > 0``, not in the paper; Szegedy
    et al. 2016, "Rethinking the Inception architecture") trains on the
    target q = (1 - e) onehot(y) + e / K instead of onehot(y):

    .. math::
        L = -\frac{1}{N} \sum_n \sum_k q_{n,k} \log p_{n,k}, \qquad
        \frac{\partial L}{\partial z} = \frac{1}{N}\,(p - q)

    so the net is never pushed to make one logit infinitely larger than
    the rest. ``e = 0`` is the formula above.
    """

    def __init__(self, dtype=numpy.float32, label_smoothing=0.0):
        super().__init__(dtype)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"SoftmaxCrossEntropy: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.probs = None

    def targets(self, labels, K, dtype):
        """q (N, K): onehot(labels), smoothed to (1 - e) onehot + e / K when label_smoothing = e."""
        xp = get_array_module(labels)
        onehot = (xp.arange(K).reshape(1, K) == labels.reshape(-1, 1)).astype(dtype)
        e = self.label_smoothing
        return onehot if e == 0 else onehot * dtype.type(1 - e) + dtype.type(e / K)

    def forward(self, logits, labels):
        xp = get_array_module(logits)
        check_input(self, logits, 2)
        if not hasattr(labels, "dtype"):
            raise TypeError(f"{self}: labels must be an integer array on the logits' device, got {type(labels).__name__}")
        if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
            raise shape_error(self, "one integer label per row of logits", f"({logits.shape[0]},)", tuple(labels.shape))
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{self}: labels must be integers, got dtype {labels.dtype}")
        N, K = logits.shape
        # Host labels are range-checked here. Device labels are not: the check
        # would read back from the GPU every batch (a synchronisation); the
        # data loaders produce valid labels on the host before the transfer.
        if N and isinstance(labels, numpy.ndarray) and not (0 <= labels.min() and labels.max() < K):
            raise ValueError(f"{self}: labels must be class indices in [0, {K - 1}], "
                             f"got values from {labels.min().item()} to {labels.max().item()}")
        logp = log_softmax(logits)
        self.probs = xp.exp(logp)
        self.labels = labels
        picked = xp.take_along_axis(logp, labels.reshape(N, 1).astype(xp.int64), axis=1)
        if self.label_smoothing == 0:
            return -picked.sum() / logits.dtype.type(N)
        e = logits.dtype.type(self.label_smoothing)   # -(1 - e) log p_y - (e / K) sum_k log p_k
        return -((1 - e) * picked.sum() + e / K * logp.sum()) / logits.dtype.type(N)

    def backward(self, dout=1.0):
        need_cache(self, "probs")
        if getattr(dout, "ndim", 0) != 0:
            raise shape_error(self, "dout (the gradient of the scalar loss)", "a scalar", tuple(dout.shape))
        N, K = self.probs.shape
        dt = self.probs.dtype.type
        return (self.probs - self.targets(self.labels, K, self.probs.dtype)) * (dout / dt(N))
