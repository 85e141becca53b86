"""Snapshots and backups in Debian's Chromium at 390x844: take, roll back, back up, see failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pvesim import PveSim
from tests.web.browser.conftest import VIEWPORTS
from tests.web.browser.test_dashboard import log_in, shot, token_login

TAP = 44  # px: the smallest tap target the dashboard allows


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(**VIEWPORTS["phone"])
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def tap_targets_and_text(page: Any) -> None:
    """Every button, link-button, input and select in the main area: >= 44 px high, 16 px text."""
    small = page.evaluate(
        """() => [...document.querySelectorAll(
            'main button, main .button, main input:not([type=hidden]):not([type=checkbox]),'
            + ' main select, main li > a')]
        .map(e => [e.outerHTML.slice(0, 60), e.getBoundingClientRect().height,
                   parseFloat(getComputedStyle(e).fontSize)])
        .filter(([_, h, f]) => h < 44 || f < 16)"""
    )
    assert small == [], small


def test_take_a_snapshot_and_see_it_in_the_tree(phone, server, sim: PveSim, artifacts: Path):
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve1/101")
    phone.click('a.button:has-text("Snapshots")')
    phone.wait_for_url(f"{server}/t/api/vm/pve1/101/snapshots")
    tap_targets_and_text(phone)
    phone.fill('input[name="name"]', "before-nesting")
    phone.fill('input[name="description"]', "as it was on Monday")
    phone.check('input[name="vmstate"]')
    shot(phone, artifacts, "snapshot-new", "phone")
    phone.click("#take-snapshot")
    phone.wait_for_selector("#task-status.ok", timeout=20_000)
    assert phone.locator("h1").inner_text() == "Snapshot VM 101"
    shot(phone, artifacts, "snapshot-task", "phone")
    phone.click('a.button:has-text("Back")')
    phone.wait_for_selector("#snap-before-nesting")
    item = phone.locator("#snap-before-nesting").inner_text()
    assert "you are here" in item
    assert "with RAM" in item
    assert "as it was on Monday" in item
    shot(phone, artifacts, "snapshot-tree", "phone")


def test_roll_back_with_the_typed_confirmation(phone, server, sim: PveSim, artifacts: Path):
    upid = sim.request("POST", "/nodes/pve1/qemu/103/snapshot", {"snapname": "known-good"}).data
    sim.wait_task("pve1", upid)
    sim.cluster.edit_config(103, cores="16")
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve1/103/snapshots")
    phone.locator("#snap-known-good").locator('a:has-text("Roll back")').click()
    phone.wait_for_selector("text=Roll VM 103 back to known-good?")
    tap_targets_and_text(phone)
    phone.fill('input[name="confirm_name"]', "known-goo")
    phone.click("#confirm")
    assert (
        "Type the snapshot's name (known-good) to confirm."
        in phone.locator("[role=alert]").inner_text()
    )
    shot(phone, artifacts, "rollback-refused", "phone")
    assert sim.cluster.vm(103).conf.main["cores"] == "16"
    phone.fill('input[name="confirm_name"]', "known-good")
    phone.click("#confirm")
    phone.wait_for_selector("#task-status.ok", timeout=20_000)
    assert phone.locator("h1").inner_text() == "Roll back VM 103"
    shot(phone, artifacts, "rollback-task", "phone")
    assert sim.cluster.vm(103).conf.main.get("cores") != "16"


def test_back_up_now_and_see_the_task_end(phone, server, sim: PveSim, artifacts: Path):
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve1/103/backup")
    phone.wait_for_selector("#backup-now")
    tap_targets_and_text(phone)
    phone.select_option('select[name="mode"]', "suspend")
    phone.select_option('select[name="compress"]', "gzip")
    shot(phone, artifacts, "backup-panel", "phone")
    phone.click("#backup-start")
    phone.wait_for_selector("#task-status.ok", timeout=20_000)
    assert phone.locator("h1").inner_text() == "Back up VM 103"
    assert "Finished Backup of VM 103" in phone.locator("#task-log").inner_text()
    shot(phone, artifacts, "backup-task", "phone")
    phone.goto(f"{server}/t/api/vm/pve1/103/backup")
    assert "succeeded" in phone.locator("#backup-task").inner_text()
    assert ".vma.gz 103" in phone.locator("#restore-command").inner_text()


def test_a_failed_last_backup_shows_the_error(phone, server, sim: PveSim, artifacts: Path):
    sim.cluster.storage.vzdump_errors[104] = "got timeout while waiting for the guest agent"
    sim.cluster.edit_config(104, lock="")  # the fixture's 104 is locked (backup): free it
    del sim.cluster.vm(104).conf.main["lock"]
    upid = sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "104", "storage": "local"}).data
    assert sim.wait_task("pve1", upid)["exitstatus"] == "job errors"
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve1/104/backup")
    task = phone.locator("#backup-task").inner_text()
    assert "failed: got timeout while waiting for the guest agent" in task
    assert "its last backup failed" in phone.locator("#backup-findings").inner_text()
    shot(phone, artifacts, "backup-failed-guest", "phone")
    for _ in range(50):  # the VM page reads backups in the background: the first view may wait
        phone.goto(f"{server}/t/api/vm/pve1/104")
        if phone.locator("#vm-backup").count():
            break
        phone.wait_for_timeout(200)
    line = phone.locator("#vm-backup").inner_text()
    assert "Last backup failed: got timeout while waiting for the guest agent" in line
    shot(phone, artifacts, "backup-failed-vm-page", "phone")
    phone.goto(f"{server}/t/api/backups")
    row = phone.locator("#bk-qemu-104").inner_text()
    assert "last backup failed" in row
    assert "got timeout while waiting for the guest agent" in row
    tap_targets_and_text(phone)
    shot(phone, artifacts, "backups-page", "phone")


def test_make_nested_ready_takes_a_snapshot_first_and_offers_the_way_back(
    phone, server, sim: PveSim, artifacts: Path
):
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve2/202/enable?profile=linux-kvm")
    first = phone.locator("#snapshot-first").inner_text()
    assert "nestctl-before-linux-kvm-" in first
    shot(phone, artifacts, "enable-with-snapshot", "phone")
    phone.click("#confirm")
    phone.wait_for_selector("#rollback-safety")
    assert "was taken first" in phone.locator("#safety").inner_text()
    tap_targets_and_text(phone)
    shot(phone, artifacts, "enable-done-rollback", "phone")
    assert any(n.startswith("nestctl-before-") for n in sim.cluster.vm(202).conf.sections)
    phone.click("#rollback-safety")
    phone.wait_for_selector("text=Roll VM 202 back to nestctl-before-linux-kvm-")
