"""Where dataset files come from: search order, user cache, downloads.

Every file-based dataset in tinyalex is looked up in the same order:

1. an explicit ``root`` argument (the CLI's ``--data-dir``): only there;
2. the environment variable ``TINYALEX_DATA``: ``$TINYALEX_DATA/<name>``,
   then ``$TINYALEX_DATA`` itself;
3. the user cache ``${XDG_CACHE_HOME:-~/.cache}/tinyalex/<name>``;
4. a system-wide directory installed by a distribution package, e.g.
   ``/usr/share/datasets/fashion-mnist`` (Debian ``dataset-fashion-mnist``);
5. a download from the official source into the user cache (if allowed).

An explicit ``root`` is strict: if the files are not there, tinyalex does not
silently fall back to another copy (the user asked for that directory).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from urllib.request import urlopen

from ..fileio import atomic_write

ENV_VAR = "TINYALEX_DATA"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")


def user_cache_dir(name: str | None = None) -> Path:
    """The tinyalex cache directory, ``${XDG_CACHE_HOME:-~/.cache}/tinyalex[/name]``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec requires.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    path = base / "tinyalex"
    return path / name if name else path


def candidate_dirs(name: str, root=None, system: bool = True) -> list[tuple[str, Path]]:
    """Directories to search for dataset ``name``, in priority order.

    Returns ``(how, path)`` pairs; ``how`` says where the candidate comes from
    (used in error messages). With an explicit ``root`` only ``root`` and
    ``root/name`` are searched.
    """
    if root is not None:
        root = Path(root).expanduser()
        return [("root", root), ("root", root / name)]
    found = []
    env = os.environ.get(ENV_VAR)
    if env:
        env_dir = Path(env).expanduser()
        found += [(ENV_VAR, env_dir / name), (ENV_VAR, env_dir)]
    found.append(("cache", user_cache_dir(name)))
    if system:
        found.append(("system", SYSTEM_DATA_DIR / name))
    return found


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks (bounded memory)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url: str, dest, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    The bytes go through ``tinyalex.fileio.atomic_write``: a temporary file in
    the same directory, checked against ``md5`` (if given) before it is renamed
    onto ``dest``. A crash or a bad download therefore never leaves a
    half-written ``dest`` that a later run would mistake for the real file.
    """
    dest = Path(dest)
    print(f"tinyalex: downloading {url} -> {dest}", file=sys.stderr)

    def fetch(out):
        digest = hashlib.md5(usedforsecurity=False)
        with urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                digest.update(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise OSError(f"checksum mismatch for {url}: MD5 {digest.hexdigest()}, expected {md5}")

    return atomic_write(dest, fetch)


def not_found_message(title: str, searched, ways: list[str], download_error=None) -> str:
    """Build the text of a DatasetNotFoundError: what was searched, how to fix it."""
    lines = [f"{title} was not found."]
    if searched:
        lines.append("Searched: " + ", ".join(str(p) for p in searched) + ".")
    if download_error is not None:
        lines.append(f"Download failed: {download_error}")
    lines.append("Ways to provide it:")
    lines += [f"  - {way}" for way in ways]
    return "\n".join(lines)
