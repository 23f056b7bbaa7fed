"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), its small variants and one builder.

The network of the paper (Figure 2, section 3.5), shapes C x H x W::

    input                                3x227x227
    conv1  96 @ 11x11 / 4, ReLU, LRN     96x55x55
    pool1  max 3x3 / 2                   96x27x27
    conv2 256 @ 5x5 pad 2, groups 2, ReLU, LRN   256x27x27
    pool2  max 3x3 / 2                   256x13x13
    conv3 384 @ 3x3 pad 1 (reads both towers), ReLU   384x13x13
    conv4 384 @ 3x3 pad 1, groups 2, ReLU        384x13x13
    conv5 256 @ 3x3 pad 1, groups 2, ReLU        256x13x13
    pool5  max 3x3 / 2                   256x6x6 = 9216
    fc6 4096, ReLU, dropout 0.5          4096
    fc7 4096, ReLU, dropout 0.5          4096
    fc8 num_classes (softmax in the loss)

60,965,224 parameters for 1000 classes. The small variants have the same 5
conv + 3 fc layers, LRN, overlapping pools, dropout and towers; they differ
only in the numbers of an :class:`Arch` (channels, kernel sizes, strides,
paddings, fc widths), so one code path builds every one of them.

Two ways to place the two towers (section 3.2):

* ``devices=None`` (or one device number): one device; conv2, conv4 and conv5
  are grouped convolutions (``groups=2``) and LRN normalizes within each
  tower's half of the channels. Parameters "conv1.W", ..., "fc8.b".
* ``devices=(d0, d1)``: tower A on d0, tower B on d1, exchanging activations
  only before conv3, fc6, fc7 and fc8 (see :mod:`tinyalex.models.towers`).
  Parameters "conv1.A.W", "conv1.B.W", ...

