"""Layer: the base class of every tinyalex layer and model.

A layer is a function with a hand-written derivative::

    y  = layer.forward(x)          # keeps what backward needs on self
    dx = layer.backward(dy)        # dL/dx from dL/dy; fills layer.grads

Parameters and their gradients live in two dicts keyed by name, as in
CS231n: ``layer.params["W"]`` and ``layer.grads["W"]``. State that is saved
but not trained (BatchNorm's running averages) lives in ``layer.buffers``,
as PyTorch's buffers: in ``state_dict()``, moved by ``to()``, never given
to the optimizer. Containers
(:class:`~tinyalex.layers.Sequential`, the AlexNet model) hold sub-layers and
name their parameters with dotted paths, as PyTorch does: ``"conv1.W"``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy

from ..backend import device, device_of, get_array_module, get_backend, to_device, to_device_of, to_host

_FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def check_dtype(dtype) -> numpy.dtype:
    """float32 (default everywhere) or float64 (gradient checks)."""
    dt = numpy.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


class Layer:
    """Base class: parameters, gradients, train/eval mode, dtype, device.

    Subclasses implement ``forward(x)`` and ``backward(dout)``. Parameters are
    created in ``self.dtype`` on the host; :meth:`to` moves them to a device.
    """

    #: True when ``forward`` is exactly ``children()``'s forwards in order, and ``backward``
    #: their backwards in reverse (Sequential, AlexNet): code that runs a model part by part
    #: (fast/replicas.py runs the fully connected head on the whole batch) relies on it.
    runs_children_in_order = False

    def __init__(self, dtype=numpy.float32):
        self.dtype = check_dtype(dtype)
        self.params: "OrderedDict[str, object]" = OrderedDict()
        self.grads: "OrderedDict[str, object]" = OrderedDict()
        self.buffers: "OrderedDict[str, object]" = OrderedDict()   # saved, not trained
        self.training = True

    # -- the two passes --------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- modes -------------------------------------------------------------
    def train(self, mode: bool = True):
        """Training mode (dropout active). Returns self, as in PyTorch."""
        self.training = bool(mode)
        for child in self.children().values():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode (dropout off). Returns self."""
        return self.train(False)

    # -- structure ---------------------------------------------------------
    def children(self) -> "OrderedDict[str, Layer]":
        """Named sub-layers (none for a plain layer)."""
        return OrderedDict()

    def named_layers(self, prefix: str = ""):
        """Yield (dotted name, layer) for this layer and all sub-layers."""
        yield prefix, self
        for name, child in self.children().items():
            yield from child.named_layers(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = ""):
        """Yield (dotted name, array) for every parameter, e.g. ("conv1.W", W)."""
        for lname, layer in self.named_layers(prefix):
            for pname, p in layer.params.items():
                yield (f"{lname}.{pname}" if lname else pname), p

    def named_gradients(self, prefix: str = ""):
        """Yield (dotted name, gradient) in the same order as named_parameters."""
        for lname, layer in self.named_layers(prefix):
            for pname in layer.params:
                yield (f"{lname}.{pname}" if lname else pname), layer.grads.get(pname)

    def named_buffers(self, prefix: str = ""):
        """Yield (dotted name, array) for every buffer, e.g. ("bn1.running_mean", m)."""
        for lname, layer in self.named_layers(prefix):
            for bname, b in layer.buffers.items():
                yield (f"{lname}.{bname}" if lname else bname), b

    def parameters(self):
        """A list of all parameter arrays."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self):
        """Set every gradient to zero (allocating it if missing), each on its parameter's device."""
        for _, layer in self.named_layers():
            for name, p in layer.params.items():
                g = layer.grads.get(name)
                with device(device_of(p)):      # towers may live on different devices
                    if g is None or g.shape != p.shape:
                        layer.grads[name] = get_array_module(p).zeros_like(p)
                    else:
                        g[...] = 0

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, numpy.ndarray]":
        """Host (NumPy) copies of all parameters and buffers, by dotted name (layer by layer)."""
        return OrderedDict((n, to_host(d[k]).copy()) for n, (d, k) in self._state_slots())

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays into the parameters and buffers (in place, on their devices).

        Refuses missing or extra names (with ``strict``) and shape mismatches
        with an error naming the layer, the parameter and both shapes.
        :meth:`convert_state_dict` may rename the state first.
        """
        state = self.convert_state_dict(state)
        own = OrderedDict(self._state_slots())
        missing = [n for n in own if n not in state]
        extra = [n for n in state if n not in own]
        if strict and (missing or extra):
            expected = ", ".join(f"{n!r} {tuple(own[n][0][own[n][1]].shape)}" for n in missing)
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing parameters {missing}, "
                f"unexpected parameters {extra}" + (f"; the model expects {expected}" if missing else "")
            )
        for name, (slots, key) in own.items():
            if name in state and tuple(state[name].shape) != tuple(slots[key].shape):
                raise ValueError(
                    f"layer {name.rpartition('.')[0]!r}: {name!r}: the model expects shape "
                    f"{tuple(slots[key].shape)}, the state has {tuple(state[name].shape)}"
                )
        for name, (slots, key) in own.items():
            if name not in state:
                continue
            p = slots[key]
            with device(device_of(p)):
                p[...] = to_device_of(numpy.asarray(to_host(state[name])).astype(p.dtype), p)
        return self

    def convert_state_dict(self, state):
        """Hook for :meth:`load_state_dict`: rename a state dict saved another way (default: as is).

        The AlexNet model uses it to load grouped weights ("conv2.W") into its
        two towers ("conv2.A.W", "conv2.B.W") and back.
        """
        return state

    def _state_slots(self):
        """(dotted name, (dict, key)) of every parameter and buffer, each layer's parameters first."""
        for lname, layer in self.named_layers():
            for d in (layer.params, layer.buffers):
                for key in d:
                    yield (f"{lname}.{key}" if lname else key), (d, key)

    def to(self, device=None, backend=None):
        """Move all parameters, gradients and buffers to a device, explicitly; returns self.

        ``backend`` is "numpy", "cupy" or "standin" (default: the current one).
        Moves this layer's own arrays, then each child's (``child.to``), so a
        container can place its children on different devices.
        """
        backend = backend or get_backend()
        self._moved(device, backend)
        for d in (self.params, self.grads, self.buffers):
            for k, v in d.items():
                if v is not None:
                    d[k] = to_device(v, device, backend)
        for child in self.children().values():
            child.to(device, backend)
        return self

    def _moved(self, device, backend):
        """Hook called by :meth:`to` first: layers holding other device state move it here (none by default)."""

    def extra_repr(self) -> str:
        return ""

    def __str__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        kids = self.children()
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        body = "\n".join(f"  ({n}): " + repr(c).replace("\n", "\n  ") for n, c in kids.items())
        return f"{type(self).__name__}(\n{body}\n)"


