"""``python -m tinyalex ...``: see :mod:`tinyalex.cli`."""
import sys

from .cli import run

sys.exit(run())