Both compute the same function with the same weights
(:func:`~tinyalex.models.towers.split_state_dict` converts).
"""
from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy

from .. import backend as B
from ..fast import implementations
from ..layers import LRN, Dropout, Flatten, Tanh
from ..layers.base import Layer, check_dtype, need_cache
from ..layers.conv import conv_output_size
from .towers import (Broadcast, Exchange, Gather, TowerPair, _Link, is_split_state_dict, merge_state_dict,
                     on_device, split_state_dict, tower_sizes)

__all__ = ["Arch", "ARCHS", "AlexNet", "build_model", "model_names", "GroupLRN", "INITS", "init_parameters"]


# --------------------------------------------------------------------------
# The architectures: numbers only. The structure is fixed below.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Arch:
    """The numbers of one AlexNet variant; the layer structure is the paper's.

    ``channels``, ``kernel_sizes``, ``strides``, ``paddings`` are per conv
    layer (conv1..conv5); ``fc_sizes`` the widths of fc6 and fc7; ``init`` the
    default initialization (see :data:`INITS`); ``num_classes`` the default.
    """

    input_shape: tuple
    channels: tuple
    kernel_sizes: tuple
    strides: tuple
    paddings: tuple
    fc_sizes: tuple
    init: str
    num_classes: int
    about: str


ARCHS = {
    # The paper's net (227, not 224: see the reference notes).
    "alexnet": Arch((3, 227, 227), (96, 256, 384, 384, 256), (11, 5, 3, 3, 3), (4, 1, 1, 1, 1),
                    (0, 2, 1, 1, 1), (4096, 4096), "paper", 1000,
                    "the paper's network, 3x227x227 input"),
    # Fashion-MNIST / MNIST. conv1 5x5 pad 2 keeps 28; pool1 gives 13; conv2 3x3 pad 2
    # grows 13 to 15 so that pool2 gives 7 and pool5 still gives 3x3 (with "same"
    # padding everywhere: 13, 6, then 2x2). 3x3 rather than 5x5 at conv2 keeps a
    # batch of 128 cheap on a laptop CPU (conv2 would otherwise cost the most).
    "alexnet-small": Arch((1, 28, 28), (32, 64, 96, 96, 64), (5, 3, 3, 3, 3), (1, 1, 1, 1, 1),
                          (2, 2, 1, 1, 1), (512, 512), "he", 10,
                          "same structure for 1x28x28 (Fashion-MNIST)"),
    # CIFAR-10: 32 -> pool 15 -> pool 7 -> pool 3.
    "alexnet-cifar": Arch((3, 32, 32), (64, 128, 192, 192, 128), (5, 5, 3, 3, 3), (1, 1, 1, 1, 1),
                          (2, 2, 1, 1, 1), (1024, 1024), "he", 10,
                          "same structure for 3x32x32 (CIFAR-10)"),
}
ALIASES = {"alexnet-fmnist": "alexnet-small"}

CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")
FC_NAMES = ("fc6", "fc7", "fc8")
GROUPS = (1, 2, 1, 2, 2)                      # conv1, conv3: read both towers (conv1: the image)
LRN_AFTER = (True, True, False, False, False)
POOL_AFTER = (True, True, False, False, True)

INITS = {
    "paper": "weights ~ N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, 0 elsewhere (section 5)",
    "released": "as 'paper' but std 0.03 for conv3, conv4, conv5 (the authors' cuda-convnet layers-145.cfg)",
    "he": "weights ~ N(0, 2 / fan_in) (He et al. 2015), biases 0: keeps the activations' scale from layer to layer",
}
ONE_BIASES = ("conv2", "conv4", "conv5", "fc6", "fc7")
ACTIVATIONS = ("relu", "tanh")


def model_names():
    """The names :func:`build_model` accepts."""
    return sorted(ARCHS) + sorted(ALIASES)


def _arch(name):
    key = ALIASES.get(name, name)
    if key not in ARCHS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return ARCHS[key]


def _even(n):
    """Round a scaled width to an even number (two towers), at least 2."""
    return max(2, int(round(n / 2)) * 2)


# --------------------------------------------------------------------------
# Initialization: one function, one rng, grouped names.
# --------------------------------------------------------------------------
def init_parameters(shapes, init="paper", seed=0, dtype=numpy.float32):
    """Initial parameters by grouped name ("conv1.W", ...), as host arrays.

    ``shapes`` maps each weight layer (conv1..fc8, in order) to its weight
    shape; biases have one entry per kernel/neuron. One generator seeded with
    ``seed`` draws every weight in layer order, so a seed gives the same net
    whether it is then built grouped or split. Draws are made in ``dtype``
    (a float32 and a float64 net with the same seed differ in rounding).
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    dt = check_dtype(dtype)
    rng = numpy.random.default_rng(seed)
    state = OrderedDict()
    for name, wshape in shapes.items():
        fan_in = int(numpy.prod(wshape[1:]))
        if init == "he":
            std = math.sqrt(2.0 / fan_in)
        elif init == "released" and name in ("conv3", "conv4", "conv5"):
            std = 0.03
        else:
            std = 0.01
        bias = 1.0 if init in ("paper", "released") and name in ONE_BIASES else 0.0
        W = rng.standard_normal(wshape, dtype=dt)
        W *= dt.type(std)
        state[f"{name}.W"] = W
        state[f"{name}.b"] = numpy.full(wshape[0], bias, dtype=dt)
    return state


class _NoDraw:
    """Stands in for an rng in layer constructors: zeros, no drawing (init_parameters fills in)."""

    @staticmethod
    def standard_normal(shape):
        return numpy.zeros(shape, dtype=numpy.float32)   # float32: cheap to scale and cast


class GroupLRN(Layer):
    """LRN applied within each of ``groups`` channel groups (each tower's own maps).

    In the two-GPU net each GPU normalizes its own kernel maps: the window of
    section 3.3 never reaches the other tower's channels. On one device this
    is the LRN of :class:`~tinyalex.layers.LRN` on x reshaped to
    (N*G, C/G, H, W). ``groups=1`` is plain LRN across all channels (Caffe).
    """

    def __init__(self, lrn: LRN, groups=2):
        super().__init__(lrn.dtype)
        self.lrn, self.groups = lrn, int(groups)
        self.x_shape = None

    def extra_repr(self):
        return f"{self.lrn.extra_repr()}, groups={self.groups}"

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


# --------------------------------------------------------------------------
# The model.
# --------------------------------------------------------------------------
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


