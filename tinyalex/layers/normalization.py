"""Batch normalization (Ioffe and Szegedy 2015), what replaced LRN in VGG's successors and ResNet."""
from __future__ import annotations

import numpy

from ..backend import get_array_module, to_device
from .base import Layer, check_dout, check_input, need_cache, shape_error


class BatchNorm(Layer):
    r"""Normalize each channel over the batch (and the spatial positions), then scale and shift.

    Shapes: x (N, C, ...) with C = ``num_features``; gamma, beta,
    running_mean, running_var (C,). The statistics of channel c are taken
    over every axis but the channel axis: m = N (BatchNorm1d on (N, C)) or
    m = N*H*W (BatchNorm2d on (N, C, H, W)) values.

    Forward in training, per channel:

    .. math::
        \mu = \frac1m \sum x, \quad \sigma^2 = \frac1m \sum (x - \mu)^2, \quad
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y = \gamma \hat x + \beta

    and the running averages, as PyTorch (the variance unbiased, m/(m-1)):
    ``running = (1 - momentum) * running + momentum * batch``. In evaluation
    mu and sigma^2 are the running averages instead, so y depends on x alone.

    Backward, with :math:`g = dy \cdot \gamma` (sums over the m values of a channel):

    .. math::
        d\gamma = \sum dy\, \hat x, \quad d\beta = \sum dy, \quad
        dx = \frac{1}{m \sqrt{\sigma^2 + \epsilon}}
             \Big(m\, g - \sum g - \hat x \sum g\, \hat x\Big)

    (the two sums are the gradient flowing through mu and sigma^2). In
    evaluation mu and sigma^2 are constants and :math:`dx = g / \sqrt{\sigma^2 + \epsilon}`.
    """

    ranks = (2, 3, 4)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=numpy.float32):
        super().__init__(dtype)
        if int(num_features) < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be >= 1, got {num_features}")
        if not 0 <= momentum <= 1 or not eps > 0:
            raise ValueError(f"{type(self).__name__}: need 0 <= momentum <= 1 and eps > 0, got {momentum}, {eps}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        C = self.num_features
        self.params["gamma"] = numpy.ones(C, dtype=self.dtype)
        self.params["beta"] = numpy.zeros(C, dtype=self.dtype)
        self.buffers["running_mean"] = numpy.zeros(C, dtype=self.dtype)
        self.buffers["running_var"] = numpy.ones(C, dtype=self.dtype)
        self.xhat = None

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def update_running(self, mean, var, m):
        """running = (1 - momentum) running + momentum batch, the variance unbiased (m / (m - 1))."""
        mom = self.momentum
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1 - mom                                      # in place: the buffers stay the same arrays
        rm += mom * mean
        rv *= 1 - mom
        rv += (mom * m / (m - 1)) * var

    def forward(self, x):
        check_input(self, x, None)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            raise shape_error(self, f"input (N, {self.num_features}, ...) of rank {' or '.join(map(str, self.ranks))}",
                              f"(N, {self.num_features}, ...)", f"shape {tuple(x.shape)}")
        xp = get_array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))             # every axis but the channel axis
        shape = (1, -1) + (1,) * (x.ndim - 2)             # a (C,) vector broadcast along them
        m = x.size // self.num_features
        if self.training:
            if m < 2:
                raise ValueError(f"{self}: training needs more than 1 value per channel to take a variance, "
                                 f"got input shape {tuple(x.shape)}; use a larger batch or eval()")
            mean = x.mean(axis=axes)
            var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
            self.update_running(mean, var, m)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        self.inv_std = 1 / xp.sqrt(var + self.eps)          # (C,)
        self.xhat = (x - mean.reshape(shape)) * self.inv_std.reshape(shape)
        self.axes, self.bshape, self.m, self.batch_stats = axes, shape, m, self.training
        return self.params["gamma"].reshape(shape) * self.xhat + self.params["beta"].reshape(shape)

    def backward(self, dout):
        need_cache(self, "xhat")
        check_dout(self, dout, self.xhat.shape)
        axes, shape, xhat = self.axes, self.bshape, self.xhat
        self.grads["gamma"] = (dout * xhat).sum(axis=axes)
        self.grads["beta"] = dout.sum(axis=axes)
        g = dout * self.params["gamma"].reshape(shape)
        if not self.batch_stats:                            # evaluation: mean and variance are constants
            return g * self.inv_std.reshape(shape)
        m = self.m
        return (self.inv_std / m).reshape(shape) * (
            m * g - g.sum(axis=axes).reshape(shape) - xhat * (g * xhat).sum(axis=axes).reshape(shape))


class BatchNorm1d(BatchNorm):
    """BatchNorm over (N, C) (after a fully connected layer) or (N, C, L): statistics over N (and L)."""

    ranks = (2, 3)


class BatchNorm2d(BatchNorm):
    """BatchNorm over (N, C, H, W) (after a convolution): statistics over N, H and W, per channel."""

    ranks = (4,)


class WithoutBias(Layer):
    """A convolution whose bias is left out (ResNet's convs): the BatchNorm after it supplies the shift.

    A bias b before BatchNorm is cancelled by the mean it subtracts
    (:math:`(x + b) - \\mu(x + b) = x - \\mu(x)`), so ResNet's convolutions
    have none, and its parameter counts (11,689,512 for ResNet-18) count
    none. This wraps a Conv2D (reference or fast, as built): ``params`` holds
    only its weight "W" (the same array), its bias stays zero and is neither
    trained nor saved. Forward and backward are the convolution's.
    """

    def __init__(self, conv):
        super().__init__(conv.dtype)
        self.conv = conv
        conv.params["b"][...] = 0
        self.params["W"] = conv.params["W"]          # one array: updates and loads reach the conv
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels

    def extra_repr(self):
        return f"{self.conv.extra_repr()}, bias=False"

    def output_shape(self, input_shape):
        return self.conv.output_shape(input_shape)

    def forward(self, x):
        return self.conv.forward(x)

    def backward(self, dout):
        dx = self.conv.backward(dout)
        self.grads["W"] = self.conv.grads["W"]
        return dx

    def to(self, device=None, backend=None):
        """Move W (shared with the conv: after the move the conv holds the moved array) and the zero bias."""
        super().to(device, backend)
        self.conv.params["W"] = self.params["W"]
        self.conv.params["b"] = to_device(self.conv.params["b"], device, backend)
        self.conv.grads.clear()
        self.conv._moved(device, backend)
        return self
