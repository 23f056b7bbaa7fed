"""A printable model summary (as Keras ``summary()`` and torchsummary print it).

    print(model.summary())
    python -m tinyalex summary --model alexnet --devices 0,1

One row per layer: output shape (per image, C x H x W), number of
parameters, and where it runs (the device of the one-device net; towers A
and B with their devices and parameter shares for the split net). For the
split net the crossing points are rows too, with the bytes one image sends
between the devices in the forward pass (the backward pass sends as many
back). No array is computed: the shapes come from the model's plan.
"""
from __future__ import annotations

import numpy

from ..cli import parse_devices
from .towers import Broadcast, Exchange, Gather, TowerPair

__all__ = ["summary", "transfer_bytes_per_image", "register_cli"]


def _shape(s):
    return "x".join(str(v) for v in s)


def _nparams(layer):
    return int(sum(p.size for _, p in layer.named_parameters()))


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
    prev = model.input_shape
    names = list(model.steps)
    shapes = {name: shape for name, _, _, shape in model.plan}
    for i, name in enumerate(names):
        step = model.steps[name]
        if isinstance(step, Broadcast):
            out[name] = 0 if same else int(numpy.prod(model.input_shape)) * item
        elif isinstance(step, Exchange):
            out[name] = 0 if same else int(numpy.prod(prev)) * item            # a's half + b's half
        elif isinstance(step, Gather):
            out[name] = 0 if same else (model.num_classes // 2) * item        # tower B's logits
        if name in shapes:
            prev = shapes[name]
    return out


def summary(model) -> str:
    """The table as a string (see the module docstring)."""
    rows = []
    per_img = transfer_bytes_per_image(model)
    shapes = {name: shape for name, _, _, shape in model.plan}
    if model.split:
        d0, d1 = model.devices
        where_hdr = f"tower A (dev {d0}) | tower B (dev {d1})"
    else:
        where_hdr = "grouping"
    head = ("layer", "output", "params", where_hdr)
    one_dev = "host (NumPy)" if model.backend == "numpy" else f"{model.backend} {model.devices[0]}"
    for name, step in model.steps.items():
        if isinstance(step, (Broadcast, Exchange, Gather)):
            what = {Broadcast: "image to both towers", Exchange: "towers exchange halves",
                    Gather: "tower B's logits to A"}[type(step)]
            rows.append((name, "", "", f"<-> {what}: {per_img[name]:,} B/image"))
            continue
        n = _nparams(step)
        shape = _shape(shapes[name])
        if isinstance(step, TowerPair):
            na, nb = _nparams(step.A), _nparams(step.B)
            where = f"A {na:,} | B {nb:,}" if n else "A | B"
        else:
            groups = getattr(step, "groups", 1)
            where = f"groups={groups}" if groups > 1 else ""
        rows.append((name, shape, f"{n:,}" if n else "0", where))
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)

    def fmt(r):
        return "  ".join(str(v).ljust(w) if i != 2 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))

    placement = (f"two towers on devices {model.devices} ({model.backend})" if model.split
                 else f"one device, grouped convolutions ({one_dev})")
    from .alexnet import GroupLRN
    lrn = next((s for s in model.named_layers() if isinstance(s[1], GroupLRN)), None)
    out = [f"AlexNet {model.arch!r}: input {_shape(model.input_shape)}, {model.num_classes} classes, "
           f"{model.dtype.name}, {placement}", line, fmt(head), line]
    out += [fmt(r) for r in rows]
    out.append(line)
    total = model.num_parameters()
    out.append(f"Total parameters: {total:,} ({total * model.dtype.itemsize / 2**20:,.1f} MiB as {model.dtype.name})")
    if model.split:
        pa = sum(_nparams(s.A) for s in model.steps.values() if isinstance(s, TowerPair))
        pb = total - pa
        out.append(f"Tower A (device {model.devices[0]}): {pa:,} parameters; "
                   f"tower B (device {model.devices[1]}): {pb:,}")
        fwd = sum(per_img.values())
        out.append(f"Crossing between devices per image: {fwd:,} B forward, {fwd:,} B backward")
    cfg = model.config
    details = [f"init={cfg['init']}", f"activation={cfg['activation']}",
               f"pool={'3/2 (overlapping)' if cfg['overlap_pool'] else '2/2'}"]
    if lrn is not None:
        l = lrn[1]
        details.append(f"LRN n={l.lrn.size} alpha={l.lrn.alpha} beta={l.lrn.beta} k={l.lrn.k} "
                       f"convention={l.lrn.convention} "
                       f"{'within each tower' if model.split or l.groups > 1 else 'across all channels'}")
    details.append(f"dropout={cfg['dropout']} ({cfg['dropout_mode']})" if cfg["dropout"] else "dropout off")
    out.append("; ".join(details))
    return "\n".join(out)


# --------------------------------------------------------------------------
# python -m tinyalex summary
# --------------------------------------------------------------------------
def register_cli(subparsers):
    from .alexnet import model_names

    p = subparsers.add_parser(
        "summary", help="print a model's layers, output shapes, parameters and devices",
        description="Print the summary table of an AlexNet variant (no data is computed).\n"
                    "Example: python -m tinyalex summary --model alexnet --devices 0,1")
    p.add_argument("--model", default="alexnet", help=f"one of: {', '.join(model_names())}")
    p.add_argument("--num-classes", type=int, default=None, help="fc8 outputs (default: the model's, 1000 or 10)")
    p.add_argument("--width", type=float, default=1.0, help="multiplies every layer's width")
    p.add_argument("--devices", default=None,
                   help="'d0,d1' for the two-tower split (e.g. 0,1), one number for one device; "
                        "default: one device, grouped convolutions")
    p.add_argument("--backend", default="numpy", help="numpy, cupy or standin (where the weights are created)")
    p.add_argument("--dtype", default="float32", help="float32 or float64")
    p.set_defaults(func=_cli_main)


def _cli_main(args):
    import sys

    from .. import backend as B
    from .alexnet import ALIASES, ARCHS, build_model, model_names

    if args.model not in ARCHS and args.model not in ALIASES:
        print(f"error: --model {args.model!r} is not a model; choose one of {', '.join(model_names())}",
              file=sys.stderr)
        return 2
    if args.backend not in B.BACKENDS:
        print(f"error: --backend {args.backend!r}: choose one of {', '.join(B.BACKENDS)}", file=sys.stderr)
        return 2
    if args.dtype not in ("float32", "float64"):
        print(f"error: --dtype {args.dtype!r}: choose float32 or float64", file=sys.stderr)
        return 2
    try:
        devices = None if args.devices is None else parse_devices(args.devices)
        devices = devices[0] if devices is not None and len(devices) == 1 else devices
        with B.use_backend(args.backend):
            model = build_model(args.model, args.num_classes, width=args.width, devices=devices,
                                dtype=args.dtype)
    except (ValueError, B.BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(model.summary())
    return 0