class AlexNet(Layer):
    """AlexNet as a :class:`~tinyalex.layers.Layer`: ``forward(x) -> logits``, ``backward(dlogits) -> dx``.

    Arguments (all stored in :attr:`config`, so ``build_model(**model.config)``
    rebuilds the same architecture):

    num_classes: outputs of fc8 (default: 1000 for "alexnet", 10 for the small nets).
    arch: "alexnet", "alexnet-small" (= "alexnet-fmnist"), "alexnet-cifar".
    input_shape: (C, H, W); default the arch's (3x227x227, 1x28x28, 3x32x32).
    width: multiplies every conv and fc6/fc7 width (rounded to even numbers).
    channels, kernel_sizes, strides, paddings, fc_sizes: override the arch's numbers.
    lrn: LRN after conv1 and conv2 (section 3.3); False removes it.
    lrn_convention: "paper" (alpha per squared term, default) or "caffe" (alpha / n).
    lrn_size, lrn_alpha, lrn_beta, lrn_k: n, alpha, beta, k (paper: 5, 1e-4, 0.75, 2).
    lrn_across_towers: False (default): LRN within each tower, as on two GPUs;
        True: across all channels, as Caffe (only with one device).
    overlap_pool: True: max pool 3/2 (section 3.4); False: 2/2.
    dropout: drop probability after fc6 and fc7 (0.5); 0 removes the layers.
    dropout_mode: "inverted" (scale 1/(1-p) in training, default) or "paper" (x0.5 at test).
    activation: "relu" (section 3.1) or "tanh" (Figure 1's baseline).
    init: "paper", "released" or "he" (see :data:`INITS`); default the arch's.
    seed: seeds the weights and (derived) the dropout masks; None for fresh entropy.
    dtype: float32 (default) or float64 (gradient checks).
    devices: None (one device: the current one; nothing on NumPy), an int (one
        device), or a pair (d0, d1): tower A on d0, tower B on d1; (0, 0) puts
        both towers on device 0.
    backend: "numpy", "cupy" or "standin"; default the current backend.
    fast: True (default): the fast layer classes of tinyalex/fast; False: the
        reference classes of tinyalex/layers (see :func:`tinyalex.fast.implementations`).
    """

    def __init__(self, num_classes=None, input_shape=None, width=1.0, *, arch="alexnet",
                 channels=None, kernel_sizes=None, strides=None, paddings=None, fc_sizes=None,
                 lrn=True, lrn_convention="paper", lrn_size=5, lrn_alpha=1e-4, lrn_beta=0.75, lrn_k=2.0,
                 lrn_across_towers=False, overlap_pool=True, dropout=0.5, dropout_mode="inverted",
                 activation="relu", init=None, seed=0, dtype=numpy.float32, devices=None, backend=None, fast=True):
        super().__init__(dtype)
        a = _arch(arch)
        num_classes = a.num_classes if num_classes is None else num_classes
        input_shape = tuple(int(v) for v in (a.input_shape if input_shape is None else input_shape))
        init = a.init if init is None else init
        if not isinstance(num_classes, (int, numpy.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (0 disables it), got {dropout}")
        if dropout_mode not in ("inverted", "paper"):
            raise ValueError(f"dropout_mode must be 'inverted' or 'paper', got {dropout_mode!r}")
        if lrn_convention not in ("paper", "caffe"):
            raise ValueError(f"lrn_convention must be 'paper' or 'caffe', got {lrn_convention!r}")

        # -- where: backend and devices ------------------------------------
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
        self.split = len(self.devices) == 2
        self.fast = bool(fast)
        if self.split and lrn and lrn_across_towers:
            raise ValueError("lrn_across_towers=True needs one device: on two devices each tower "
                             "normalizes its own channels (use devices=None)")

        # -- the numbers ----------------------------------------------------
        ch = tuple(channels) if channels is not None else tuple(_even(c * width) for c in a.channels)
        fcs = tuple(fc_sizes) if fc_sizes is not None else tuple(_even(f * width) for f in a.fc_sizes)
        ks = tuple(kernel_sizes) if kernel_sizes is not None else a.kernel_sizes
        ss = tuple(strides) if strides is not None else a.strides
        ps = tuple(paddings) if paddings is not None else a.paddings
        for what, seq, n in (("channels", ch, 5), ("kernel_sizes", ks, 5), ("strides", ss, 5),
                             ("paddings", ps, 5), ("fc_sizes", fcs, 2)):
            if len(seq) != n:
                raise ValueError(f"{what} needs {n} numbers (one per layer), got {seq}")
        for name, c in zip(CONV_NAMES, ch):
            if c % 2:
                raise ValueError(f"{name} needs an even number of kernels (two towers), got {c}")

        self.arch = arch
        self.num_classes = int(num_classes)
        self.input_shape = input_shape
        self.config = OrderedDict(
            name=arch, num_classes=self.num_classes, input_shape=input_shape, width=width,
            channels=channels, kernel_sizes=kernel_sizes, strides=strides, paddings=paddings, fc_sizes=fc_sizes,
            lrn=bool(lrn), lrn_convention=lrn_convention, lrn_size=lrn_size, lrn_alpha=lrn_alpha,
            lrn_beta=lrn_beta, lrn_k=lrn_k, lrn_across_towers=bool(lrn_across_towers),
            overlap_pool=bool(overlap_pool), dropout=float(dropout), dropout_mode=dropout_mode,
            activation=activation, init=init, seed=seed, dtype=self.dtype.name)
        for k in ("channels", "kernel_sizes", "strides", "paddings", "fc_sizes"):
            if self.config[k] is not None:
                self.config[k] = tuple(int(v) for v in self.config[k])

        # -- the plan: every layer with its (grouped) arguments and output shape
        pool = (3, 2) if overlap_pool else (2, 2)
        lrn_args = dict(size=lrn_size, alpha=lrn_alpha, beta=lrn_beta, k=lrn_k, convention=lrn_convention)
        act = "relu" if activation == "relu" else "tanh"
        plan = []            # (name, kind, args, output shape)
        shape = input_shape
        for i, name in enumerate(CONV_NAMES):
            C, H, W = shape
            k, s, p = ks[i], ss[i], ps[i]
            Ho, Wo = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
            if H + 2 * p < k or W + 2 * p < k:
                raise ValueError(self._too_small(name, shape))
            shape = (ch[i], Ho, Wo)
            plan.append((name, "conv", dict(cin=C, cout=ch[i], k=k, s=s, p=p, groups=GROUPS[i]), shape))
            plan.append((f"{act}{i + 1}", act, {}, shape))
            if lrn and LRN_AFTER[i]:
                plan.append((f"lrn{i + 1}", "lrn", lrn_args, shape))
            if POOL_AFTER[i]:
                C, H, W = shape
                if H < pool[0] or W < pool[0]:
                    raise ValueError(self._too_small(f"pool{i + 1}", shape))
                shape = (C, conv_output_size(H, pool[0], pool[1], 0), conv_output_size(W, pool[0], pool[1], 0))
                plan.append((f"pool{i + 1}", "pool", dict(k=pool[0], s=pool[1]), shape))
        features = int(numpy.prod(shape))
        plan.append(("flatten", "flatten", {}, (features,)))
        widths = fcs + (self.num_classes,)
        for i, name in enumerate(FC_NAMES):
            plan.append((name, "fc", dict(fin=features, fout=widths[i]), (widths[i],)))
            features = widths[i]
            if name != "fc8":
                plan.append((f"{act}{i + 6}", act, {}, (features,)))
                if dropout > 0:
                    plan.append((f"drop{i + 6}", "dropout", dict(p=dropout, mode=dropout_mode), (features,)))
        self.plan = plan

        # -- the layers -------------------------------------------------------
        self.steps = OrderedDict()
        if self.split:
            self._build_split(plan)
        else:
            self._build_grouped(plan, lrn_across_towers)
        shapes = OrderedDict((n, self._grouped_weight_shape(kind, a)) for n, kind, a, _ in plan
                             if kind in ("conv", "fc"))
        self._assign(init_parameters(shapes, init, seed, self.dtype), copy=False)

        self._keep = False
        self._acts = OrderedDict()

    # -- building ---------------------------------------------------------------
    def _too_small(self, layer, shape):
        arch = _arch(self.arch)
        return (f"AlexNet({self.arch!r}): input {'x'.join(map(str, self.input_shape))} is too small: "
                f"{layer} gets {'x'.join(map(str, shape))}; use at least the arch's "
                f"{'x'.join(map(str, arch.input_shape))} or change kernel_sizes/strides/paddings")

    @staticmethod
    def _grouped_weight_shape(kind, a):
        if kind == "conv":
            return (a["cout"], a["cin"] // a["groups"], a["k"], a["k"])
        return (a["fout"], a["fin"])

    def _dropout_seed(self, seed, name, tower):
        if seed is None:
            return None
        return int(seed) * 1000 + int(name[-1]) * 10 + tower

    def _make(self, kind, a, name, tower=None, lrn_groups=1):
        """One layer (tower=None: the grouped one; 0/1: tower A's/B's half)."""
        dt = self.dtype
        L = implementations(self.fast, self.backend)
        half = (lambda n: n) if tower is None else (lambda n: tower_sizes(n)[tower])
        if kind == "conv":
            cin = a["cin"] if tower is None or a["groups"] == 1 else a["cin"] // 2
            groups = a["groups"] if tower is None else 1
            return L.Conv2D(cin, half(a["cout"]), a["k"], a["s"], a["p"], groups=groups, rng=_NoDraw, dtype=dt)
        if kind == "fc":
            return L.Linear(a["fin"], half(a["fout"]), rng=_NoDraw, dtype=dt)
        if kind == "relu":
            return L.ReLU(dt)
        if kind == "tanh":
            return Tanh(dt)
        if kind == "lrn":
            return GroupLRN(L.LRN(dtype=dt, **a), groups=lrn_groups)
        if kind == "pool":
            return L.MaxPool2D(a["k"], a["s"], dtype=dt)
        if kind == "flatten":
            return Flatten(dt)
        if kind == "dropout":
            return Dropout(a["p"], a["mode"], seed=self._dropout_seed(self.config["seed"], name, tower or 0), dtype=dt)
        raise AssertionError(kind)

    def _build_grouped(self, plan, lrn_across_towers):
        """One device: conv2/4/5 grouped, LRN per tower unless lrn_across_towers."""
        for name, kind, a, _ in plan:
            self.steps[name] = self._make(kind, a, name, lrn_groups=1 if lrn_across_towers else 2)
        if self.backend != "numpy":
            Layer.to(self, self.devices[0], self.backend)

    def _build_split(self, plan):
        """Two towers: every layer as a TowerPair; Exchange before each layer reading both towers."""
        devs, be = self.devices, self.backend
        self.steps["input"] = Broadcast(devs, be, self.dtype)
        crossings = {"conv3": "to_conv3", "fc6": "to_fc6", "fc7": "to_fc7", "fc8": "to_fc8"}
        for name, kind, a, _ in plan:
            reads_both = (kind == "conv" and a["groups"] == 1 and name != "conv1") or kind == "fc"
            if reads_both:
                self.steps[crossings.get(name, f"to_{name}")] = Exchange(devs, be, self.dtype)
            halves = [self._make(kind, a, name, tower=t) for t in (0, 1)]
            if be != "numpy":
                for t in (0, 1):
                    halves[t].to(devs[t], be)
            self.steps[name] = TowerPair(halves[0], halves[1], devs, be)
        self.steps["logits"] = Gather(devs, be, self.dtype)

    # -- structure ----------------------------------------------------------------
    def children(self):
        return self.steps

    def extra_repr(self):
        where = f"devices={self.devices}" if self.split else "one device"
        return f"{self.arch!r}, num_classes={self.num_classes}, input={self.input_shape}, {where}"

    @property
    def input_device(self):
        """Where the caller must put x (and labels, for the loss on the logits): None on NumPy."""
        return None if self.backend == "numpy" else self.devices[0]

    @property
    def links(self):
        """The layers that move data between the towers' devices, by name."""
        return OrderedDict((n, s) for n, s in self.steps.items() if isinstance(s, _Link))

    @property
    def transfer_bytes(self) -> int:
        """Bytes that crossed between the two devices in the last forward and backward pass."""
        return sum(l.bytes_forward + l.bytes_backward for l in self.links.values())

    def transfer_report(self):
        """Per crossing point: {"forward": bytes, "backward": bytes} of the last passes."""
        return OrderedDict((n, {"forward": l.bytes_forward, "backward": l.bytes_backward})
                           for n, l in self.links.items())

    # -- the passes -------------------------------------------------------------------
    def _check_x(self, x):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"{self.arch}: input must be an array of shape (N, {', '.join(map(str, self.input_shape))})")
        want = "x".join(map(str, self.input_shape))
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            got = "x".join(map(str, x.shape[1:])) if x.ndim == 4 else f"shape {tuple(x.shape)}"
            hint = ""
            if self.input_shape[1:] == (227, 227) and x.ndim == 4 and tuple(x.shape[2:]) == (224, 224):
                hint = (" (the paper says 224, but its arithmetic (227 - 11) / 4 + 1 = 55 needs 227: "
                        "crop 227x227 patches)")
            raise ValueError(f"AlexNet({self.arch!r}) expects images of {want} (input shape (N, "
                             f"{', '.join(map(str, self.input_shape))})), got {got}{hint}")
        if x.dtype != self.dtype:
            raise TypeError(f"AlexNet({self.arch!r}) is {self.dtype.name} but x is {x.dtype}; "
                            f"convert explicitly with x.astype(numpy.{self.dtype.name})")
        if self.backend != "numpy" and (B.backend_of(x) != self.backend or B.device_of(x) != self.devices[0]):
            raise B.DeviceMismatchError(
                f"x is on {B.backend_of(x)} device {B.device_of(x)} but this model takes its input on "
                f"{self.backend} device {self.devices[0]}: x = tinyalex.backend.to_device(x, "
                f"model.input_device, {self.backend!r})")

    def forward(self, x):
        """Logits (N, num_classes) on ``input_device``; keeps what backward needs."""
        self._check_x(x)
        self._acts = OrderedDict()
        with self._ctx():
            for name, step in self.steps.items():
                x = step.forward(x)
                if self._keep and not isinstance(step, (Broadcast, Exchange, Gather)):
                    self._acts[name] = x
        return x

    def backward(self, dlogits):
        """dL/dx from dL/dlogits (on ``input_device``); fills every parameter's gradient."""
        with self._ctx():
            for step in reversed(list(self.steps.values())):
                dlogits = step.backward(dlogits)
        return dlogits

    def requires_input_grad(self, flag: bool = True):
        """Whether ``backward`` computes dL/dx for the input images (default True).

        Training never uses that gradient (the input is data), and it is
        conv1's largest product (6.7 GFLOP per batch of 32 for the full net),
        so the trainer and the bench switch it off; ``backward`` then returns
        None. Gradient checks and saliency maps need it on. Returns self.
        """
        from ..layers import Conv2D

        first = None
        for name, layer in self.named_layers():
            if isinstance(layer, Conv2D):
                top = name.split(".")[0]
                first = top if first is None else first
                if top == first:               # conv1, or both towers' halves of it
                    layer.compute_input_grad = bool(flag)
        return self

    def _ctx(self):
        return on_device(self.backend, self.devices[0])

    # -- activations ----------------------------------------------------------------------
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

    # -- state --------------------------------------------------------------------------------
    def _with_device(self, p):
        return on_device(B.backend_of(p), B.device_of(p))

    def zero_grad(self):
        for _, layer in self.named_layers():
            for name, p in layer.params.items():
                with self._with_device(p):
                    layer.grads[name] = B.get_array_module(p).zeros_like(p)

    def load_state_dict(self, state, strict: bool = True):
        """Copy parameters in (on their devices). Grouped or split names are both accepted.

        Refuses a missing layer or a wrong shape with an error naming the layer
        and both shapes; with ``strict``, refuses names the model does not have.
        """
        own = OrderedDict((f"{ln}.{k}" if ln else k, (layer, k))
                          for ln, layer in self.named_layers() for k in layer.params)
        if self.split and not is_split_state_dict(state) and state:
            state = split_state_dict(state)
        elif not self.split and is_split_state_dict(state):
            state = merge_state_dict(state)
        missing = [n for n in own if n not in state]
        if missing:
            layer, key = own[missing[0]]
            raise KeyError(
                f"the weights have no {missing[0]!r} (layer {missing[0].rpartition('.')[0]!r}, "
                f"the model expects shape {tuple(layer.params[key].shape)}); missing: {', '.join(missing)}")
        extra = [n for n in state if n not in own]
        if strict and extra:
            raise KeyError(f"the weights have parameters this model does not: {', '.join(extra)} "
                           f"(model layers: {', '.join(dict.fromkeys(n.rpartition('.')[0] for n in own))})")
        for name, (layer, key) in own.items():
            value = B.to_host(state[name])
            p = layer.params[key]
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"layer {name.rpartition('.')[0]!r}: parameter {name!r} has shape "
                                 f"{tuple(value.shape)} in the weights but the model expects {tuple(p.shape)}")
        return self._assign(state, copy=True, own=own)

    def _assign(self, state, copy=True, own=None):
        """Put state[name] in place of each parameter, on the parameter's device and dtype."""
        if own is None:
            own = OrderedDict((f"{ln}.{k}" if ln else k, (layer, k))
                              for ln, layer in self.named_layers() for k in layer.params)
            if self.split:
                state = split_state_dict(state)
        for name, (layer, key) in own.items():
            p = layer.params[key]
            value = numpy.ascontiguousarray(B.to_host(state[name]), dtype=p.dtype)
            if B.backend_of(p) == "numpy":
                layer.params[key] = value.copy() if copy else value
            else:
                layer.params[key] = B.to_device(value, B.device_of(p), B.backend_of(p))
        return self

    def grouped_state_dict(self):
        """Host copies under grouped names ("conv2.W"), whichever way the model is placed."""
        state = self.state_dict()
        return merge_state_dict(state) if self.split else state

    def to(self, device=None, backend=None):
        """Move the model: one device number (grouped model) or a pair (split model)."""
        backend = backend or self.backend
        if self.split:
            if device is None or isinstance(device, (int, numpy.integer)) or len(device) != 2:
                raise ValueError(f"the split model moves to a pair of devices (d0, d1), got {device!r}")
            devs = tuple(int(d) for d in device)
            for step in self.steps.values():
                step.devices, step.backend_name = devs, backend
                if isinstance(step, TowerPair):
                    for t, half in enumerate((step.A, step.B)):
                        half.to(None if backend == "numpy" else devs[t], backend)
            self.devices = devs
        else:
            if device is not None and not isinstance(device, (int, numpy.integer)):
                raise ValueError(f"the one-device model moves to one device number, got {device!r}")
            dev = int(device) if device is not None else (self.devices[0])
            Layer.to(self, None if backend == "numpy" else dev, backend)
            self.devices = (dev,)
        self.backend = backend
        return self

    def save(self, path):
        """Write the weights and :attr:`config` to ``path`` (.npz), atomically."""
        from .io import save_npz
        save_npz(path, self.state_dict(), self.config)

    def load(self, path):
        """Load weights from a .npz written by :meth:`save` (either placement)."""
        from .io import load_npz
        state, _ = load_npz(path)
        return self.load_state_dict(state)

    def summary(self) -> str:
        """A printable table: layer, output shape, parameters, tower/device; totals."""
        from .summary import summary
        return summary(self)


def build_model(name="alexnet", num_classes=None, **overrides) -> AlexNet:
    """Build a model by name: "alexnet" (3x227x227), "alexnet-small" / "alexnet-fmnist"
    (1x28x28), "alexnet-cifar" (3x32x32). ``overrides`` are :class:`AlexNet` arguments
    (width, devices, init, dtype, ...); ``build_model(**model.config)`` rebuilds a model.
    """
    _arch(name)
    dtype = overrides.pop("dtype", numpy.float32)
    return AlexNet(num_classes=num_classes, arch=name, dtype=numpy.dtype(dtype), **overrides)
