"""The documentation site builds with `mkdocs build --strict`: no broken link, no page missing from the nav."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _mkdocs():
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.skip("mkdocs is not installed (pip install -r requirements.txt installs it)")


def test_docs_build_strict(tmp_path):
    _mkdocs()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    # links to the notebooks and the code are copied into the site and resolve
    assert (tmp_path / "site" / "src" / "notebooks" / NOTEBOOKS[0]).is_file()


def test_index_links_every_notebook():
    index = (ROOT / "docs" / "index.md").read_text()
    missing = [nb for nb in NOTEBOOKS if f"../notebooks/{nb}" not in index]
    assert not missing, f"docs/index.md does not link {missing}"


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if p not in nav] == []


def test_hook_reports_a_broken_link_to_code(tmp_path):
    """A link to a file that does not exist in the repository still fails the strict build."""
    _mkdocs()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("[gone](../tinyalex/no_such_file.py) and [real](../tinyalex/backend.py)\n")
    shutil.copy(ROOT / "mkdocs_hooks.py", tmp_path / "mkdocs_hooks.py")
    (tmp_path / "tinyalex").mkdir()
    (tmp_path / "tinyalex" / "backend.py").write_text("# stand-in\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nhooks: [mkdocs_hooks.py]\nnav: [index.md]\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "no_such_file.py" in result.stderr and "backend.py" not in result.stderr.replace("no_such_file", "")


def test_no_page_appears_twice_in_the_nav():
    import re

    entries = re.findall(r"^\s*-\s*[^:]+:\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    assert len(entries) == len(set(entries)), f"duplicate nav entries: {sorted(e for e in entries if entries.count(e) > 1)}"