def shape_error(layer, what, expected, actual):
    """A ValueError naming the layer, what was expected and what came."""
    return ValueError(f"{layer}: {what}: expected {expected}, got {actual}")


def check_input(layer, x, ndim, channels=None, channel_axis=1):
    """Validate rank, channel count and dtype of a layer's input (``ndim=None``: any rank)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{layer}: input must be an array (numpy/cupy), got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        names = {4: "(N, C, H, W)", 2: "(N, features)"}.get(ndim, f"{ndim} dimensions")
        raise shape_error(layer, f"input of rank {ndim} {names}", f"rank {ndim}", f"shape {tuple(x.shape)}")
    if channels is not None and x.shape[channel_axis] != channels:
        raise shape_error(layer, f"input size along axis {channel_axis}", channels, f"{x.shape[channel_axis]} (shape {tuple(x.shape)})")
    if x.dtype != layer.dtype:
        raise TypeError(
            f"{layer}: input dtype {x.dtype} does not match the layer's {layer.dtype}; "
            f"convert explicitly with x.astype({layer.dtype.name}) (tinyalex never casts silently)"
        )


def check_dout(layer, dout, expected_shape):
    """Validate the upstream gradient: the shape and dtype of the forward output.

    Without this, a wrong ``dout`` would broadcast silently or fail deep inside
    NumPy with a message that names no layer.
    """
    if not hasattr(dout, "shape") or not hasattr(dout, "dtype"):
        raise TypeError(f"{layer}: dout must be an array (numpy/cupy), got {type(dout).__name__}")
    if tuple(dout.shape) != tuple(expected_shape):
        raise shape_error(layer, "dout shape (must equal the forward output's)",
                          tuple(expected_shape), tuple(dout.shape))
    if dout.dtype != layer.dtype:
        raise TypeError(
            f"{layer}: dout dtype {dout.dtype} does not match the layer's {layer.dtype}; "
            f"convert explicitly with dout.astype({layer.dtype.name}) (tinyalex never casts silently)"
        )


def need_cache(layer, *names):
    """Raise a clear error when backward is called before forward."""
    for n in names:
        if getattr(layer, n, None) is None:
            raise ValueError(f"{layer}: backward() called before forward(); run forward(x) first")
