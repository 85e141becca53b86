"""Real-browser tests: Debian's Chromium driven by Playwright against `nestctl serve` (a real
subprocess on loopback) backed by the Proxmox API simulator.

Never `playwright install` (it downloads a browser): the tests launch /usr/bin/chromium. Where
Chromium or Playwright is missing they skip, except in CI (CI=true) or with
NESTCTL_BROWSER_REQUIRED=1, where they fail. Screenshots land in test-artifacts/web/ (or
$NESTCTL_ARTIFACTS), which git ignores.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pvesim import ROOT_PASSWORD, PveSim
from tests.skips import give_up
from tests.web.conftest import ALICE, LAB
from tests.web.serve_process import REPO, ServeFailedError, start_serve, stop_serve

CHROMIUM = os.environ.get("NESTCTL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI; the sandbox refuses root
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
    "desktop": {"viewport": {"width": 1366, "height": 900}},
}


def _required() -> bool:
    return os.environ.get("CI") == "true" or bool(os.environ.get("NESTCTL_BROWSER_REQUIRED"))


def _give_up(why: str) -> None:
    if _required():
        pytest.fail(f"browser tests cannot run: {why} (scripts/install-debian-deps installs it)")
    give_up(why)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    where = Path(os.environ.get("NESTCTL_ARTIFACTS", REPO / "test-artifacts")) / "web"
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _give_up(f"no Chromium at {CHROMIUM} (apt install chromium)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        _give_up("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[PveSim]:
    with PveSim(LAB) as s:
        s.cluster.task_seconds = 0.5
        s.add_user(ALICE[0], ALICE[1], privs=["PVEAuditor"])
        yield s
        s.assert_conformant()


@pytest.fixture(scope="module")
def server(sim: PveSim, artifacts: Path) -> Iterator[str]:
    """`nestctl serve` as its own process on a loopback port, pinned to the simulator."""
    try:
        proc, url = start_serve(sim, artifacts / "serve.log")
    except ServeFailedError as exc:
        pytest.fail(str(exc))
    yield url
    stop_serve(proc)


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Any, viewport: str) -> Iterator[Any]:
    context = browser.new_context(**VIEWPORTS[viewport])
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


__all__ = ["ROOT_PASSWORD"]
