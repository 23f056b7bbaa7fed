"""Dropout (section 4.2): each hidden unit is zeroed with probability p in training."""
from __future__ import annotations

import numpy

from ..backend import DeviceGenerators, to_device
from .base import Layer, check_dout, check_input, need_cache, shape_error

MODES = ("inverted", "paper")


class Dropout(Layer):
    r"""Dropout with probability ``p`` of dropping a unit.

    ``mode="inverted"`` (default, the modern form): in training
    :math:`y = x \cdot m / (1 - p)` with :math:`m \sim \text{Bernoulli}(1-p)`;
    in evaluation :math:`y = x`.

    ``mode="paper"`` (the 2012 form): in training :math:`y = x \cdot m`; in
    evaluation :math:`y = (1 - p)\, x` ("multiply their outputs by 0.5").

    Both have the same expected output in training and evaluation. Backward
    is :math:`dx = dout \cdot m \cdot scale` in training and
    :math:`dx = dout \cdot scale_{eval}` in evaluation.

    The mask comes from ``self.generators``: one seedable generator per
    device, made on the first draw there and kept (``seed``). A trainer gives
    all dropout layers of a model one shared set and saves its state in the
    checkpoint. ``set_mask`` fixes the mask (gradient checks, tests).
    """

    def __init__(self, p=0.5, mode="inverted", seed=None, dtype=numpy.float32):
        super().__init__(dtype)
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        if mode not in MODES:
            raise ValueError(f"Dropout: mode must be one of {MODES}, got {mode!r}")
        self.p, self.mode, self.seed = float(p), mode, seed
        self.generators = DeviceGenerators(seed)    # one generator per device, made on first use there
        self.fixed_mask = None
        self.mask = None

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode!r}"

    def set_mask(self, mask):
        """Use this keep-mask (1 = keep) instead of random draws; None to go back to random."""
        self.fixed_mask = mask

    def _draw(self, x):
        return self.generators.on(x).random(x.shape, dtype=x.dtype) >= self.p

    def _moved(self, device, backend):
        if self.fixed_mask is not None:   # a mask from set_mask() moves with the layer
            self.fixed_mask = to_device(self.fixed_mask, device, backend)

    def forward(self, x):
        check_input(self, x, None)
        self.x_shape = x.shape
        dt = x.dtype.type
        if not self.training:
            self.mask = None
            self.scale = dt(1.0) if self.mode == "inverted" else dt(1.0 - self.p)
            return x * self.scale if self.mode == "paper" else x
        keep = self.fixed_mask if self.fixed_mask is not None else self._draw(x)
        if keep.shape != x.shape:
            raise shape_error(self, "mask from set_mask() of the input's shape", tuple(x.shape), tuple(keep.shape))
        self.scale = dt(1.0 / (1.0 - self.p)) if self.mode == "inverted" else dt(1.0)
        self.mask = keep.astype(x.dtype) * self.scale     # the factor each unit is multiplied by
        return x * self.mask

    def backward(self, dout):
        need_cache(self, "scale")
        check_dout(self, dout, self.x_shape)
        if self.mask is None:          # evaluation mode: a constant factor
            return dout * self.scale
        return dout * self.mask
