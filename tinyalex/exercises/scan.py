"""Read a submission's code (a .py file or a notebook) and scan it for shortcuts.

:func:`submission_code` gives the Python code the grader runs: a .py file as
it is; a notebook's code cells, without the check cells, with IPython magics
(``%matplotlib inline``, ``%%time``) and shell lines (``!pip install``)
turned into ``pass`` so that a correct notebook grades like a correct module.

:func:`scan` reads the syntax tree -- it never runs the code -- and finds
the exercises whose functions reach a reference implementation: an import
of ``tinyalex.layers``, ``tinyalex.models``, ``tinyalex.train``,
``tinyalex.exercises`` (other than the check functions), ``tinyalex.gradcheck``,
``tinyalex.fast`` or any other part of tinyalex that is not in
:data:`ALLOWED`, used by the function or by a helper it calls, and dynamic
imports or code (``__import__``, ``importlib``, ``exec``, ``eval``,
``__globals__``, ``sys.modules``). Those exercises score 0 with the reason.
An exercise whose function is not written with ``def`` in the file at all
(imported or assigned from elsewhere) is flagged too.

This catches the shortcuts a student takes by accident or on a dare, not a
determined attacker: the grader is not a sandbox (docs/teaching.md).
"""
from __future__ import annotations

import ast
import json
import re
import threading
from pathlib import Path

CHECK_CELL = "# Check your code (run this cell after the one above)"

# What a submission may import from tinyalex: the handout's own imports.
ALLOWED = {
    "tinyalex.backend": "*",                       # get_array_module, to_host...
    "tinyalex.standin": "*",
    "tinyalex.layers": {"im2col", "col2im"},       # given helpers, not exercises
    "tinyalex.layers.conv": {"im2col", "col2im"},
    "tinyalex.exercises.checks": "check",          # the check functions (star import or check_*/run_all)
}
CHECK_NAMES = re.compile(r"^(check_\w+|run_all|check_all|\*)$")
DYNAMIC_NAMES = {"__import__", "exec", "eval", "importlib", "__builtins__"}
DYNAMIC_ATTRS = {"__globals__", "__code__", "__closure__", "__builtins__", "modules"}
# magics whose cell is not Python at all: the whole cell is dropped
FOREIGN_CELL_MAGICS = {"bash", "sh", "script", "writefile", "html", "javascript", "js", "latex", "markdown",
                       "svg", "perl", "ruby", "system", "file", "sx"}


# ---------------------------------------------------------------------------
# the code of a submission
# ---------------------------------------------------------------------------
def strip_magics(cell: str) -> str:
    """A notebook cell with IPython magics and shell lines replaced by ``pass`` (same indentation)."""
    lines = cell.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split()[0] if lines[0].strip() != "%%" else ""
        if magic in FOREIGN_CELL_MAGICS:
            return "pass  # cell magic %%" + magic + " removed by the grader"
        lines = ["pass  # cell magic removed by the grader"] + lines[1:]
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("%", "!")) or re.match(r"^[\w.]+\s*=\s*[%!]", stripped):
            out.append(f"{indent}pass  # magic or shell line removed by the grader")
        elif re.match(r"^[\w.]+\?{1,2}\s*$", stripped):          # obj? help
            out.append(f"{indent}pass  # help line removed by the grader")
        else:
            out.append(line)
    return "\n".join(out)


def submission_code(path) -> str:
    """The Python code of a .py file, or of a notebook's code cells (check cells left out, magics stripped).

    Raises ValueError with a one-line reason for a file that is not a
    readable module or notebook.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if path.suffix != ".ipynb":
        return text
    try:
        nb = json.loads(text)
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
        sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"not a Jupyter notebook ({type(e).__name__}: {e})") from None
    return "\n\n".join(strip_magics(s) for s in sources if not s.startswith(CHECK_CELL))


# ---------------------------------------------------------------------------
# the scan
# ---------------------------------------------------------------------------
def _allowed(module: str, name: str | None) -> bool:
    """Whether ``from module import name`` (or ``import module`` when name is None) is allowed."""
    if module != "tinyalex" and not module.startswith("tinyalex."):
        return True
    if name is None:                          # import tinyalex[.x]: attribute uses are checked where they are
        return module == "tinyalex" or module in ALLOWED
    if f"{module}.{name}" in ALLOWED:         # from tinyalex.exercises import checks
        return True
    rule = ALLOWED.get(module)
    if rule == "*":
        return True
    if rule == "check":
        return bool(CHECK_NAMES.match(name))
    if rule is not None:
        return name in rule
    if module == "tinyalex":                   # from tinyalex import backend
        return f"tinyalex.{name}" in ALLOWED and ALLOWED[f"tinyalex.{name}"] == "*"
    return any(module.startswith(m + ".") for m, r in ALLOWED.items() if r == "*")


def _dotted(node):
    """'a.b.c' for an attribute chain a.b.c, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return None


