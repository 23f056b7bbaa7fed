"""Build the numbered notebooks from their sources in notebooks/src/ (py:percent format).

    python notebooks/_build.py            # write notebooks/NN-*.ipynb (no outputs)
    python notebooks/_build.py --check    # exit 1 if a committed notebook is out of date

A source is a plain Python file: ``# %%`` starts a code cell and ``# %% [markdown]``
a markdown cell (lines prefixed with ``# ``). Edit the source, never the .ipynb:
the notebooks are committed without outputs and rebuilt from here. The conversion
is tinyalex's own (tinyalex.exercises.generate.make_notebook), shared with the
classroom exercises.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tinyalex.exercises.generate import make_notebook  # noqa: E402
from tinyalex.fileio import atomic_write_text  # noqa: E402


def sources():
    return sorted((HERE / "src").glob("[0-9][0-9]-*.py"))


def build(check=False) -> int:
    stale = []
    for src in sources():
        target = HERE / (src.stem + ".ipynb")
        text = make_notebook(src.read_text(encoding="utf-8"))
        if check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        else:
            atomic_write_text(target, text)
            print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run python notebooks/_build.py):", ", ".join(stale))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(build(check="--check" in sys.argv[1:]))
