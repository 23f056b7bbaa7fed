"""A printable model summary (as Keras ``summary()`` and torchsummary print it).

    print(model.summary())
    python -m tinyalex summary --model alexnet --devices 0,1

One row per layer: the class that runs it (which implementation: a fast
class or the reference class of tinyalex/layers), output shape (per image,
C x H x W), number of parameters, and where it runs (the grouping of the
one-device net; towers A and B with their parameter shares for the split
net). For the split net the crossing points are rows too, with the bytes one
image sends between the devices in the forward pass (the backward pass sends
as many back). No array is computed: the shapes come from the layers
(``model.output_shapes()``).
"""
from __future__ import annotations

import numpy

from .towers import Broadcast, Exchange, Gather, TowerPair, _Link

__all__ = ["summary", "transfer_bytes_per_image"]


def _shape(s):
    return "x".join(str(v) for v in s)


def _nparams(layer):
    return int(sum(p.size for _, p in layer.named_parameters()))


def _class(layer):
    """The class that runs a layer: "Conv2D", "GroupLRN(LRN)", a tower pair's halves' class."""
    if isinstance(layer, TowerPair):
        layer = layer.A
    inner = getattr(layer, "lrn", None)
    return f"{type(layer).__name__}({type(inner).__name__})" if inner is not None else type(layer).__name__


def transfer_bytes_per_image(model):
    """Bytes one image sends between the two devices in a forward pass, per crossing point.

    Computed from the shapes (no data): the input copy to d1, each exchange
    (both towers' halves), the gather of tower B's logits. The backward pass
    sends the same amounts back. Zero for each point if both towers share a device.
    """
    out = {}
    if not model.split:
        return out
    item = model.dtype.itemsize
    same = model.devices[0] == model.devices[1]
    shapes = model.output_shapes()
    prev = model.input_shape
    for name, layer in model.children().items():
        if isinstance(layer, Broadcast):
            out[name] = 0 if same else int(numpy.prod(model.input_shape)) * item
        elif isinstance(layer, Exchange):
            out[name] = 0 if same else int(numpy.prod(prev)) * item            # a's half + b's half
        elif isinstance(layer, Gather):
            out[name] = 0 if same else (model.num_classes // 2) * item        # tower B's logits
        prev = shapes.get(name, prev)
    return out


def summary(model) -> str:
    """The table as a string (see the module docstring)."""
    rows = []
    per_img = transfer_bytes_per_image(model)
    shapes = model.output_shapes()
    if model.split:
        d0, d1 = model.devices
        where_hdr = f"tower A (dev {d0}) | tower B (dev {d1})"
    else:
        where_hdr = "grouping"
    head = ("layer", "class", "output", "params", where_hdr)
    one_dev = "host (NumPy)" if model.backend == "numpy" else f"{model.backend} {model.devices[0]}"
    for name, layer in model.children().items():
        if isinstance(layer, _Link):
            what = {Broadcast: "image to both towers", Exchange: "towers exchange halves",
                    Gather: "tower B's logits to A"}[type(layer)]
            rows.append((name, type(layer).__name__, "", "", f"<-> {what}: {per_img[name]:,} B/image"))
            continue
        n = _nparams(layer)
        if isinstance(layer, TowerPair):
            na, nb = _nparams(layer.A), _nparams(layer.B)
            where = f"A {na:,} | B {nb:,}" if n else "A | B"
        else:
            groups = getattr(layer, "groups", 1)
            where = f"groups={groups}" if groups > 1 else ""
        rows.append((name, _class(layer), _shape(shapes[name]), f"{n:,}" if n else "0", where))
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)

    def fmt(r):
        cells = (str(v).ljust(w) if i != 3 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
        return "  ".join(cells).rstrip()

    placement = (f"two towers on devices {model.devices} ({model.backend})" if model.split
                 else f"one device, grouped convolutions ({one_dev})")
    out = [f"AlexNet {model.name!r}: input {_shape(model.input_shape)}, {model.num_classes} classes, "
           f"{model.dtype.name}, {placement}", line, fmt(head), line]
    out += [fmt(r) for r in rows]
    out.append(line)
    total = model.num_parameters()
    out.append(f"Total parameters: {total:,} ({total * model.dtype.itemsize / 2**20:,.1f} MiB as {model.dtype.name})")
    if model.split:
        pa = sum(_nparams(s.A) for s in model.children().values() if isinstance(s, TowerPair))
        pb = total - pa
        out.append(f"Tower A (device {model.devices[0]}): {pa:,} parameters; "
                   f"tower B (device {model.devices[1]}): {pb:,}")
        fwd = sum(per_img.values())
        out.append(f"Crossing between devices per image: {fwd:,} B forward, {fwd:,} B backward")
    cfg = model.config
    details = [f"init={cfg['init']}", f"activation={cfg['activation']}",
               f"pool={'3/2 (overlapping)' if cfg['overlap_pool'] else '2/2'}"]
    if cfg["lrn"]:
        across = cfg["lrn_across_towers"] and not model.split
        details.append(f"LRN n={cfg['lrn_size']} alpha={cfg['lrn_alpha']} beta={cfg['lrn_beta']} k={cfg['lrn_k']} "
                       f"convention={cfg['lrn_convention']} "
                       f"{'across all channels' if across else 'within each tower'}")
    if cfg.get("batchnorm"):
        details.append("batch norm after every conv (not in the paper)")
    details.append(f"dropout={cfg['dropout']} ({cfg['dropout_mode']})" if cfg["dropout"] else "dropout off")
    details.append("fast implementations" if cfg.get("fast", True) else "reference implementations (fast=False)")
    out.append("; ".join(details))
    return "\n".join(out)
