"""mkdocs hook: let the docs link to the repository's code, tests and notebooks.

The pages in docs/ link to files outside docs/ the way GitHub renders them,
e.g. ``[backend.py](../tinyalex/backend.py)`` or
``[notebook 2](../notebooks/02-convolution-im2col.ipynb)``. mkdocs only knows
files inside docs/, so ``mkdocs build --strict`` would reject those links.
This hook (mkdocs' built-in ``hooks:`` feature, no plugin to install):

* finds every relative link in docs/*.md that leaves docs/;
* if the target exists in the repository, copies it into the site under
  ``src/`` (a folder gets a generated page listing its files) and rewrites the
  link to that copy, so the site is browsable offline;
* if the target does not exist, leaves the link alone, so strict mode still
  fails on it: a broken link to code is reported like any other.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

REPO = Path(__file__).resolve().parent
LINK = re.compile(r"(\]\()((?:\.\./)+[^)\s#]*)(#[^)\s]*)?(\))")
SKIP = {"__pycache__", ".ipynb_checkpoints", "runs"}
_targets: dict = {}     # repo-relative target -> "file" | "dir"


def _docs_dir(config) -> Path:
    return Path(config["docs_dir"]).resolve()


def _resolve(page_src_uri: str, url: str, docs: Path):
    """The repo-relative path a link points to, or None if it stays inside docs/ or leaves the repo."""
    page_dir = posixpath.dirname(page_src_uri)
    target = (docs / page_dir / url).resolve()
    try:
        rel = target.relative_to(REPO)
    except ValueError:
        return None
    if target == docs or docs in target.parents:
        return None
    return rel.as_posix().rstrip("/")


def _listing(rel: str) -> str:
    folder = REPO / rel
    lines = [f"# `{rel}/`", "", "Files in this folder of the repository:", ""]
    for p in sorted(folder.iterdir()):
        if p.name in SKIP or p.name.startswith("."):
            continue
        name = p.name + ("/" if p.is_dir() else "")
        if p.is_file():
            lines.append(f"- [{name}]({p.name})")
        else:
            lines.append(f"- {name}")
    return "\n".join(lines) + "\n"


def on_files(files, config):
    docs = _docs_dir(config)
    _targets.clear()
    for md in docs.rglob("*.md"):
        src_uri = md.relative_to(docs).as_posix()
        for m in LINK.finditer(md.read_text(encoding="utf-8")):
            rel = _resolve(src_uri, m.group(2), docs)
            if rel is None or not (REPO / rel).exists():
                continue
            _targets[rel] = "dir" if (REPO / rel).is_dir() else "file"
    added = set()
    for rel, kind in sorted(_targets.items()):
        if kind == "dir":
            for p in sorted((REPO / rel).iterdir()):   # the listing links to each file
                if p.is_file() and not p.name.startswith("."):
                    _add(files, config, p.relative_to(REPO).as_posix(), added)
            uri = f"{rel}/index.md"
            if uri not in added:
                files.append(File.generated(config, f"src/{uri}", content=_listing(rel),
                                            inclusion=InclusionLevel.NOT_IN_NAV))
                added.add(uri)
        else:
            _add(files, config, rel, added)
    return files


def _add(files, config, rel, added):
    if rel in added:
        return
    files.append(File.generated(config, f"src/{rel}", abs_src_path=str(REPO / rel)))
    added.add(rel)


def on_page_markdown(markdown, page, config, files):
    docs = _docs_dir(config)
    page_dir = posixpath.dirname(page.file.src_uri)

    def fix(m):
        rel = _resolve(page.file.src_uri, m.group(2), docs)
        if rel is None or rel not in _targets:
            return m.group(0)                      # inside docs/, or missing: mkdocs validates it
        target = f"src/{rel}" + ("/index.md" if _targets[rel] == "dir" else "")
        new = posixpath.relpath(target, page_dir or ".")
        return f"{m.group(1)}{new}{m.group(3) or ''}{m.group(4)}"

    return LINK.sub(fix, markdown)
