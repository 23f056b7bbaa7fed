"""The command line: ``python -m tinyalex SUBCOMMAND`` (or the ``tinyalex`` script).

Each subcommand lives next to the code it runs and registers itself here
through a ``register_cli(subparsers)`` function.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import warnings

from . import __version__
from .backend import BackendError
from .data import CorruptDatasetError, DatasetNotFoundError
from .errors import UserError
from .fileio import CorruptFileError, WriteError
from .train.trainer import NonFiniteLossError, StopRequested

# Every subcommand provider, in --help order. They are loaded by name in build_parser, not imported
# at the top: bench, models.cli and train.cli import parse_devices from this module, and this module
# importing them back would be an import cycle.
COMMAND_MODULES = [
    "tinyalex.data.cli",
    "tinyalex.train.cli",
    "tinyalex.gradcheck",
    "tinyalex.bench",
    "tinyalex.exercises.generate",
    "tinyalex.models.cli",
    "tinyalex.experiments",
    "tinyalex.doctor",
    "tinyalex.deconvnet",
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
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also: TINYALEX_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _orig = sub.add_parser

    def add_parser(*a, **kw):          # every subcommand shows its defaults in --help
        kw.setdefault("formatter_class", _Formatter)
        sp = _orig(*a, **kw)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error (also: TINYALEX_DEBUG=1)")
        return sp

    sub.add_parser = add_parser
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register_cli(sub)
    return parser


def _version():
    return f"tinyalex {__version__}"


def main(argv=None) -> int:
    """Run one command; returns its exit code: 0 done, 1 a fault, 2 a user error, 130/143 a signal.

    Errors are one ``tinyalex: error:`` line (no traceback unless --debug or
    TINYALEX_DEBUG=1): see :func:`describe_error`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    debug = args.debug or os.environ.get("TINYALEX_DEBUG", "").strip() not in ("", "0")
    old_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning
    old_sigterm = _sigterm_like_ctrl_c()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print("interrupted" + ("" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"),
              file=sys.stderr, flush=True)
        return 128 + signum
    except Exception as exc:
        if debug:
            raise
        code, message = describe_error(exc)
        print(f"tinyalex: error: {message}", file=sys.stderr, flush=True)
        return code
    finally:
        warnings.showwarning = old_showwarning
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)


def _sigterm_like_ctrl_c():
    """Outside a training run's own handler (loading data, evaluate, ...), SIGTERM raises like Ctrl-C
    does, so the command cleans up (a run folder it just made is removed) and exits 143."""
    def handler(signum, frame):
        raise StopRequested(signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:             # not the main thread: leave signals alone
        return None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"tinyalex: warning: {message}", file=sys.stderr if file is None else file, flush=True)


def describe_error(exc):
    """(exit code, one-line message) for an exception that ended a command.

    2 for input the user can fix (UserError, a backend that is not installed,
    a bad value), 1 for a fault (a damaged file, a full disk, a diverged run,
    a missing dataset) and for an unexpected error (named as a bug).
    """
    if isinstance(exc, (UserError, BackendError)):
        return 2, str(exc)
    if isinstance(exc, (CorruptFileError, CorruptDatasetError, DatasetNotFoundError, NonFiniteLossError)):
        return 1, str(exc)
    if isinstance(exc, WriteError):
        return 1, str(exc) + (" (no space left on the disk)" if exc.errno == errno.ENOSPC else "")
    if isinstance(exc, FileNotFoundError):
        return 2, str(exc) if not exc.filename else f"{exc.filename}: no such file or folder"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return 1, f"{where}{exc.strerror or exc}"
    if isinstance(exc, ValueError):
        return 2, str(exc)
    return 1, (f"internal error {type(exc).__name__}: {exc} (a bug in tinyalex; run with --debug or "
               "TINYALEX_DEBUG=1 for the traceback and report it)")


def run(argv=None):
    """The ``tinyalex`` script and ``python -m tinyalex``: :func:`main`, then exit.

    After a signal (exit code 130 or 143) the process ends with ``os._exit``
    once its output is flushed: Python would otherwise join the CPU thread
    pool's workers at exit, and a worker left waiting on a lock that the
    interrupted main thread held would keep the process alive for ever (see
    tinyalex/train/trainer.py, _StopSignals). Every file was already written
    atomically, so nothing is lost by skipping the rest of the shutdown.
    """
    code = main(argv)
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(run())
