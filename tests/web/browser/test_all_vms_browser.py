"""The visitor's "judge every VM as if it wanted nesting" toggle in Chromium: one tap, a button a
thumb can hit, and VM 103 (meant for nothing) turns from "not nested" to "not ready"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pvesim import PveSim
from tests.web.browser.test_dashboard import log_in, shot, token_login


def test_the_all_vms_toggle(page: Any, server: str, sim: PveSim, artifacts: Path, viewport: str):
    log_in(page, server, *token_login(sim))
    page.goto(f"{server}/t/api/vm/pve1/103")
    page.wait_for_selector("h1")
    assert "First broken link" not in page.locator("main").inner_text()
    # The tree of layers: `/`, or `/tree` once the home screen is the inventory (i19web).
    tree = "/tree" if page.request.get(f"{server}/tree").status == 200 else "/"
    page.goto(f"{server}{tree}")
    button = page.locator("form.all-vms button")
    box = button.bounding_box()
    assert box is not None
    assert box["height"] >= 44, box
    assert box["width"] >= 44, box
    shot(page, artifacts, "all-vms-off", viewport)
    button.click()
    page.wait_for_selector("text=Judging every VM as if it wanted nesting.")
    page.wait_for_selector("text=103 default-cpu")
    assert page.locator("li.vm", has_text="103 default-cpu").locator(".badge").inner_text() == (
        "not ready"
    )
    shot(page, artifacts, "all-vms-on", viewport)
    page.goto(f"{server}/")
    page.wait_for_selector("form.all-vms button")
    shot(page, artifacts, "all-vms-home", viewport)
    page.goto(f"{server}/t/api/vm/pve1/103")
    assert "First broken link: config" in page.locator("main").inner_text()
    page.goto(f"{server}{tree}")
    page.locator("form.all-vms button").click()  # off again for the module's other tests
    page.wait_for_selector("text=Judging only the VMs meant to nest")
