"""The reference layers are what a student reads and what fast=False runs: nothing fast hides in them.

tinyalex/fast imports tinyalex/layers, never the reverse; no file in
tinyalex/layers imports the fast package or mentions its state or its
algorithms; no reference class carries an implementation switch.
"""
import ast
import re
from pathlib import Path

import pytest

import tinyalex.layers

PACKAGE = Path(__file__).resolve().parents[2] / "tinyalex"
LAYER_FILES = sorted((PACKAGE / "layers").glob("*.py"))


def imported_modules(path):
    """Every module a file imports, as written (relative imports keep their dots: "..fast", ".conv")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found += [base] + [base + ("" if base.endswith(".") else ".") + a.name for a in node.names]
    return found


def test_the_layer_files_are_found():
    assert {"conv.py", "lrn.py", "pooling.py", "activation.py", "linear.py"} <= {p.name for p in LAYER_FILES}


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: p.name)
def test_reference_layers_never_import_the_fast_package(path):
    fast = [m for m in imported_modules(path) if re.search(r"(^|\.)fast(\.|$)", m)]
    assert fast == [], f"tinyalex/layers/{path.name} imports {fast}: tinyalex/fast imports the layers, not the reverse"


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: p.name)
def test_reference_layers_never_mention_fast_state_or_winograd(path):
    text = path.read_text()
    hits = [w for w in ("_fast", "winograd", "use_impl", "_workspaces") if w in text.lower()]
    assert hits == [], f"tinyalex/layers/{path.name} mentions {hits}"


@pytest.mark.parametrize("name", ["Conv2D", "LRN", "MaxPool2D", "ReLU", "Linear"])
def test_reference_classes_have_no_implementation_switch(name):
    cls = getattr(tinyalex.layers, name)
    assert not hasattr(cls, "impl") and not hasattr(cls, "algorithm")
    assert cls.__module__.startswith("tinyalex.layers.")


def test_the_planted_import_is_caught(tmp_path):
    """The import check is not vacuous: a relative import of the fast package is found."""
    planted = tmp_path / "planted.py"
    planted.write_text("from ..fast.conv import FastConv2D\nfrom .. import fast\n")
    assert [m for m in imported_modules(planted) if re.search(r"(^|\.)fast(\.|$)", m)]
