"""Skips, in one place: the few that are out of scope by design, and the rule for all others.

On a developer's machine a test may skip when a tool, a file or root is missing, with the reason.
In CI (`CI=true`, which `scripts/test` runs as root after `scripts/install-debian-deps`) a skip
means the CI set-up is broken, so `tests/conftest.py` turns every skip into a failure naming what
to install, except those listed here, which no machine can run:
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: Reason prefix -> why the case stays out of scope (it is reported, never counted as a pass).
BY_DESIGN: dict[str, str] = {
    # Proxmox's own cfg2cmd cases whose expected error is about devices nestctl does not model
    # (tests/vm/test_conformance.py OUT_OF_SCOPE): predicting them would mean modelling USB
    # controllers, storages and drives, which have nothing to do with nesting.
    "USB controller checks are out of scope": "USB controllers are not modelled",
    "storage checks are out of scope": "storages are not modelled",
    "drive checks are out of scope": "drives are not modelled",
}


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def by_design(reason: str) -> bool:
    """Whether a skip with this reason is one of the out-of-scope cases above."""
    return reason.removeprefix("Skipped: ").startswith(tuple(BY_DESIGN))


def give_up(reason: str) -> NoReturn:
    """Skip here; fail in CI, where the reason names what scripts/install-debian-deps lacks."""
    if in_ci() or os.environ.get("NESTCTL_E2E_REQUIRED"):
        pytest.fail(f"{reason} (CI must not skip this: install it in scripts/install-debian-deps)")
    pytest.skip(reason)
