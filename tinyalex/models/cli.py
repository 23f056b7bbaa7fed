"""``python -m tinyalex summary``: print a model's summary table (no data is computed)."""
from __future__ import annotations

import sys

from .. import backend as B
from ..cli import parse_devices
from .registry import build_model, model_names

__all__ = ["register_cli"]


def register_cli(subparsers):
    p = subparsers.add_parser(
        "summary", help="print a model's layers, classes, output shapes, parameters and devices",
        description="Print the summary table of a model (no data is computed).\n"
                    "Example: python -m tinyalex summary --model alexnet --devices 0,1")
    p.add_argument("--model", default="alexnet", help=f"one of: {', '.join(model_names())}")
    p.add_argument("--num-classes", type=int, default=None, help="fc8 outputs (default: the model's, 1000 or 10)")
    p.add_argument("--width", type=float, default=None, help="multiplies every layer's width (AlexNet models)")
    p.add_argument("--devices", default=None,
                   help="'d0,d1' for the two-tower split (e.g. 0,1), one number for one device; "
                        "default: one device, grouped convolutions")
    p.add_argument("--backend", default="numpy", help="numpy, cupy or standin (where the weights are created)")
    p.add_argument("--dtype", default="float32", help="float32 or float64")
    p.add_argument("--reference", action="store_true",
                   help="build with the reference layer classes of tinyalex/layers (fast=False)")
    p.set_defaults(func=_cli_main)


def _cli_main(args):
    if args.model not in model_names():
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
                                dtype=args.dtype, fast=not args.reference)
    except (ValueError, B.BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(model.summary())
    return 0
