"""The paper's learning rule (section 5): SGD with momentum and weight decay.

For every parameter ``w`` with gradient ``g = dL/dw`` (averaged over the
batch), one step is, exactly as written in the paper::

    v <- momentum * v - weight_decay * lr * w - lr * g
    w <- w + v

with momentum 0.9, weight decay 0.0005 and ``lr`` 0.01 at the start. The
velocity ``v`` starts at zero. Weight decay here is part of the update (the
paper's form), not a term added to the loss; it applies to every parameter,
weights and biases, as the formula is written (cuda-convnet's configuration
also decays only weights; tinyalex follows the text).

Note the difference from PyTorch's ``torch.optim.SGD``: PyTorch keeps
``v <- momentum * v + (g + wd * w)`` and steps ``w <- w - lr * v``, so the
learning rate multiplies the velocity when it is used. The two agree while
``lr`` is constant; when the schedule divides ``lr`` by 10, the paper's
velocity keeps the steps made at the old rate and decays them away.

Each update happens in place, on the device of its parameter (inside
``with backend.device(device_of(w))``), so the two towers of a model split
over two devices are updated where they live; the velocities are created on
the same device with ``zeros_like``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy

from .. import backend
from ..fast.cpu import in_chunks


CHUNK = 1 << 16   # elements per chunk of the NumPy update (256 KiB of float32: fits in L2)


def _update(v, w, g, m, lr, wd_lr, chunked=True):
    """The paper's two lines, in place and in w's dtype::

        v <- m * v - wd_lr * w - lr * g
        w <- w + v

    On NumPy each line's temporaries (``wd_lr * w``, ``lr * g``) would be
    arrays as large as the parameter (150 MB for fc6), written to memory and
    read back; applying the same lines to one cache-sized chunk at a time
    keeps them in cache and halves the update's time (measured on fc6: 96 ms
    -> 49 ms, one thread). A parameter of more than one chunk is cut into
    one range per thread (``TINYALEX_THREADS``, fast/cpu.py), each walked
    chunk by chunk: NumPy's loops run on one core, and AlexNet's whole
    update then took 38 ms instead of 63 on two cores. The arithmetic is
    identical. CuPy (and non-contiguous arrays) take the lines as written.
    """
    if not (chunked and w.flags.c_contiguous and v.flags.c_contiguous and g.flags.c_contiguous):
        v *= m
        v -= wd_lr * w
        v -= lr * g
        w += v
        return
    V, W, G = v.reshape(-1), w.reshape(-1), g.reshape(-1)     # flat views, no copies

    def chunks(lo, hi):
        for s in range(lo, hi, CHUNK):
            e = min(s + CHUNK, hi)
            vc, wc = V[s:e], W[s:e]
            vc *= m
            vc -= wd_lr * wc
            vc -= lr * G[s:e]
            wc += vc

    if W.size <= CHUNK:
        chunks(0, W.size)
    else:
        in_chunks(W.size, chunks, numpy)         # one range per thread


class SGD:
    """Stochastic gradient descent with the paper's momentum and weight decay.

    Parameters
    ----------
    model_or_named_params
        A model (anything with ``named_parameters()`` and
        ``named_gradients()``, e.g. a :class:`~tinyalex.layers.Layer`), or an
        iterable of ``(name, array)`` pairs; with pairs, pass the gradients to
        :meth:`step` as a dict ``{name: grad}``.
    lr : float
        Learning rate (settable: ``opt.lr = 0.001``).
    momentum : float
        The velocity's decay, 0 <= momentum < 1 (0.9 in the paper).
    weight_decay : float
        Coefficient of ``w`` in the update, >= 0 (0.0005 in the paper).

    Example
    -------
    >>> opt = SGD(model, lr=0.01)
    >>> loss = criterion(model.forward(x), y); model.backward(criterion.backward())
    >>> opt.step()
    """

    def __init__(self, model_or_named_params, lr=0.01, momentum=0.9, weight_decay=5e-4):
        if hasattr(model_or_named_params, "named_parameters") and hasattr(model_or_named_params, "named_gradients"):
            self.model = model_or_named_params
            self._pairs = None
        else:
            self.model = None
            self._pairs = OrderedDict(model_or_named_params)
            for name, p in self._pairs.items():
                if not hasattr(p, "shape"):
                    raise TypeError(f"SGD: parameter {name!r} is not an array ({type(p).__name__})")
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocities: "OrderedDict[str, object]" = OrderedDict()
        self.steps = 0

    # -- hyperparameters, validated on every assignment -------------------
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        value = float(value)
        if not (value > 0 and numpy.isfinite(value)):
            raise ValueError(f"SGD: lr must be a positive finite number, got {value}")
        self._lr = value

    @property
    def momentum(self):
        return self._momentum

    @momentum.setter
    def momentum(self, value):
        value = float(value)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {value}")
        self._momentum = value

    @property
    def weight_decay(self):
        return self._weight_decay

    @weight_decay.setter
    def weight_decay(self, value):
        value = float(value)
        if not (value >= 0 and numpy.isfinite(value)):
            raise ValueError(f"SGD: weight_decay must be >= 0, got {value}")
        self._weight_decay = value

    # -- the parameters ------------------------------------------------------
    def named_parameters(self):
        """(name, array) pairs, looked up afresh (``model.to()`` replaces arrays)."""
        if self.model is not None:
            return list(self.model.named_parameters())
        return list(self._pairs.items())

    def _gradients(self, grads):
        if grads is not None:
            return dict(grads)
        if self.model is None:
            raise ValueError("SGD.step: built from (name, array) pairs, so pass the gradients: step({name: grad})")
        return dict(self.model.named_gradients())

    # -- the update ------------------------------------------------------------
    def step(self, grads=None):
        """Apply one update to every parameter, in place, on its own device."""
        grads = self._gradients(grads)
        m, lr, wd_lr = self.momentum, self.lr, self.weight_decay * self.lr
        for name, w in self.named_parameters():
            g = grads.get(name)
            if g is None:
                raise ValueError(
                    f"SGD.step: parameter {name!r} has no gradient; run the model's backward() before step()")
            if g.shape != w.shape:
                raise ValueError(f"SGD.step: gradient of {name!r} has shape {g.shape}, parameter {w.shape}")
            with backend.device(backend.device_of(w)):
                xp = backend.get_array_module(w)
                v = self.velocities.get(name)
                if v is None or v.shape != w.shape or backend.device_of(v) != backend.device_of(w) \
                        or backend.backend_of(v) != backend.backend_of(w):
                    v = self.velocities[name] = xp.zeros_like(w)
                _update(v, w, g, m, lr, wd_lr, chunked=xp is numpy)
        self.steps += 1

    def zero_grad(self):
        """Zero the model's gradients. (Not needed between steps: every
        backward pass overwrites ``layer.grads``; kept for symmetry with
        PyTorch.)"""
        if self.model is not None and hasattr(self.model, "zero_grad"):
            self.model.zero_grad()

    # -- state ---------------------------------------------------------------------
    def state_dict(self):
        """Host copies of the velocities by parameter name, and the hyperparameters."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "steps": self.steps,
            "velocities": OrderedDict((n, backend.to_host(v).copy()) for n, v in self.velocities.items()),
        }

    def load_state_dict(self, state):
        """Restore hyperparameters and velocities (moved to each parameter's device)."""
        params = dict(self.named_parameters())
        vel = state.get("velocities", {})
        unknown = [n for n in vel if n not in params]
        if unknown:
            raise KeyError(f"SGD.load_state_dict: velocities for unknown parameters {unknown}")
        self.lr = state["lr"]
        self.momentum = state["momentum"]
        self.weight_decay = state["weight_decay"]
        self.steps = int(state.get("steps", 0))
        self.velocities = OrderedDict()
        for name, v in vel.items():
            w = params[name]
            v = numpy.asarray(v)
            if v.shape != w.shape:
                raise ValueError(f"SGD.load_state_dict: velocity of {name!r} has shape {v.shape}, parameter {w.shape}")
            self.velocities[name] = backend.to_device_of(v.astype(w.dtype), w)
        return self

    def __repr__(self):
        return f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay})"
