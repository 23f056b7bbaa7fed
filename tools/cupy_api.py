"""Regenerate tinyalex/cupy_api.txt: the CuPy API the stand-in allows.

Reads CuPy's own sources (a git clone of github.com/cupy/cupy) at two release
tags and keeps what both have, so code that passes the stand-in runs on both::

    git clone https://github.com/cupy/cupy /tmp/cupy
    python tools/cupy_api.py /tmp/cupy v13.6.0 v14.2.0 > tinyalex/cupy_api.txt

What it lists (one entry a line, no CuPy code is copied):
  ``cupy.NAME``                  public names of cupy/__init__.py (and of the
                                 random, linalg, lib.stride_tricks modules)
  ``cupy.NAME(arg, ...)``        the same, for functions written in Python whose
                                 signature has no ``**kwargs``: the keywords CuPy accepts
  ``cupy.random.Generator.M``    methods of CuPy's Generator (random/_generator_api.pyx)
  ``cupy.ufunc.M``               methods of CuPy's ufunc (_core/_kernel.pyx)
"""
import ast
import re
import subprocess
import sys

MODULES = {"cupy": "cupy/__init__.py", "cupy.random": "cupy/random/__init__.py",
           "cupy.linalg": "cupy/linalg/__init__.py", "cupy.lib.stride_tricks": "cupy/lib/stride_tricks.py"}


def show(repo, tag, path):
    out = subprocess.run(["git", "-C", repo, "show", f"{tag}:{path}"], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def params(node):
    """Parameter names of a function definition (None if it takes **kwargs)."""
    a = node.args
    if a.kwarg is not None:
        return None
    return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + (["*" + a.vararg.arg] if a.vararg else [])


def signature(repo, tag, module, name):
    """Parameter names of a Python function (None if it takes **kwargs or is not Python)."""
    src = show(repo, tag, module.replace(".", "/") + ".py") or show(repo, tag, module.replace(".", "/") + "/__init__.py")
    if src is None:
        return None
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return params(node)
    return None


def public_names(repo, tag, prefix, path):
    tree = ast.parse(show(repo, tag, path))
    out = {}

    def visit(body):
        for node in body:
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body + getattr(node, "orelse", []) + [h for x in getattr(node, "handlers", []) for h in x.body])
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    name = a.asname or a.name
                    if not name.startswith("_"):
                        mod = node.module if node.level == 0 else None
                        out[name] = signature(repo, tag, mod, a.name) if mod and mod.startswith("cupy.") else None
            elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                out[node.name] = params(node)
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                out[node.name] = None
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and not n.id.startswith("_"):
                            out[n.id] = None
    visit(tree.body)
    return {f"{prefix}.{k}": v for k, v in out.items()}


def class_methods(repo, tag, path, header, prefix):
    lines, inside, out = show(repo, tag, path).splitlines(), False, {}
    for line in lines:
        if line.startswith(header):
            inside = True
        elif inside and re.match(r"^(cdef )?class ", line):
            break
        elif inside:
            m = re.match(r"^    (?:cp)?def (?:\w+ )?([a-z]\w*)\(", line)
            if m:
                out[f"{prefix}.{m.group(1)}"] = None
    return out


def api(repo, tag):
    names = {}
    for prefix, path in MODULES.items():
        names.update(public_names(repo, tag, prefix, path))
    names.update(class_methods(repo, tag, "cupy/random/_generator_api.pyx", "class Generator", "cupy.random.Generator"))
    names.update(class_methods(repo, tag, "cupy/_core/_kernel.pyx", "cdef class ufunc", "cupy.ufunc"))
    return names


def main(repo, *tags):
    apis = [api(repo, t) for t in tags]
    common = sorted(set.intersection(*(set(a) for a in apis)))
    print(f"# CuPy API present in all of {', '.join(tags)} (tools/cupy_api.py, from CuPy's sources)")
    for name in common:
        sigs = [a[name] for a in apis]
        if all(s is not None for s in sigs):      # keywords accepted by every version
            keep = [p for p in sigs[0] if all(p in s for s in sigs[1:])]
            print(f"{name}({', '.join(keep)})")
        else:
            print(name)


if __name__ == "__main__":
    main(*sys.argv[1:])
