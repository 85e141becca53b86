"""Tests that need a real tool: skip on a developer's machine without it, FAIL in CI.

CI (scripts/test with CI=true) sets NESTCTL_E2E_REQUIRED=1 and installs QEMU and qemu-ga, so a
missing tool there is a broken CI setup, never a silently skipped test.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

QEMU = "qemu-system-x86_64"


def give_up(reason: str) -> NoReturn:
    if os.environ.get("NESTCTL_E2E_REQUIRED"):
        pytest.fail(f"{reason} (NESTCTL_E2E_REQUIRED is set: this must not be skipped)")
    pytest.skip(reason)


def require_program(name: str) -> str:
    """The program's path, or skip/fail with the reason."""
    path = shutil.which(name)
    if path is None:
        give_up(f"{name} not installed (scripts/install-debian-deps)")
    return path


@pytest.fixture
def qemu_binary() -> str:
    return require_program(QEMU)
