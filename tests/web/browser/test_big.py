"""The home screen of a 2,000-guest cluster (1,400 VMs and 600 containers on 16 nodes) in
Chromium at 390x844: every guest listed, and searchable in the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pvesim import PveSim, generate_cluster
from tests.web.browser.test_daily import PHONE
from tests.web.browser.test_dashboard import log_in, no_horizontal_scroll, token_login


@pytest.fixture(scope="module")
def sim() -> Iterator[PveSim]:
    with PveSim(generate_cluster(nodes=16, vms=1400, cts=600)) as s:
        yield s
        s.assert_conformant()


def test_the_inventory_lists_every_guest_and_is_searchable(
    browser: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        log_in(page, server, *token_login(sim))
        guests = {
            (("vm" if kind == "qemu" else "ct"), node.name, vmid)
            for node in sim.cluster.nodes.values()
            for kind, vmid in [("qemu", v) for v in node.vms] + [("lxc", c) for c in node.cts]
        }
        assert len(guests) == 2000
        hrefs = page.eval_on_selector_all(
            "#main section.target li[data-s] a.g", "els => els.map(e => e.getAttribute('href'))"
        )
        listed = {tuple(h.split("/")[3:6]) for h in hrefs}
        assert {(k, n, str(v)) for k, n, v in guests} == listed
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / "daily-home-2000-phone.png"))
        vmid = sorted(v for _k, _n, v in guests)[1234]
        page.fill("#q", str(vmid))
        visible = page.locator("section.target li[data-s]:visible").all_inner_texts()
        assert visible
        assert all(str(vmid) in v for v in visible)
        assert len(visible) < 20
        page.screenshot(path=str(artifacts / "daily-home-2000-search-phone.png"))
    finally:
        context.close()
