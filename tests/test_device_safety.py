"""Layer math never calls NumPy directly: it takes ``xp`` from its arrays (backend.md).

The stand-in tests catch a NumPy call on the code paths they run; this check
reads the source, so it also covers branches no test happens to reach.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyalex"
LAYER_FILES = sorted(PACKAGE.glob("layers/*.py")) + sorted(PACKAGE.glob("fast/*.py"))   # reference and fast
# Functions that build parameters on the host (constructors), validate sizes, or
# read a state dict (host arrays by definition) may use numpy; everything else
# touches data that may be on a device.
HOST_ONLY = {"__init__", "check_dtype", "_pair", "conv_output_size", "load_state_dict"}


def numpy_calls(path):
    """(function name, line, call text) for every numpy.* / np.* call inside a function body."""
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.name in HOST_ONLY:
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                base = node.func
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in ("numpy", "np"):
                    found.append((fn.name, node.lineno, ast.unparse(node.func)))
    return found


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_layer_code_takes_its_array_module_from_the_data(path):
    calls = [c for c in numpy_calls(path) if c[2] != "numpy.dtype"]   # numpy.dtype(...) names a dtype
    assert calls == [], f"{path.parent.name}/{path.name}: numpy calls on possibly-device data (use xp = get_array_module(x)): {calls}"
