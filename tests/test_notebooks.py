"""Every notebook runs top to bottom in a real Jupyter kernel (fast mode), and is committed clean.

The notebooks are built from notebooks/src/*.py by notebooks/_build.py; CI
executes each one with nbclient (kernel python3) from the notebooks/
directory with TINYALEX_FAST=1, which shrinks data and epochs.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NUMBERED = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))
STUDENT = [NB_DIR / "exercises" / "exercises.ipynb"]
CELL_TIMEOUT = 300   # seconds per cell; fast mode needs a few seconds per cell

EXPECTED = [
    "01-setup-and-backend", "02-convolution-im2col", "03-relu-vs-tanh", "04-local-response-normalization",
    "05-overlapping-pooling", "06-dropout", "07-whole-alexnet", "08-two-gpu-split", "09-data",
    "10-training-fashion-mnist", "11-what-the-network-learned",
]


def _kernel_available():
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as e:
        return f"notebook execution needs nbclient, nbformat and ipykernel (pip install -r requirements.txt): {e}"
    return None


def test_the_eleven_numbered_notebooks_exist():
    assert [p.stem for p in NUMBERED] == EXPECTED


def test_committed_notebooks_are_built_from_their_sources():
    result = subprocess.run([sys.executable, str(NB_DIR / "_build.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NUMBERED + STUDENT, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: strip outputs"


@pytest.mark.parametrize("path", NUMBERED + STUDENT, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_fast_mode(path, monkeypatch):
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TINYALEX_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()       # raises CellExecutionError, naming the cell, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
