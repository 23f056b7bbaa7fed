"""FastLinear: the reference Linear's numbers with the bias and the gradients written in place.

Read :class:`~tinyalex.layers.Linear` (tinyalex/layers/linear.py) first: it is
the specification. tests/fast/test_linear.py checks this class against it.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..layers.base import check_dout, check_input, need_cache
from ..layers.linear import Linear
from .cpu import grad_buffer

__all__ = ["FastLinear"]


class FastLinear(Linear):
    """Linear with no temporary arrays beyond the product.

    * The bias is added in place to the product ``x W^T``.
    * The weight and bias gradients are written into the existing gradient
      arrays (as PyTorch's ``.grad``): copy them if you keep them across steps.

    Kept between forward and backward: ``x`` (the input), as the reference.
    """

    def forward(self, x):
        """x W^T, then the bias added in place."""
        check_input(self, x, 2, self.in_features)
        xp = get_array_module(x)
        out = xp.matmul(x, self.params["W"].T)
        out += self.params["b"]
        self.x = x
        return out

    def backward(self, dout):
        """dW = dout^T x and db = sum of dout, into the existing gradient arrays; dx = dout W."""
        need_cache(self, "x")
        x = self.x
        check_dout(self, dout, (x.shape[0], self.out_features))
        xp = get_array_module(dout)
        W = self.params["W"]
        dW = grad_buffer(self, "W", W.shape, W.dtype, dout)
        xp.matmul(dout.T, x, out=dW)
        db = grad_buffer(self, "b", (self.out_features,), W.dtype, dout)
        xp.sum(dout, axis=0, out=db)
        return xp.matmul(dout, W)
