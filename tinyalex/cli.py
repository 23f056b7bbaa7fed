"""The command line: ``python -m tinyalex SUBCOMMAND`` (or the ``tinyalex`` script).

Each subcommand lives next to the code it runs and registers itself here
through a ``register_cli(subparsers)`` function.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (module, description) of every subcommand provider, in --help order.
COMMAND_MODULES = [
    "tinyalex.data.cli",
    "tinyalex.train.cli",
    "tinyalex.gradcheck",
    "tinyalex.bench",
    "tinyalex.exercises.generate",
    "tinyalex.models.summary",
    "tinyalex.experiments",
    "tinyalex.doctor",
]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows defaults and keeps descriptions' line breaks.

    Switches (--no-flip) and help texts that already state their default are
    left as written, so no option reads "(default: True)" for a flag.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if action.nargs == 0 or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def parse_devices(text) -> tuple:
    """The value of a ``--devices`` option: "d" (one device) or "d0,d1" (the two towers
    of section 3.2, one per device) -> a tuple of one or two device numbers.

    Raises ValueError naming the option and the accepted forms.
    """
    try:
        devices = tuple(int(t) for t in str(text).split(","))
    except ValueError:
        devices = ()
    if len(devices) not in (1, 2) or min(devices) < 0:
        raise ValueError(f"--devices must be one device number, or two separated by a comma for the two towers "
                         f"(e.g. 0 or 0,1), got {text!r}")
    return devices


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyalex", formatter_class=_Formatter,
        description="AlexNet from scratch in NumPy and CuPy: train, evaluate, benchmark, check gradients.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _orig = sub.add_parser

    def add_parser(*a, **kw):          # every subcommand shows its defaults in --help
        kw.setdefault("formatter_class", _Formatter)
        return _orig(*a, **kw)

    sub.add_parser = add_parser
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register_cli(sub)
    return parser


def _version():
    from . import __version__

    return f"tinyalex {__version__}"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
