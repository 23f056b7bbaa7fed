"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), written out as Figure 2 draws it.

The network of the paper (Figure 2, section 3.5), shapes C x H x W::

    input                                              3x227x227
    conv1  96 @ 11x11 / 4, ReLU, LRN                   96x55x55
    pool1  max 3x3 / 2                                 96x27x27
    conv2 256 @ 5x5 pad 2, groups 2, ReLU, LRN         256x27x27
    pool2  max 3x3 / 2                                 256x13x13
    conv3 384 @ 3x3 pad 1 (reads both towers), ReLU    384x13x13
    conv4 384 @ 3x3 pad 1, groups 2, ReLU              384x13x13
    conv5 256 @ 3x3 pad 1, groups 2, ReLU              256x13x13
    pool5  max 3x3 / 2                                 256x6x6 = 9216
    fc6 4096, ReLU, dropout 0.5                        4096
    fc7 4096, ReLU, dropout 0.5                        4096
    fc8 num_classes (softmax in the loss)

60,965,224 parameters for 1000 classes. :meth:`AlexNet.build_one_device`
creates these layers one by one, in this order; ``forward`` runs them in
this order and ``backward`` in the reverse one. The small variants
(:func:`alexnet_small` for 1x28x28, :func:`alexnet_cifar` for 3x32x32) are
the same code called with other numbers.

Two ways to place the two towers (section 3.2):

* ``devices=None`` (or one device number): one device; conv2, conv4 and conv5
  are grouped convolutions (``groups=2``) and LRN normalizes within each
  tower's half of the channels. Parameters "conv1.W", ..., "fc8.b".
* ``devices=(d0, d1)``: :meth:`AlexNet.build_two_towers`: tower A on d0,
  tower B on d1, exchanging activations only before conv3, fc6, fc7 and fc8
  (the links are in :mod:`tinyalex.models.towers`). Parameters "conv1.A.W",
  "conv1.B.W", ...

Both compute the same function with the same weights, and one seed gives the
same weights in both (:func:`~tinyalex.models.towers.split_state_dict` converts).
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy

from .. import backend as B
from ..fast import implementations
from ..layers import Dropout, Flatten, Linear, Tanh
from ..layers.base import Layer, need_cache
from .io import read_npz, save_npz
from .summary import summary
from .towers import (Broadcast, Exchange, Gather, TowerPair, _Link, is_split_state_dict, merge_state_dict,
                     on_device, split_state_dict, tower_sizes)

__all__ = ["AlexNet", "GroupLRN", "INITS", "alexnet", "alexnet_small", "alexnet_cifar"]

INITS = {
    "paper": "weights ~ N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, 0 elsewhere (section 5)",
    "released": "as 'paper' but std 0.03 for conv3, conv4, conv5 (the authors' cuda-convnet layers-145.cfg)",
    "he": "weights ~ N(0, 2 / fan_in) (He et al. 2015), biases 0: keeps the activations' scale from layer to layer",
}
ACTIVATIONS = ("relu", "tanh")


def initial(init, name, rng, dtype):
    """How weight layer ``name`` draws its initial weights (section 5): keyword arguments of Conv2D / Linear.

    Every weight layer draws from the one generator ``rng`` when it is
    created, so the layers draw in the order of Figure 2 and a seed gives one
    net. "he" leaves the std to the layer (its default, sqrt(2 / fan_in)).
    """
    if init == "he":
        return dict(weight_std=None, bias_init=0.0, rng=rng, dtype=dtype)
    std = 0.03 if init == "released" and name in ("conv3", "conv4", "conv5") else 0.01
    bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0   # positive inputs for the ReLUs
    return dict(weight_std=std, bias_init=bias, rng=rng, dtype=dtype)


def _even(n):
    """Round a scaled width to an even number (two towers), at least 2."""
    return max(2, int(round(n / 2)) * 2)


