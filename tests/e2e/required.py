"""Tests that need a real tool: skip on a developer's machine without it, FAIL in CI.

CI (scripts/test with CI=true) sets NESTCTL_E2E_REQUIRED=1 and installs QEMU and qemu-ga, so a
missing tool there is a broken CI setup, never a silently skipped test.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from tests import skips

QEMU = "qemu-system-x86_64"


def give_up(reason: str) -> NoReturn:
    skips.give_up(reason)


def require_program(name: str) -> str:
    """The program's path, or skip/fail with the reason."""
    path = shutil.which(name)
    if path is None:
        give_up(f"{name} not installed (scripts/install-debian-deps)")
    return path


@pytest.fixture
def qemu_binary() -> str:
    return require_program(QEMU)


@pytest.fixture(autouse=True)
def _private_oracle_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The QEMU oracle's default cache (root: /var/cache/nestctl, else XDG) goes to tmp_path:
    tests that run `nestctl vm --use-qemu` must not write the machine's own cache."""
    from nestctl.qemu import cache  # noqa: PLC0415

    monkeypatch.setattr(cache, "ROOT_CACHE", tmp_path / "root-cache" / "qemu-cpu.json")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
