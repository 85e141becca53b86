"""Fixtures for the QEMU tests: `qemu_binary` skips locally, fails in CI, when QEMU is missing.

These tests give every cache an explicit path (tmp_path); the e2e tests, which run the CLI, get
`_private_oracle_cache` instead.
"""

from __future__ import annotations

from tests.e2e.required import qemu_binary

__all__ = ["qemu_binary"]
