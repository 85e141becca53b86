"""The daily driver in Chromium at 390x844: actions that fit the state, a container fixed by a
button, firewall forms that keep what was typed, and every tap target at least 44x44 CSS px."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.pvesim import ROOT_PASSWORD, PveSim
from tests.web.browser.test_dashboard import log_in, no_horizontal_scroll, token_login

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}

#: Every visible link, button, select, text field and check box: its box, when smaller than
#: 44x44 CSS px (WCAG 2.5.5). A check box counts by its label (the label is the tap target).
SMALL_TARGETS = """() => {
  const out = [];
  const all = 'a[href], button, select, input:not([type=hidden]), summary';
  for (const el of document.querySelectorAll(all)) {
    const label = el.type === 'checkbox' && el.closest('label');
    const box = label || el;
    const r = box.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || style.visibility === 'hidden') continue;
    if (r.width < 44 || r.height < 44) {
      const text = (el.innerText || el.name || el.value || '').trim().slice(0, 40);
      const size = `${r.width.toFixed(0)}x${r.height.toFixed(0)}`;
      out.push(`${el.tagName.toLowerCase()} "${text}" ${size}`);
    }
  }
  return out;
}"""


@pytest.fixture
def phone(browser: Any) -> Any:
    context = browser.new_context(**PHONE)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def snap(page: Any, artifacts: Path, name: str) -> None:
    no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts / f"daily-{name}-phone.png"), full_page=True)


def small_targets(page: Any) -> list[str]:
    found: list[str] = page.evaluate(SMALL_TARGETS)
    return found


def test_every_tap_target_is_at_least_44_px(
    phone: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    log_in(phone, server, *token_login(sim))
    phone.wait_for_selector("text=nested analysis running", state="detached", timeout=30_000)
    pages = {
        "home": "/",
        "tree": "/tree",
        "node": "/t/api/node/pve1",
        "vm": "/t/api/vm/pve1/101",
        "vm-stopped": "/t/api/vm/pve1/103",
        "vm-locked": "/t/api/vm/pve1/104",
        "ct": "/t/api/ct/pve2/250",
        "firewall": "/t/api/vm/pve1/101/firewall",
        "ct-firewall": "/t/api/ct/pve1/150/firewall",
        "enable": "/t/api/vm/pve1/103/enable?profile=linux-kvm",
        "confirm": "/t/api/vm/pve1/101/power/reboot",
        "tasks": "/tasks",
        "login": "/login",
        "not-found": "/t/api/vm/pve1/999",
    }
    problems = {}
    for name, url in pages.items():
        phone.goto(server + url)
        phone.wait_for_load_state("load")
        snap(phone, artifacts, name)
        small = small_targets(phone)
        if small:
            problems[url] = small
    assert not problems, problems


def test_a_running_vm_offers_no_start_and_a_locked_one_explains(
    phone: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve1/101")
    buttons = phone.locator("#power a").all_inner_texts()
    assert "Start" not in buttons
    assert "Shutdown" in buttons
    phone.goto(f"{server}/t/api/vm/pve1/104")
    assert "a backup is running" in phone.locator("#offer-why").inner_text()
    assert phone.locator("#power").count() == 0
    snap(phone, artifacts, "vm-locked-explained")


def test_the_home_screen_is_searchable_in_the_page(
    phone: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    log_in(phone, server, *token_login(sim))
    requests: list[str] = []
    phone.on("request", lambda r: requests.append(r.url))
    phone.fill("#q", "docker")
    shown = phone.locator("li[data-s]:visible").all_inner_texts()
    assert shown
    assert all("docker" in s for s in shown)
    phone.fill("#q", "")
    phone.click('button[data-filter="lxc"]')
    kinds = phone.locator("li[data-s]:visible .id").all_inner_texts()
    assert kinds
    assert all(k.startswith("CT") for k in kinds)
    assert not [u for u in requests if "?q=" in u or "?f=" in u]  # no round trip
    snap(phone, artifacts, "home-filtered")


def test_a_container_docker_nesting_fixed_through_a_button(
    phone: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    ct = sim.cluster.nodes["pve2"].cts[250]
    log_in(phone, server, "root@pam", ROOT_PASSWORD)
    phone.goto(f"{server}/t/api/ct/pve2/250")
    phone.wait_for_selector("#ct-fix")
    snap(phone, artifacts, "ct-broken")
    phone.click("#ct-fix")
    phone.wait_for_selector("#confirm")
    snap(phone, artifacts, "ct-fix-plan")
    phone.click("#confirm")
    phone.wait_for_selector("#applied")
    snap(phone, artifacts, "ct-fixed")
    features = ct.conf.pending.get("features") or ct.conf.main.get("features", "")
    assert "nesting=1" in features
    assert "keyctl=1" in features


def test_a_refused_firewall_form_keeps_its_values(
    phone: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    before = len(sim.cluster.vm(101).firewall_rules)
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/pve1/101/firewall")
    form = phone.locator("#add-rule")
    form.locator('select[name="action"]').select_option("DROP")
    form.locator('input[name="dport"]').fill("8443")
    form.locator('input[name="source"]').fill("192.0.2.0/24")
    form.locator('input[name="comment"]').fill("typed on a phone")
    form.locator('button:has-text("Add rule")').click()
    phone.wait_for_selector("#err-proto")
    form = phone.locator("#add-rule")
    assert form.locator('select[name="action"]').input_value() == "DROP"
    assert form.locator('input[name="dport"]').input_value() == "8443"
    assert form.locator('input[name="source"]').input_value() == "192.0.2.0/24"
    assert form.locator('input[name="comment"]').input_value() == "typed on a phone"
    assert "a port needs a protocol" in phone.locator("#err-proto").inner_text()
    assert len(sim.cluster.vm(101).firewall_rules) == before
    snap(phone, artifacts, "firewall-refused")
    assert re.search(r"HTTP \d{3}", phone.content()) is None
