"""What the .deb and the .pyz builders share: the package's files, its version, the build time."""

from __future__ import annotations

import gzip
import importlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "nestctl"

#: never shipped: byte-code is compiled on the target (postinst) or at import time.
SKIP_DIRS = frozenset({"__pycache__"})
SKIP_SUFFIXES = (".pyc", ".pyo", "~", ".swp")


def package_files(package: Path = PACKAGE) -> list[Path]:
    """Every file of the package (modules, templates, static assets), sorted, relative to it.

    Whatever another feature adds under src/nestctl/ ships without a list to update; only
    byte-code and editor leftovers stay out.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            if name.endswith(SKIP_SUFFIXES) or name.startswith("."):
                continue
            found.append(Path(dirpath, name).relative_to(package))
    return sorted(found, key=lambda p: p.as_posix())


def version() -> str:
    """`nestctl.__version__`, read by importing the package from the source tree."""
    sys.path.insert(0, str(SRC))  # the tree being packaged, not an installed copy
    try:
        return str(importlib.import_module("nestctl").__version__)
    finally:
        sys.path.remove(str(SRC))


def _git(*args: str) -> str:
    """Output of a git command in the repository; empty outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH, else the last commit's time: the same tree builds the same bytes."""
    for value in (os.environ.get("SOURCE_DATE_EPOCH", ""), _git("log", "-1", "--format=%ct")):
        if value.isdigit():
            return int(value)
    return int((PACKAGE / "__init__.py").stat().st_mtime)


def git_commit() -> str | None:
    """Short commit of the tree, for the changelog; None outside a git checkout."""
    return _git("rev-parse", "--short=12", "HEAD") or None


def gzip_bytes(data: bytes) -> bytes:
    """gzip -9n: maximum compression, no file name, no time stamp (same input, same bytes)."""
    return gzip.compress(data, compresslevel=9, mtime=0)
