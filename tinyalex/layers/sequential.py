"""Sequential: layers applied in order, differentiated in reverse order."""
from __future__ import annotations

from collections import OrderedDict

import numpy

from .base import Layer


class Sequential(Layer):
    """Runs ``forward`` through the layers in order and ``backward`` in reverse.

    Layers may be given as a list (named "0", "1", ...) or as (name, layer)
    pairs / a dict, so parameters get readable names such as "conv1.W".
    ``activations`` holds each named layer's last output after a forward pass
    when ``keep_activations`` is True.
    """

    runs_children_in_order = True

    def __init__(self, *layers, dtype=numpy.float32):
        super().__init__(dtype)
        if len(layers) == 1 and isinstance(layers[0], (dict, OrderedDict)):
            items = list(layers[0].items())
        elif layers and all(isinstance(l, tuple) for l in layers):
            items = list(layers)
        else:
            items = [(str(i), l) for i, l in enumerate(layers)]
        self.layers = OrderedDict(items)
        self.keep_activations = False
        self.activations = OrderedDict()

    def children(self):
        return self.layers

    def __getitem__(self, name):
        return self.layers[name] if isinstance(name, str) else list(self.layers.values())[name]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        self.activations = OrderedDict()
        for name, layer in self.layers.items():
            x = layer.forward(x)
            if self.keep_activations:
                self.activations[name] = x
        return x

    def backward(self, dout):
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return dout