class GroupLRN(Layer):
    """LRN applied within each of ``groups`` channel groups (each tower's own maps).

    In the two-GPU net each GPU normalizes its own kernel maps: the window of
    section 3.3 never reaches the other tower's channels. On one device this
    is the LRN of :class:`~tinyalex.layers.LRN` on x reshaped to
    (N*G, C/G, H, W). ``groups=1`` is plain LRN across all channels (Caffe).
    """

    def __init__(self, lrn, groups=2):
        super().__init__(lrn.dtype)
        self.lrn, self.groups = lrn, int(groups)
        self.x_shape = None

    def extra_repr(self):
        return f"{type(self.lrn).__name__}({self.lrn.extra_repr()}), groups={self.groups}"

    def forward(self, x):
        N, C, H, W = x.shape
        if C % self.groups:
            raise ValueError(f"{self}: {C} channels do not split into {self.groups} groups")
        self.x_shape = x.shape
        y = self.lrn.forward(x.reshape(N * self.groups, C // self.groups, H, W))
        return y.reshape(N, C, H, W)

    def backward(self, dout):
        need_cache(self, "x_shape")
        N, C, H, W = self.x_shape
        dx = self.lrn.backward(dout.reshape(N * self.groups, C // self.groups, H, W))
        return dx.reshape(N, C, H, W)


class AlexNet(Layer):
    """AlexNet as a :class:`~tinyalex.layers.Layer`: ``forward(x) -> logits``, ``backward(dlogits) -> dx``.

    The layers are attributes named as in the paper (``net.conv1``, ``net.relu1``,
    ``net.lrn1``, ``net.pool1``, ..., ``net.fc8``). Arguments (all stored in
    :attr:`config`, so ``build_model(**model.config)`` rebuilds the same net):

    num_classes: outputs of fc8.
    input_shape: (C, H, W) of the images.
    channels, kernel_sizes, strides, paddings: per conv layer (conv1..conv5).
    fc_sizes: the widths of fc6 and fc7.
    width: multiplies every conv and fc6/fc7 width (rounded to even numbers).
    lrn: LRN after conv1 and conv2 (section 3.3); False leaves lrn1, lrn2 out.
    lrn_convention: "paper" (alpha per squared term, default) or "caffe" (alpha / n).
    lrn_size, lrn_alpha, lrn_beta, lrn_k: n, alpha, beta, k (paper: 5, 1e-4, 0.75, 2).
    lrn_across_towers: False (default): LRN within each tower, as on two GPUs;
        True: across all channels, as Caffe (only with one device).
    overlap_pool: True: max pool 3/2 (section 3.4); False: 2/2.
    batchnorm: False (the paper). True: a BatchNorm2d after every convolution,
        before its ReLU (bn1..bn5; Ioffe and Szegedy 2015, not in AlexNet),
        each tower normalizing its own channels; usually with ``lrn=False``.
    dropout: drop probability after fc6 and fc7 (0.5); 0 leaves drop6, drop7 out.
    dropout_mode: "inverted" (scale 1/(1-p) in training, default) or "paper" (x0.5 at test).
    activation: "relu" (section 3.1) or "tanh" (Figure 1's baseline; relu1..relu7 are then Tanh).
    init: "paper", "released" or "he" (see :data:`INITS`).
    seed: seeds the weights and (derived) the dropout masks; None for fresh entropy.
    dtype: float32 (default) or float64 (gradient checks).
    devices: None (one device: the current one; nothing on NumPy), an int (one
        device), or a pair (d0, d1): tower A on d0, tower B on d1; (0, 0) puts
        both towers on device 0.
    backend: "numpy", "cupy" or "standin"; default the current backend.
    fast: True: the fast implementations of tinyalex.fast; False: exactly the
        reference classes of tinyalex/layers (chosen once, here).
    name: the model's name in :data:`~tinyalex.models.MODELS` ("alexnet", "alexnet-small", ...).
    """

    def __init__(self, num_classes=1000, input_shape=(3, 227, 227), channels=(96, 256, 384, 384, 256),
                 kernel_sizes=(11, 5, 3, 3, 3), strides=(4, 1, 1, 1, 1), paddings=(0, 2, 1, 1, 1),
                 fc_sizes=(4096, 4096), *, width=1.0, lrn=True, lrn_convention="paper", lrn_size=5,
                 lrn_alpha=1e-4, lrn_beta=0.75, lrn_k=2.0, lrn_across_towers=False, overlap_pool=True,
                 batchnorm=False, dropout=0.5, dropout_mode="inverted", activation="relu", init="paper", seed=0,
                 dtype=numpy.float32, devices=None, backend=None, fast=True, name="alexnet"):
        super().__init__(dtype)
        self.name = name
        self.num_classes = num_classes
        self.input_shape = tuple(int(v) for v in input_shape)
        numbers = dict(channels=channels, kernel_sizes=kernel_sizes, strides=strides, paddings=paddings,
                       fc_sizes=fc_sizes)
        numbers = {k: tuple(int(v) for v in seq) for k, seq in numbers.items()}
        self.config = OrderedDict(
            name=name, num_classes=num_classes, input_shape=self.input_shape, **numbers, width=width,
            lrn=bool(lrn), lrn_convention=lrn_convention, lrn_size=lrn_size, lrn_alpha=lrn_alpha,
            lrn_beta=lrn_beta, lrn_k=lrn_k, lrn_across_towers=bool(lrn_across_towers),
            overlap_pool=bool(overlap_pool), batchnorm=bool(batchnorm), dropout=float(dropout),
            dropout_mode=dropout_mode, activation=activation, init=init, seed=seed, dtype=self.dtype.name,
            fast=bool(fast))
        self._check_arguments()
        self.num_classes = self.config["num_classes"] = int(num_classes)
        self._place(devices, backend)
        self.channels = tuple(_even(c * width) for c in numbers["channels"])
        self.fc_sizes = tuple(_even(f * width) for f in numbers["fc_sizes"])

        L = implementations(fast, self.backend)                 # the layer classes, chosen once
        rng = numpy.random.default_rng(seed)        # draws every weight, layer by layer
        if self.split:
            self.build_two_towers(L, rng)
        else:
            self.build_one_device(L, rng)
            if self.backend != "numpy":
                self.to(self.devices[0], self.backend)
        self._keep = False
        self._acts = OrderedDict()

    # -- the network of Figure 2 -------------------------------------------------------
    def build_one_device(self, L, rng):
        """The layers of Figure 2 on one device: each tower's half of conv2, conv4, conv5 is a group."""
        cfg, dt, C = self.config, self.dtype, self.input_shape[0]
        (c1, c2, c3, c4, c5), (k1, k2, k3, k4, k5), (s1, s2, s3, s4, s5), (p1, p2, p3, p4, p5), (f6, f7) = \
            self.channels, cfg["kernel_sizes"], cfg["strides"], cfg["paddings"], self.fc_sizes
        init, Act, pool, lrn, drop = self._layer_makers(L, rng)
        lrn_groups = 1 if cfg["lrn_across_towers"] else 2
        self.layer_names = ("conv1", "bn1", "relu1", "lrn1", "pool1", "conv2", "bn2", "relu2", "lrn2", "pool2",
                            "conv3", "bn3", "relu3", "conv4", "bn4", "relu4", "conv5", "bn5", "relu5", "pool5",
                            "flatten", "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8")

        def bn(channels):                # batchnorm=True only (not in the paper); None leaves it out
            return L.BatchNorm2d(channels, dtype=dt) if cfg["batchnorm"] else None

        self.conv1 = L.Conv2D(C, c1, k1, stride=s1, padding=p1, **init("conv1"))
        self.bn1 = bn(c1)
        self.relu1 = Act(dt)
        self.lrn1 = GroupLRN(lrn(), lrn_groups) if cfg["lrn"] else None
        self.pool1 = pool()
        self.conv2 = L.Conv2D(c1, c2, k2, stride=s2, padding=p2, groups=2, **init("conv2"))
        self.bn2 = bn(c2)
        self.relu2 = Act(dt)
        self.lrn2 = GroupLRN(lrn(), lrn_groups) if cfg["lrn"] else None
        self.pool2 = pool()
        self.conv3 = L.Conv2D(c2, c3, k3, stride=s3, padding=p3, **init("conv3"))    # reads both towers
        self.bn3 = bn(c3)
        self.relu3 = Act(dt)
        self.conv4 = L.Conv2D(c3, c4, k4, stride=s4, padding=p4, groups=2, **init("conv4"))
        self.bn4 = bn(c4)
        self.relu4 = Act(dt)
        self.conv5 = L.Conv2D(c4, c5, k5, stride=s5, padding=p5, groups=2, **init("conv5"))
        self.bn5 = bn(c5)
        self.relu5 = Act(dt)
        self.pool5 = pool()
        self.flatten = Flatten(dt)
        self.fc6 = L.Linear(self._features(), f6, **init("fc6"))
        self.relu6 = Act(dt)
        self.drop6 = drop(6)
        self.fc7 = L.Linear(f6, f7, **init("fc7"))
        self.relu7 = Act(dt)
        self.drop7 = drop(7)
        self.fc8 = L.Linear(f7, self.num_classes, **init("fc8"))

    def build_two_towers(self, L, rng):
        """Section 3.2: every layer as two halves, A on d0 and B on d1; the towers meet before conv3, fc6-fc8.

        ``pair(make)`` builds ``TowerPair(make(0), make(1))``: tower A's half,
        then tower B's, each drawing its weights from ``rng`` in that order,
        which is the order of the grouped weights' rows (same seed, same net).
        """
        cfg, dt, C, devs, be = self.config, self.dtype, self.input_shape[0], self.devices, self.backend
        (c1, c2, c3, c4, c5), (k1, k2, k3, k4, k5), (s1, s2, s3, s4, s5), (p1, p2, p3, p4, p5), (f6, f7) = \
            self.channels, cfg["kernel_sizes"], cfg["strides"], cfg["paddings"], self.fc_sizes
        init, Act, pool, lrn, drop = self._layer_makers(L, rng)

        def pair(make):
            return TowerPair(make(0), make(1), devs, be)

        def half(n, t):                 # tower t's share of n kernels / neurons
            return tower_sizes(n)[t]

        self.layer_names = ("input", "conv1", "bn1", "relu1", "lrn1", "pool1", "conv2", "bn2", "relu2", "lrn2",
                            "pool2", "to_conv3", "conv3", "bn3", "relu3", "conv4", "bn4", "relu4", "conv5", "bn5",
                            "relu5", "pool5", "flatten", "to_fc6", "fc6", "relu6", "drop6", "to_fc7", "fc7", "relu7",
                            "drop7", "to_fc8", "fc8", "logits")

        def bn(channels):                # each tower normalizes its own channels
            return pair(lambda t: L.BatchNorm2d(half(channels, t), dtype=dt)) if cfg["batchnorm"] else None

        self.input = Broadcast(devs, be, dt)                 # the image to both towers
        self.conv1 = pair(lambda t: L.Conv2D(C, half(c1, t), k1, stride=s1, padding=p1, **init("conv1")))
        self.bn1 = bn(c1)
        self.relu1 = pair(lambda t: Act(dt))
        self.lrn1 = pair(lambda t: lrn()) if cfg["lrn"] else None     # each tower normalizes its own maps
        self.pool1 = pair(lambda t: pool())
        self.conv2 = pair(lambda t: L.Conv2D(half(c1, t), half(c2, t), k2, stride=s2, padding=p2, **init("conv2")))
        self.bn2 = bn(c2)
        self.relu2 = pair(lambda t: Act(dt))
        self.lrn2 = pair(lambda t: lrn()) if cfg["lrn"] else None
        self.pool2 = pair(lambda t: pool())
        self.to_conv3 = Exchange(devs, be, dt)               # conv3 reads both towers' maps
        self.conv3 = pair(lambda t: L.Conv2D(c2, half(c3, t), k3, stride=s3, padding=p3, **init("conv3")))
        self.bn3 = bn(c3)
        self.relu3 = pair(lambda t: Act(dt))
        self.conv4 = pair(lambda t: L.Conv2D(half(c3, t), half(c4, t), k4, stride=s4, padding=p4, **init("conv4")))
        self.bn4 = bn(c4)
        self.relu4 = pair(lambda t: Act(dt))
        self.conv5 = pair(lambda t: L.Conv2D(half(c4, t), half(c5, t), k5, stride=s5, padding=p5, **init("conv5")))
        self.bn5 = bn(c5)
        self.relu5 = pair(lambda t: Act(dt))
        self.pool5 = pair(lambda t: pool())
        self.flatten = pair(lambda t: Flatten(dt))
        self.to_fc6 = Exchange(devs, be, dt)                 # the fully connected layers read everything
        self.fc6 = pair(lambda t: L.Linear(self._features(), half(f6, t), **init("fc6")))
        self.relu6 = pair(lambda t: Act(dt))
        self.drop6 = pair(lambda t: drop(6, t)) if cfg["dropout"] else None
        self.to_fc7 = Exchange(devs, be, dt)
        self.fc7 = pair(lambda t: L.Linear(f6, half(f7, t), **init("fc7")))
        self.relu7 = pair(lambda t: Act(dt))
        self.drop7 = pair(lambda t: drop(7, t)) if cfg["dropout"] else None
        self.to_fc8 = Exchange(devs, be, dt)
        self.fc8 = pair(lambda t: L.Linear(f7, half(self.num_classes, t), **init("fc8")))
        self.logits = Gather(devs, be, dt)                   # both halves of the logits to d0, for the loss
        if be != "numpy":
            self.to(devs, be)

    def _layer_makers(self, L, rng):
        """The small factories both builds share: init arguments, activation, pool, LRN, dropout."""
        cfg, dt = self.config, self.dtype
        k, s = (3, 2) if cfg["overlap_pool"] else (2, 2)

        def init(name):
            return initial(cfg["init"], name, rng, dt)

        def pool():
            return L.MaxPool2D(k, s, dtype=dt)

        def lrn():
            return L.LRN(cfg["lrn_size"], cfg["lrn_alpha"], cfg["lrn_beta"], cfg["lrn_k"],
                         convention=cfg["lrn_convention"], dtype=dt)

        def drop(layer, tower=0):
            if not cfg["dropout"]:
                return None
            seed = None if cfg["seed"] is None else int(cfg["seed"]) * 1000 + layer * 10 + tower
            return Dropout(cfg["dropout"], cfg["dropout_mode"], seed=seed, dtype=dt)

        Act = L.ReLU if cfg["activation"] == "relu" else Tanh
        return init, Act, pool, lrn, drop

    runs_children_in_order = True       # forward below: children() in order, after check_input(x)

    def _features(self):
        """Inputs of fc6: the size of pool5's output, computed from the layers built so far."""
        return int(numpy.prod(self.output_shapes()["pool5"]))

    # -- structure ----------------------------------------------------------------------
    def children(self):
        """The layers in forward order (lrn, batch norm and dropout left out when switched off)."""
        layers = ((name, getattr(self, name, None)) for name in self.layer_names)
        return OrderedDict((name, layer) for name, layer in layers if layer is not None)

    @property
    def split(self):
        """True for the two-tower net (devices=(d0, d1))."""
        return len(self.devices) == 2

    def output_shapes(self):
        """Each layer's output shape for one image, (C, H, W) or (features,), from the layers (no data)."""
        shapes, shape = OrderedDict(), self.input_shape
        for name, layer in self.children().items():
            if isinstance(layer, _Link):
                continue
            try:
                shape = _output_shape(layer, shape)
            except ValueError as exc:
                raise ValueError(
                    f"AlexNet({self.name!r}): input {'x'.join(map(str, self.input_shape))} is too small: "
                    f"{name} gets {'x'.join(map(str, shape))} ({exc}); use larger images or change "
                    f"kernel_sizes/strides/paddings") from None
            shapes[name] = shape
        return shapes

    def extra_repr(self):
        where = f"devices={self.devices}" if self.split else "one device"
        return f"{self.name!r}, num_classes={self.num_classes}, input={self.input_shape}, {where}"

    @property
    def input_device(self):
        """Where the caller must put x (and labels, for the loss on the logits): None on NumPy."""
        return None if self.backend == "numpy" else self.devices[0]

    @property
    def links(self):
        """The layers that move data between the towers' devices, by name (none on one device)."""
        return OrderedDict((n, s) for n, s in self.children().items() if isinstance(s, _Link))

    @property
    def transfer_bytes(self) -> int:
        """Bytes that crossed between the two devices in the last forward and backward pass."""
        return sum(l.bytes_forward + l.bytes_backward for l in self.links.values())

    def transfer_report(self):
        """Per crossing point: {"forward": bytes, "backward": bytes} of the last passes."""
        return OrderedDict((n, {"forward": l.bytes_forward, "backward": l.bytes_backward})
                           for n, l in self.links.items())

    # -- the passes ----------------------------------------------------------------------
    def forward(self, x):
        """Logits (N, num_classes) on ``input_device``: conv1, relu1, lrn1, pool1, ..., fc8 in order."""
        self.check_input(x)
        self._acts = OrderedDict()
        with self._ctx():
            for name, layer in self.children().items():
                x = layer.forward(x)
                if self._keep and not isinstance(layer, _Link):
                    self._acts[name] = x
        return x

    def backward(self, dlogits):
        """dL/dx from dL/dlogits (on ``input_device``): fc8, ..., conv1; fills every parameter's gradient."""
        with self._ctx():
            for layer in reversed(self.children().values()):
                dlogits = layer.backward(dlogits)
        return dlogits

    def requires_input_grad(self, flag: bool = True):
        """Whether ``backward`` computes dL/dx for the input images (default True).

        Training never uses that gradient (the input is data), and it is
        conv1's largest product (6.7 GFLOP per batch of 32 for the full net),
        so the trainer and the bench switch it off; ``backward`` then returns
        None. Gradient checks and saliency maps need it on. Returns self.
        """
        for _, layer in self.conv1.named_layers():      # conv1, or both towers' halves of it
            if "W" in layer.params:
                layer.compute_input_grad = bool(flag)
        return self

    def check_input(self, x):
        """Raise a one-line error unless x is a batch of this model's images (shape, dtype, device)."""
        want = "x".join(map(str, self.input_shape))
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"AlexNet({self.name!r}): input must be an array of images {want}, "
                            f"shape (N, {', '.join(map(str, self.input_shape))})")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            got = "x".join(map(str, x.shape[1:])) if x.ndim == 4 else f"shape {tuple(x.shape)}"
            hint = ""
            if self.input_shape[1:] == (227, 227) and x.ndim == 4 and tuple(x.shape[2:]) == (224, 224):
                hint = (" (the paper says 224, but its arithmetic (227 - 11) / 4 + 1 = 55 needs 227: "
                        "crop 227x227 patches)")
            raise ValueError(f"AlexNet({self.name!r}) expects images of {want} (input shape (N, "
                             f"{', '.join(map(str, self.input_shape))})), got {got}{hint}")
        if x.dtype != self.dtype:
            raise TypeError(f"AlexNet({self.name!r}) is {self.dtype.name} but x is {x.dtype}; "
                            f"convert explicitly with x.astype(numpy.{self.dtype.name})")
        if self.backend != "numpy" and (B.backend_of(x) != self.backend or B.device_of(x) != self.devices[0]):
            raise B.DeviceMismatchError(
                f"x is on {B.backend_of(x)} device {B.device_of(x)} but this model takes its input on "
                f"{self.backend} device {self.devices[0]}: x = tinyalex.backend.to_device(x, "
                f"model.input_device, {self.backend!r})")

    def _ctx(self):
        return on_device(self.backend, self.devices[0])

    # -- activations -----------------------------------------------------------------------
    @property
    def keep_activations(self):
        """Whether forward keeps every layer's output; also a context manager.

        Both work: ``model.keep_activations = True`` (as on Sequential), and
        ``with model.keep_activations(): model.forward(x)``, which switches it
        on for the block only. ``bool(model.keep_activations)`` is the state.
        """
        return _KeepSwitch(self)

    @keep_activations.setter
    def keep_activations(self, on):
        self._keep = bool(on)

    @property
    def activations(self):
        """Each layer's last output by name ("conv1", "relu1", "lrn1", "pool1", ..., "fc8").

        Kept only while ``keep_activations`` is on, so ordinary training holds
        no extra memory. For the split net each entry is the full activation,
        its two halves gathered explicitly on d0. ``activations.clear()``
        drops what was kept.
        """
        return _Activations(self)

    def _gather_pair(self, pair):
        a, b = pair
        if self.backend != "numpy":
            b = B.to_device(b, self.devices[0], self.backend)
        with self._ctx():
            return B.get_array_module(a).concatenate([a, b], axis=1)

    # -- state and placement: Layer's zero_grad, state_dict, load_state_dict and to ------------
    def convert_state_dict(self, state):
        """Weights of either placement load into either: grouped names are split, split names merged."""
        if self.split and state and not is_split_state_dict(state):
            return split_state_dict(state)
        if not self.split and is_split_state_dict(state):
            return merge_state_dict(state)
        return state

    def grouped_state_dict(self):
        """Host copies under grouped names ("conv2.W"), whichever way the model is placed."""
        state = self.state_dict()
        return merge_state_dict(state) if self.split else state

    def _place(self, devices, backend):
        self.backend = backend or B.get_backend()
        if self.backend not in B.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(B.BACKENDS)}, got {self.backend!r}")
        if devices is None:
            devices = B.current_device() if self.backend == B.get_backend() else 0
        if isinstance(devices, (int, numpy.integer)):
            self.devices = (int(devices),)
        else:
            devices = tuple(int(d) for d in devices)
            if len(devices) != 2:
                raise ValueError(f"devices must be None, one device number or a pair (d0, d1), got {devices}")
            self.devices = devices
        if self.split and self.config["lrn"] and self.config["lrn_across_towers"]:
            raise ValueError("lrn_across_towers=True needs one device: on two devices each tower "
                             "normalizes its own channels (use devices=None)")

    def _moved(self, device, backend):
        """Layer.to's hook: check the placement (a pair for the split net) and record it."""
        if self.split:
            if device is None or isinstance(device, (int, numpy.integer)) or len(device) != 2:
                raise ValueError(f"the split model moves to a pair of devices (d0, d1), got {device!r}")
            self.devices = tuple(int(d) for d in device)
        else:
            if device is not None and not isinstance(device, (int, numpy.integer)):
                raise ValueError(f"the one-device model moves to one device number, got {device!r}")
            self.devices = (B.current_device() if device is None else int(device),)
        self.backend = backend

    def save(self, path):
        """Write the weights and :attr:`config` to ``path`` (.npz), atomically."""
        save_npz(path, self.state_dict(), self.config)

    def load(self, path):
        """Load weights from a .npz written by :meth:`save` or by training (either placement)."""
        return self.load_state_dict(read_npz(path).state)

    def summary(self) -> str:
        """A printable table: layer, class, output shape, parameters, tower/device; totals."""
        return summary(self)

    def _check_arguments(self):
        cfg = self.config
        if not isinstance(cfg["num_classes"], (int, numpy.integer)) or cfg["num_classes"] < 1:
            raise ValueError(f"num_classes must be a positive integer, got {cfg['num_classes']!r}")
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape}")
        if not cfg["width"] > 0:
            raise ValueError(f"width must be > 0, got {cfg['width']}")
        if cfg["activation"] not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {cfg['activation']!r}")
        if cfg["init"] not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {cfg['init']!r}")
        if not 0 <= cfg["dropout"] < 1:
            raise ValueError(f"dropout must be in [0, 1) (0 disables it), got {cfg['dropout']}")
        if cfg["dropout_mode"] not in ("inverted", "paper"):
            raise ValueError(f"dropout_mode must be 'inverted' or 'paper', got {cfg['dropout_mode']!r}")
        if cfg["lrn_convention"] not in ("paper", "caffe"):
            raise ValueError(f"lrn_convention must be 'paper' or 'caffe', got {cfg['lrn_convention']!r}")
        for what, n in (("channels", 5), ("kernel_sizes", 5), ("strides", 5), ("paddings", 5), ("fc_sizes", 2)):
            if len(cfg[what]) != n:
                raise ValueError(f"{what} needs {n} numbers (one per layer), got {cfg[what]}")
        for i, c in enumerate(cfg["channels"]):
            if c % 2:
                raise ValueError(f"conv{i + 1} needs an even number of kernels (two towers), got {c}")


def _output_shape(layer, shape):
    """One layer's output shape for one image from its input shape (no data)."""
    if isinstance(layer, TowerPair):         # the two halves' outputs side by side, as in the grouped net
        a = _output_shape(layer.A, shape)
        if "W" not in layer.A.params:        # pool, ReLU, LRN, flatten, dropout: the channels stay
            return a
        return (a[0] + _output_shape(layer.B, shape)[0],) + a[1:]
    if isinstance(layer, Linear):
        return (layer.out_features,)
    if isinstance(layer, Flatten):
        return (int(numpy.prod(shape)),)
    if hasattr(layer, "output_shape"):       # Conv2D, MaxPool2D
        return tuple(layer.output_shape(shape))
    return shape                             # ReLU, LRN, dropout: same shape


class _Activations(Mapping):
    """model.activations: name -> the layer's last output (the split net's halves gathered on d0)."""

    def __init__(self, model):
        self._model = model

    def __getitem__(self, name):
        stored = self._model._acts.get(name)
        if stored is None:
            if not self._model._acts:
                raise KeyError(
                    f"no activations kept; run forward inside `with model.keep_activations():` "
                    f"(or set model.keep_activations = True) first")
            raise KeyError(f"no activation named {name!r}; kept: {', '.join(self._model._acts)}")
        if isinstance(stored, tuple):      # (a on d0, b on d1): gather explicitly on d0
            return self._model._gather_pair(stored)
        return stored

    def __iter__(self):
        return iter(self._model._acts)

    def __len__(self):
        return len(self._model._acts)

    def clear(self):
        """Drop the kept activations (free their memory)."""
        self._model._acts = OrderedDict()


class _KeepSwitch:
    """``model.keep_activations``: true/false, and callable as a context manager."""

    def __init__(self, model):
        self._model = model

    def __bool__(self):
        return self._model._keep

    def __repr__(self):
        return repr(self._model._keep)

    @contextlib.contextmanager
    def __call__(self, on=True):
        old = self._model._keep
        self._model._keep = bool(on)
        try:
            yield self._model
        finally:
            self._model._keep = old


# --------------------------------------------------------------------------
# The variants: the same AlexNet, other numbers.
# --------------------------------------------------------------------------
def alexnet(num_classes=1000, input_shape=(3, 227, 227), **options):
    """The paper's net: 3x227x227 (227, not 224: see the reference notes), 1000 classes, init "paper"."""
    return AlexNet(num_classes, input_shape, **options)


def alexnet_small(num_classes=10, input_shape=(1, 28, 28), channels=(32, 64, 96, 96, 64),
                  kernel_sizes=(5, 3, 3, 3, 3), strides=(1, 1, 1, 1, 1), paddings=(2, 2, 1, 1, 1),
                  fc_sizes=(512, 512), init="he", **options):
    """The same structure for 1x28x28 (Fashion-MNIST), 10 classes.

    conv1 5x5 pad 2 keeps 28; pool1 gives 13; conv2 3x3 pad 2 grows 13 to 15
    so that pool2 gives 7 and pool5 still gives 3x3 (with "same" padding
    everywhere: 13, 6, then 2x2). 3x3 rather than 5x5 at conv2 keeps a batch
    of 128 cheap on a laptop CPU. He init keeps so small a net's signal alive.
    """
    return AlexNet(num_classes, input_shape, channels, kernel_sizes, strides, paddings, fc_sizes,
                   init=init, name="alexnet-small", **options)


def alexnet_cifar(num_classes=10, input_shape=(3, 32, 32), channels=(64, 128, 192, 192, 128),
                  kernel_sizes=(5, 5, 3, 3, 3), strides=(1, 1, 1, 1, 1), paddings=(2, 2, 1, 1, 1),
                  fc_sizes=(1024, 1024), init="he", **options):
    """The same structure for 3x32x32 (CIFAR-10), 10 classes: 32 -> pool 15 -> pool 7 -> pool 3."""
    return AlexNet(num_classes, input_shape, channels, kernel_sizes, strides, paddings, fc_sizes,
                   init=init, name="alexnet-cifar", **options)
