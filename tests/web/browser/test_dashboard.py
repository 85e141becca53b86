"""The dashboard in Debian's Chromium, at a phone viewport (390x844) and a desktop one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pvesim import ROOT_PASSWORD, PveSim
from tests.web.conftest import ALICE


def log_in(page: Any, server: str, username: str, password: str) -> None:
    page.goto(f"{server}/")
    assert page.url.startswith(f"{server}/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button:has-text("Log in")')
    page.wait_for_url(f"{server}/")


def no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def shot(page: Any, artifacts: Path, name: str, viewport: str) -> None:
    no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts / f"{name}-{viewport}.png"), full_page=True)


def token_login(sim: PveSim) -> tuple[str, str]:
    userid, _, secret = sim.root_token.partition("=")
    return userid, secret


def test_log_in_with_a_token_and_find_a_vm_whose_nesting_is_broken(
    page, server, sim, artifacts, viewport
):
    log_in(page, server, *token_login(sim))
    shot(page, artifacts, "login-done", viewport)
    page.goto(f"{server}/tree")
    page.wait_for_selector("text=201 epyc-nested")  # live update: no reload by the test
    shot(page, artifacts, "overview", viewport)
    vm = page.locator("li.vm", has_text="201 epyc-nested")
    assert "not ready" in vm.inner_text()
    assert "First broken link: config" in vm.inner_text()
    vm.locator("a.vmname").click()
    page.wait_for_url(f"{server}/t/api/vm/pve2/201")
    page.wait_for_selector("text=Findings")
    fixes = page.locator(".finding .fix").all_inner_texts()
    assert any("qm set 201 --cpu host" in f for f in fixes)
    shot(page, artifacts, "vm-broken", viewport)


def test_log_in_with_user_and_password(page, server, artifacts, viewport):
    log_in(page, server, "root@pam", ROOT_PASSWORD)
    assert "root@pam" in page.locator("header").inner_text()
    page.click('button:has-text("Log out")')
    page.wait_for_url(f"{server}/login")


def test_wrong_password_is_refused(page, server, artifacts, viewport):
    page.goto(f"{server}/login")
    page.fill('input[name="username"]', "nobody@pve")
    page.fill('input[name="password"]', "wrong")
    page.click('button:has-text("Log in")')
    assert "login refused" in page.locator("[role=alert]").inner_text()
    shot(page, artifacts, "login-refused", viewport)


def test_start_a_stopped_vm_and_see_the_task_end(page, server, sim, artifacts, viewport):
    vmid = 103 if viewport == "desktop" else 202
    node = "pve1" if vmid == 103 else "pve2"
    sim.cluster.vm(vmid).status = "stopped"
    log_in(page, server, *token_login(sim))
    page.goto(f"{server}/t/api/vm/{node}/{vmid}")
    page.click('a.button:has-text("Start")')
    page.wait_for_selector("text=Start VM")
    shot(page, artifacts, "confirm-start", viewport)
    page.click("#confirm")
    page.wait_for_selector("#task-status.ok", timeout=20_000)  # followed by the page's script
    assert page.locator("#task-status").inner_text() == "Ended: OK"
    assert "TASK OK" in page.locator("#task-log").inner_text()
    shot(page, artifacts, "task-ended", viewport)
    assert sim.cluster.vm(vmid).status == "running"


def test_add_then_delete_a_firewall_rule(page, server, sim, artifacts, viewport):
    port = "4000" if viewport == "desktop" else "4001"
    rules = sim.cluster.vm(101).firewall_rules
    log_in(page, server, *token_login(sim))
    page.goto(f"{server}/t/api/vm/pve1/101/firewall")
    form = page.locator("#add-rule")
    form.locator('select[name="proto"]').select_option("tcp")
    form.locator('input[name="dport"]').fill(port)
    form.locator('input[name="comment"]').fill("from the browser")
    form.locator('button:has-text("Add rule")').click()
    page.wait_for_selector(f"text=dport={port}")
    assert any(r.get("dport") == port for r in rules)
    shot(page, artifacts, "firewall", viewport)
    rule = page.locator("li.rule", has_text=f"dport={port}")
    rule.locator('a:has-text("Delete")').click()
    page.click("#confirm")
    page.wait_for_url(f"{server}/t/api/vm/pve1/101/firewall")
    assert f"dport={port}" not in page.content()
    assert not any(r.get("dport") == port for r in rules)


def test_an_action_without_the_privilege_shows_the_403(page, server, sim, artifacts, viewport):
    log_in(page, server, *ALICE)
    page.goto(f"{server}/t/api/vm/pve1/101/power/stop")
    page.click("#confirm")
    text = page.locator("#failure").inner_text()
    assert "Permission check failed" in text
    assert "VM.PowerMgmt" in text
    shot(page, artifacts, "refused-403", viewport)


def test_phone_pages_do_not_scroll_sideways(page, server, sim, artifacts, viewport):
    log_in(page, server, *token_login(sim))
    page.wait_for_selector("text=epyc-nested")
    for url in (
        "/",
        "/tree",
        "/t/api/node/pve1",
        "/t/api/vm/pve1/102",
        "/t/api/vm/pve1/102/firewall",
        "/t/api/vm/pve1/103/enable?profile=linux-kvm",
        "/t/api/node/pve1/power/reboot",
    ):
        page.goto(server + url)
        page.wait_for_load_state("load")
        name = url.strip("/").replace("/", "_").split("?")[0] or "overview"
        shot(page, artifacts, f"page-{name}", viewport)


def test_the_narrowest_phone_does_not_scroll_sideways(browser, server, sim, artifacts):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        log_in(page, server, *token_login(sim))
        page.wait_for_selector("text=epyc-nested")
        for url in ("/", "/tree", "/t/api/vm/pve2/201", "/t/api/vm/pve1/101/firewall"):
            page.goto(server + url)
            page.wait_for_load_state("load")
            no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / "firewall-360.png"), full_page=True)
    finally:
        context.close()
