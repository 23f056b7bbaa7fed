"""The import rules of CONTRIBUTING.md: no import cycles inside tinyalex, imports at the top of a module.

Only optional dependencies (CuPy, PyTorch, MPI, ...) may be imported inside a
function, where their absence is turned into a clear message. A cycle hidden
by a function-level import still makes the code's order of loading fragile,
so the graph is built from the module-level imports and must have none.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyalex"

# Top-level names that a function may import: the optional dependencies (pyproject's extras) and
# IPython. Everything else (the package's own modules, the standard library, numpy, matplotlib,
# Pillow, tqdm) is imported at the top of the module.
OPTIONAL = {"cupy", "torch", "mpi4py", "nbformat", "IPython"}
# Package modules a function may import, and why (the reason is measured and written where it is done).
LAZY = {"tinyalex.viz": "matplotlib: most of the cost of importing tinyalex.train (train/trainer.py)"}


def module_names(root: Path, package: str) -> dict:
    """{dotted module name: file} of every .py file under ``root`` (the folder of ``package``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def split_imports(tree):
    """(module-level, function-level) import nodes of a parsed file: anything not inside a def runs
    when the module is imported (class bodies, try/except and if blocks at the top included)."""
    top, inside = [], []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (inside if in_function else top).append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, inside


def imported_modules(node, module: str, is_package: bool, modules) -> set:
    """The package's modules that an import statement in ``module`` loads (absolute or relative)."""
    package = module.split(".")[0]
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        if node.level:
            base = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = ".".join(p for p in (base, node.module) if p)
        else:
            base = node.module or ""
        targets = [base] + [f"{base}.{a.name}" for a in node.names]   # `from pkg import submodule`
    loaded = set()
    for target in targets:
        if target.split(".")[0] != package:
            continue
        parts = target.split(".")
        for i in range(1, len(parts) + 1):       # importing a.b.c runs a.b's __init__ too
            name = ".".join(parts[:i])
            # the importer's own enclosing packages are already being imported: not an edge
            if name in modules and name != module and not module.startswith(name + "."):
                loaded.add(name)
    return loaded


def import_graph(root: Path, package: str) -> dict:
    """{module: set of the package's modules its module-level imports load}."""
    modules = module_names(root, package)
    graph = {}
    for name, path in modules.items():
        top, _ = split_imports(ast.parse(path.read_text(), str(path)))
        graph[name] = set().union(*(imported_modules(n, name, path.name == "__init__.py", modules) for n in top))
    return graph


def find_cycle(graph: dict):
    """One cycle as a list [m0, m1, ..., m0], or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def function_level_imports(root: Path, package: str, lazy=()):
    """['file:line imports NAME'] for every import inside a function of something not in OPTIONAL
    (nor, for the package's own modules, in ``lazy``)."""
    modules = module_names(root, package)
    bad = []
    for name, path in modules.items():
        _, inside = split_imports(ast.parse(path.read_text(), str(path)))
        for node in inside:
            if isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                names = [a.name for a in node.names]
            own = imported_modules(node, name, path.name == "__init__.py", modules)
            for imported in names:
                if imported.startswith(".") or imported.split(".")[0] == package:
                    if own and own <= set(lazy):
                        continue
                elif imported.split(".")[0] in OPTIONAL:
                    continue
                bad.append(f"{path.relative_to(root.parent)}:{node.lineno} imports {imported}")
    return bad


def write_package(tmp_path, files: dict) -> Path:
    root = tmp_path / "planted"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# -- the checks can fail ------------------------------------------------------------------------
def test_the_cycle_check_finds_a_planted_cycle_through_a_subpackage(tmp_path):
    root = write_package(tmp_path, {
        "a.py": "from .sub.b import f\n",
        "sub/__init__.py": "from .b import f\n",
        "sub/b.py": "import os\n\nfrom ..a import g\n\ndef f():\n    pass\n",
    })
    assert find_cycle(import_graph(root, "planted")) == ["planted.a", "planted.sub", "planted.sub.b", "planted.a"]


def test_the_cycle_check_ignores_imports_inside_functions_and_of_enclosing_packages(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": "from . import a\n",
        "a.py": "from . import b\n",
        "b.py": "import planted\n\ndef late():\n    from . import a\n",
    })
    assert import_graph(root, "planted")["planted.b"] == set()
    assert find_cycle(import_graph(root, "planted")) is None


def test_the_function_import_check_names_a_planted_local_import(tmp_path):
    root = write_package(tmp_path, {
        "a.py": "import json\n\ndef f():\n    import torch\n    from .b import g\n    import numpy\n"
                "    from .plots import draw\n",
        "b.py": "def g():\n    pass\n",
        "plots.py": "def draw():\n    pass\n",
    })
    assert function_level_imports(root, "planted", lazy={"planted.plots"}) == [
        "planted/a.py:5 imports .b", "planted/a.py:6 imports numpy"]
    assert "planted/a.py:7 imports .plots" in function_level_imports(root, "planted")


# -- the rules hold in tinyalex -----------------------------------------------------------------
def test_tinyalex_has_no_import_cycle():
    graph = import_graph(PACKAGE, "tinyalex")
    assert len(graph) > 50 and graph["tinyalex.train.trainer"] >= {"tinyalex.models", "tinyalex.data"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_functions_import_only_optional_dependencies():
    bad = function_level_imports(PACKAGE, "tinyalex", lazy=LAZY)
    assert bad == [], ("move these imports to the top of their module (only " + ", ".join(sorted(OPTIONAL | set(LAZY)))
                       + " may be imported inside a function):\n" + "\n".join(bad))


def _first_imports():
    """The top-level modules and subpackages that ``import tinyalex`` does not load itself: importing
    each of them first, in a fresh interpreter, is what a user's script or a subcommand does."""
    graph = import_graph(PACKAGE, "tinyalex")
    reached, todo = set(), ["tinyalex"]
    while todo:
        m = todo.pop()
        if m not in reached:
            reached.add(m)
            todo += graph[m]
    top = sorted(n for n in graph if n.count(".") == 1 and n != "tinyalex.__main__")
    return [n for n in top if n not in reached]


def test_every_module_imports_in_a_fresh_interpreter():
    """One interpreter per entry point not loaded by ``import tinyalex`` (run side by side): it imports
    that one first, then every other module of the package, so a cycle that only bites in some order fails."""
    everything = sorted(n for n in import_graph(PACKAGE, "tinyalex") if n != "tinyalex.__main__")
    firsts = _first_imports()
    assert "tinyalex.train" in firsts and "tinyalex.cli" in firsts
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    procs = {first: subprocess.Popen([sys.executable, "-c", script, first, *everything], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for first in firsts}
    failed = {}
    for first, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            failed[first] = out.strip().splitlines()[-1]
    assert failed == {}, failed

