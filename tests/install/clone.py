"""Copy this repository as a user gets it: `git clone`, plus the uncommitted work under test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.install.rootfs import REPO


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout


def clone_into(dest: Path) -> None:
    """Clone HEAD to DEST, then apply the working tree's changes (so a test sees the tree it
    runs from; in CI the tree is a clean clone and this adds nothing)."""
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)],
        capture_output=True,
        check=True,
    )
    for rel in git("ls-files", "-z", "--deleted").split("\0"):
        if rel:
            (dest / rel).unlink(missing_ok=True)
    changed = git("ls-files", "-z", "--modified", "--others", "--exclude-standard").split("\0")
    for rel in filter(None, changed):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
