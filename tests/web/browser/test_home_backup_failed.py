"""The home screen at 390x844 pins a guest whose last backup failed, in Proxmox's words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pvesim import PveSim
from tests.web.browser.conftest import VIEWPORTS
from tests.web.browser.test_dashboard import log_in, shot, token_login

REASON = "got timeout while waiting for the guest agent"


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(**VIEWPORTS["phone"])
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def test_the_home_screen_pins_a_failed_last_backup(phone, server, sim: PveSim, artifacts: Path):
    sim.cluster.storage.vzdump_errors[103] = REASON
    upid = sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103", "storage": "local"}).data
    assert sim.wait_task("pve1", upid)["exitstatus"] == "job errors"
    log_in(phone, server, *token_login(sim))  # lands on the home screen
    # The backup scan starts after the first view went out; the page updates itself.
    pinned = phone.locator('#problems li:has(a[href="/t/api/vm/pve1/103"])')
    pinned.wait_for(timeout=30_000)
    assert f"Last backup failed: {REASON}" in pinned.inner_text()
    # One script reads the row (atomic: a live update may replace the list between two reads).
    height, size = phone.evaluate(
        """() => {
            const a = document.querySelector('#problems a.g[href="/t/api/vm/pve1/103"]');
            return [a.getBoundingClientRect().height, parseFloat(getComputedStyle(a).fontSize)];
        }"""
    )
    assert height >= 44
    assert size >= 16
    shot(phone, artifacts, "home-backup-failed", "phone")
    pinned.locator("a.g").click()
    phone.wait_for_url(f"{server}/t/api/vm/pve1/103")


def test_the_container_page_links_console_snapshots_and_backups(
    phone, server, sim: PveSim, artifacts: Path
):
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/ct/pve1/150")
    phone.wait_for_selector("#ct-console-link")
    sizes = phone.evaluate(
        """() => ['#ct-console-link', '#ct-snapshots', '#ct-backups'].map(s => {
            const a = document.querySelector(s);
            return [s, a.getBoundingClientRect().height, parseFloat(getComputedStyle(a).fontSize)];
        })"""
    )
    assert [s for s, h, f in sizes if h < 44 or f < 16] == [], sizes
    shot(phone, artifacts, "ct-links", "phone")
    phone.click("#ct-backups")
    phone.wait_for_url(f"{server}/t/api/ct/pve1/150/backup")
    phone.goto(f"{server}/t/api/ct/pve1/151")
    why = phone.locator("#ct-console-why")
    why.wait_for()
    assert "start it first" in why.inner_text()
    assert phone.locator("#ct-console-link").count() == 0
