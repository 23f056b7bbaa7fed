"""The one atomic writer: a file is replaced whole or not at all, with the usual permissions."""
import os

from tinyalex.fileio import atomic_write_text


def test_atomic_write_text_replaces_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "results.json"
    atomic_write_text(p, "old")
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and [f.name for f in tmp_path.iterdir()] == ["results.json"]


def test_atomic_write_gives_the_usual_file_mode_not_mkstemp_0600(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "results.md", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "results.md").stat().st_mode & 0o777 == 0o644
