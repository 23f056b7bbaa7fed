"""The two towers of section 3.2: half of every layer on each of two devices.

The paper trained AlexNet on two GTX 580 GPUs with 3 GB each: "half of the
kernels (or neurons) on each GPU", and "the GPUs communicate only in certain
layers": conv3, fc6, fc7 and fc8 read the outputs of *both* towers, every
other layer reads only its own tower. tinyalex builds that net literally
(:meth:`tinyalex.models.AlexNet.build_two_towers`) from the layers here:

* tower A's half of every layer lives on device ``d0``, tower B's on ``d1``;
* inside a tower every operation runs inside ``with backend.device(d):`` so
  new arrays land on that tower's device;
* the towers exchange activations only through the layers in this file, which
  copy explicitly with :func:`tinyalex.backend.to_device` and send the
  gradient back the same way in ``backward``. Each one counts the bytes it
  moves, so ``model.transfer_bytes`` tells what the split costs.

The data flow (``(a, b)`` is the pair of tower activations)::

    x on d0 --Broadcast--> (x, copy of x on d1)          input to both towers
    (a, b)  --TowerPair--> (A(a) on d0, B(b) on d1)       a layer's two halves
    (a, b)  --Exchange---> ([a | b'] on d0, [a' | b] on d1)   before conv3, fc6, fc7, fc8
    (a, b)  --Gather-----> [a | b'] on d0                 the logits, for the loss

``[a | b']`` is the concatenation along the channel (or feature) axis, tower
A's channels first, exactly the channel order of the grouped one-device net
(``Conv2D(groups=2)``): that is why the split and the grouped model compute
the same function, and why :func:`split_state_dict` only has to cut every
parameter in two along its first axis.

On NumPy (no devices) the same code runs with the transfers doing nothing;
the bytes are still counted by the device numbers given, so a laptop shows
what two GPUs would exchange. With ``devices=(0, 0)`` nothing crosses.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy

from .. import backend as B
from ..layers.base import Layer, need_cache

__all__ = [
    "on_device", "TowerPair", "Broadcast", "Exchange", "Gather", "tower_sizes",
    "split_state_dict", "merge_state_dict", "is_split_state_dict",
]

TOWERS = ("A", "B")


@contextlib.contextmanager
def on_device(backend_name, dev):
    """Make ``dev`` the current device of backend ``backend_name`` inside the block.

    A no-op on NumPy. For CuPy it enters ``cupy.cuda.Device(dev)`` even when
    the global backend is another one (a model keeps its own backend).
    """
    if backend_name == "numpy" or dev is None:
        yield
        return
    with B.device(dev):
        if backend_name == "cupy" and B.get_backend() != "cupy":
            import cupy
            with cupy.cuda.Device(dev):
                yield
        else:
            yield


def tower_sizes(n: int):
    """How n kernels (or neurons) are shared by towers A and B: (n - n//2, n//2)."""
    return (n - n // 2, n // 2)


class _Link(Layer):
    """Base of the layers that move arrays between the two towers' devices.

    ``devices`` is the pair (d0, d1) of device numbers; ``backend`` the
    backend name. ``bytes_forward`` / ``bytes_backward`` hold how many bytes
    the last forward / backward pass sent from one device to the other.
    """

    def __init__(self, devices, backend_name, dtype=numpy.float32):
        super().__init__(dtype)
        self.devices = tuple(devices)
        self.backend_name = backend_name
        self.bytes_forward = 0
        self.bytes_backward = 0

    def ctx(self, tower):
        """The device context of tower 0 (A) or 1 (B); none on NumPy."""
        return on_device(self.backend_name, self.devices[tower])

    def _moved(self, devices, backend):
        """Layer.to's hook: a link moves with the model to a new pair of devices."""
        self.devices, self.backend_name = tuple(int(d) for d in devices), backend

    def send(self, x, src, dst, direction):
        """Copy x from tower ``src``'s device to tower ``dst``'s, counting its bytes."""
        if self.devices[src] != self.devices[dst]:
            if direction == "forward":
                self.bytes_forward += int(x.nbytes)
            else:
                self.bytes_backward += int(x.nbytes)
        if self.backend_name == "numpy":
            return x
        return B.to_device(x, self.devices[dst], self.backend_name)

    def forward(self, x):
        self.bytes_forward = 0
        self.bytes_backward = 0
        return self._forward(x)

    def backward(self, dout):
        self.bytes_backward = 0
        return self._backward(dout)


class Broadcast(_Link):
    """Deliver the input to both towers: x (on d0) -> (x, copy of x on d1).

    Backward: both towers send a gradient for x; tower B's comes back to d0
    and is added, dx = dx_A + dx_B.
    """

    def _forward(self, x):
        return x, self.send(x, 0, 1, "forward")

    def _backward(self, dpair):
        da, db = dpair
        if da is None and db is None:   # conv1 computed no input gradient (the input is data)
            return None
        db_home = self.send(db, 1, 0, "backward")
        with self.ctx(0):
            return da + db_home


class Exchange(_Link):
    """Each tower gets the other's half: (a, b) -> ([a | b'] on d0, [a' | b] on d1).

    The concatenation is along axis 1 (channels or features), A's part first.
    Backward: the gradient of each received copy goes back to the tower it
    came from and is added to that tower's own gradient::

        da_total = da[:, :k] + (db[:, :k] sent back from d1)
        db_total = db[:, k:] + (da[:, k:] sent back from d0)

    with k the number of A's channels.
    """

    def __init__(self, devices, backend_name, dtype=numpy.float32):
        super().__init__(devices, backend_name, dtype)
        self.k = None

    def _forward(self, pair):
        a, b = pair
        b_on_A = self.send(b, 1, 0, "forward")
        a_on_B = self.send(a, 0, 1, "forward")
        self.k = a.shape[1]
        with self.ctx(0):
            full_a = B.get_array_module(a).concatenate([a, b_on_A], axis=1)
        with self.ctx(1):
            full_b = B.get_array_module(b).concatenate([a_on_B, b], axis=1)
        return full_a, full_b

    def _backward(self, dpair):
        need_cache(self, "k")
        da, db = dpair
        k = self.k
        d_acopy = self.send(db[:, :k], 1, 0, "backward")    # tower B's gradient for its copy of a
        d_bcopy = self.send(da[:, k:], 0, 1, "backward")    # tower A's gradient for its copy of b
        with self.ctx(0):
            ga = da[:, :k] + d_acopy
        with self.ctx(1):
            gb = db[:, k:] + d_bcopy
        return ga, gb


class Gather(_Link):
    """Bring both halves of the output to d0: (a, b) -> [a | b'] (the logits, for the loss).

    Backward: dlogits (on d0) is cut at A's width; B's part goes back to d1.
    """

    def __init__(self, devices, backend_name, dtype=numpy.float32):
        super().__init__(devices, backend_name, dtype)
        self.k = None

    def _forward(self, pair):
        a, b = pair
        b_on_A = self.send(b, 1, 0, "forward")
        self.k = a.shape[1]
        with self.ctx(0):
            return B.get_array_module(a).concatenate([a, b_on_A], axis=1)

    def _backward(self, dout):
        need_cache(self, "k")
        k = self.k
        with self.ctx(0):
            da = dout[:, :k]
            db_on_A = dout[:, k:]
        return da, self.send(db_on_A, 0, 1, "backward")


class TowerPair(Layer):
    """One layer of the split net: its tower-A half on d0 and tower-B half on d1.

    ``forward((a, b))`` runs ``A.forward(a)`` inside ``device(d0)`` and
    ``B.forward(b)`` inside ``device(d1)``; nothing crosses between them.
    Parameters are named "A.W", "B.W", so the model shows "conv2.A.W".
    """

    def __init__(self, layer_a, layer_b, devices, backend_name):
        super().__init__(layer_a.dtype)
        self.A, self.B = layer_a, layer_b
        self.devices = tuple(devices)
        self.backend_name = backend_name

    def children(self):
        return OrderedDict([("A", self.A), ("B", self.B)])

    def ctx(self, tower):
        return on_device(self.backend_name, self.devices[tower])

    def to(self, devices, backend=None):
        """Move tower A's half to devices[0] and tower B's to devices[1] (NumPy: no devices)."""
        backend = backend or B.get_backend()
        self.devices, self.backend_name = tuple(int(d) for d in devices), backend
        self.A.to(None if backend == "numpy" else self.devices[0], backend)
        self.B.to(None if backend == "numpy" else self.devices[1], backend)
        return self

    def forward(self, pair):
        a, b = pair
        with self.ctx(0):
            a = self.A.forward(a)
        with self.ctx(1):
            b = self.B.forward(b)
        return a, b

    def backward(self, dpair):
        da, db = dpair
        with self.ctx(0):
            da = self.A.backward(da)
        with self.ctx(1):
            db = self.B.backward(db)
        return da, db

    def extra_repr(self):
        return f"A={self.A} on {self.devices[0]}, B={self.B} on {self.devices[1]}"


# --------------------------------------------------------------------------
# Converting parameters between the grouped (one device) and split nets.
# --------------------------------------------------------------------------
def is_split_state_dict(state) -> bool:
    """True if the names look like "conv1.A.W" (the split net's)."""
    return any(".A." in name or ".B." in name for name in state)


def split_state_dict(state):
    """Grouped names -> split names: "conv2.W" -> "conv2.A.W", "conv2.B.W".

    Every parameter (conv W (F, C/G, kh, kw), conv b (F,), fc W (out, in),
    fc b (out,)) is cut along its first axis at tower A's share, F - F//2:
    tower A gets the first kernels (neurons), tower B the rest, the same
    channel order the grouped convolution and the exchanges use. Works on
    host or device arrays (slices are views; copy if you need to).
    """
    out = OrderedDict()
    for name, value in state.items():
        layer, _, key = name.rpartition(".")
        if not layer:
            raise ValueError(f"split_state_dict: parameter name {name!r} is not of the form 'layer.W'")
        ka, _ = tower_sizes(value.shape[0])
        out[f"{layer}.A.{key}"] = value[:ka]
        out[f"{layer}.B.{key}"] = value[ka:]
    return out


def merge_state_dict(state):
    """Split names -> grouped names: concatenate "conv2.A.W" and "conv2.B.W" into "conv2.W".

    Host (NumPy) arrays out, whatever devices the halves are on.
    """
    out = OrderedDict()
    for name in state:
        parts = name.split(".")
        if len(parts) < 3 or parts[-2] not in TOWERS:
            raise ValueError(f"merge_state_dict: {name!r} is not a split name like 'conv2.A.W'")
        layer, key = ".".join(parts[:-2]), parts[-1]
        merged = f"{layer}.{key}"
        if merged in out:
            continue
        a_name, b_name = f"{layer}.A.{key}", f"{layer}.B.{key}"
        if a_name not in state or b_name not in state:
            raise KeyError(f"merge_state_dict: {layer!r} needs both {a_name!r} and {b_name!r}")
        out[merged] = numpy.concatenate([B.to_host(state[a_name]), B.to_host(state[b_name])], axis=0)
    return out
