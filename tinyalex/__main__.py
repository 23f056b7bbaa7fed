"""``python -m tinyalex ...``: see :mod:`tinyalex.cli`."""
import sys

from .cli import main

sys.exit(main())