class _Uses(ast.NodeVisitor):
    """Within one function (or the module body): names read, and forbidden things done."""

    def __init__(self, module_aliases):
        self.names, self.problems = set(), []
        self.aliases = module_aliases           # name -> tinyalex module bound at module level
        self.local_aliases = {}

    def problem(self, node, text):
        self.problems.append(f"{text} (line {node.lineno})")

    def visit_Import(self, node):
        for a in node.names:
            if not _allowed(a.name, None):
                self.problem(node, f"imports {a.name}")
            elif a.name == "importlib" or a.name.startswith("importlib."):
                self.problem(node, "imports importlib")
            if a.name.startswith("tinyalex"):
                self.local_aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "tinyalex"

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level:
            return
        for a in node.names:
            if not _allowed(module, a.name):
                self.problem(node, f"imports {a.name} from {module}")
            if module == "importlib" or a.name in ("import_module", "__import__"):
                self.problem(node, f"imports {a.name} from {module}")
            if module.startswith("tinyalex") and a.name != "*":
                self.local_aliases[a.asname or a.name] = f"{module}.{a.name}"

    def visit_Name(self, node):
        self.names.add(node.id)
        if node.id in DYNAMIC_NAMES:
            self.problem(node, f"uses {node.id}")

    def visit_Attribute(self, node):
        if node.attr in DYNAMIC_ATTRS and (node.attr != "modules" or _dotted(node) == "sys.modules"):
            self.problem(node, f"uses .{node.attr}")
        chain = _dotted(node)
        if chain:
            head, _, rest = chain.partition(".")
            base = self.local_aliases.get(head) or self.aliases.get(head)
            if base and rest:                   # tinyalex.layers.Conv2D, checks.L.Conv2D ...
                full = f"{base}.{rest}"
                module, _, name = full.rpartition(".")
                if not (_allowed(module, name) or _allowed(full, None)):
                    self.problem(node, f"uses {full}")
                    return                       # report the longest chain once
        self.generic_visit(node)


# ast.parse is not thread-safe in CPython 3.11 (the AST builder's recursion counter is shared:
# python/cpython#106905): two threads of `exercises grade --jobs N` parsing at once raised
# "SystemError: AST constructor recursion depth mismatch". Parsing is quick; do one at a time.
_PARSE_LOCK = threading.Lock()


def scan(code: str, exercises) -> dict:
    """{exercise: reason} for each exercise whose functions use a forbidden import or dynamic code.

    ``exercises`` maps an exercise name to the function names it checks.
    Raises SyntaxError if the code does not parse.
    """
    with _PARSE_LOCK:
        tree = ast.parse(code)
    defs, module_body = {}, []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs[node.name] = node                   # the last definition wins, as when the code runs
        else:
            module_body.append(node)
    # module level: imports and bindings
    aliases = {}
    top = _Uses(aliases)
    for node in module_body:
        top.visit(node)
    aliases.update(top.local_aliases)
    tainted_names = {}                               # name bound by a forbidden import -> reason
    star_problem = None
    for node in ast.walk(ast.Module(body=module_body, type_ignores=[])):
        if isinstance(node, ast.ImportFrom) and not node.level:
            for a in node.names:
                if not _allowed(node.module or "", a.name):
                    if a.name == "*":
                        star_problem = f"imports * from {node.module} (line {node.lineno})"
                    else:
                        tainted_names[a.asname or a.name] = f"imports {a.name} from {node.module} (line {node.lineno})"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if not _allowed(a.name, None) and a.asname:
                    tainted_names[a.asname] = f"imports {a.name} (line {node.lineno})"
                elif not _allowed(a.name, None):
                    tainted_names[a.name.split(".")[0]] = f"imports {a.name} (line {node.lineno})"
    module_dynamic = [p for p in top.problems if p.startswith("uses")]

    # per function: its own problems and the names it reads
    uses = {}
    for name, node in defs.items():
        u = _Uses(aliases)
        for child in node.body + node.args.defaults + node.args.kw_defaults + node.decorator_list:
            if child is not None:
                u.visit(child)
        uses[name] = u

    def reasons_of(fname, seen):
        if fname in seen or fname not in uses:
            return []
        seen.add(fname)
        u = uses[fname]
        out = [f"{fname}() {p}" for p in u.problems]
        out += [f"{fname}() uses {n}, which your file {tainted_names[n]}" for n in sorted(u.names & set(tainted_names))]
        for callee in sorted(u.names & set(uses)):
            out += reasons_of(callee, seen)
        return out

    flagged = {}
    for ex, functions in exercises.items():
        reasons = []
        for fname in functions:
            if fname not in defs:
                if fname in tainted_names or star_problem:
                    reasons.append(f"{fname} is not written in your file: it {tainted_names.get(fname) or star_problem}")
                continue                             # simply missing: the check says so
            reasons += reasons_of(fname, set())
        if star_problem and not reasons:
            reasons.append(f"your file {star_problem}")
        if module_dynamic and not reasons:
            reasons.append(f"module-level code {module_dynamic[0]}")
        if reasons:
            flagged[ex] = ("scored 0: " + "; ".join(dict.fromkeys(reasons))
                           + ". Write the exercise yourself with NumPy; tinyalex's layers and the solutions are "
                           "what it is checked against")
    return flagged
