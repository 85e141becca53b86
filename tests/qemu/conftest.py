"""Fixtures for the QEMU tests: `qemu_binary` skips locally, fails in CI, when QEMU is missing."""

from __future__ import annotations

from tests.e2e.required import qemu_binary

__all__ = ["qemu_binary"]
