"""The view: the tree with readiness and the first broken link, findings with fixes, VM details,
served from the background cache; live updates through /changes."""

from __future__ import annotations

import time

from nestctl.web.settings import ServeSettings, TargetSpec
from tests.pvesim import PveSim
from tests.web.conftest import ALICE, LAB, csrf_of, login, token, wait_for


def test_overview_shows_the_tree_with_broken_links_and_fixes(client, sim):
    login(client, *token(sim))
    html = wait_for(client, "/tree", "epyc-nested")
    assert "pve1" in html
    assert "pve2" in html
    assert "201 epyc-nested" in html
    # VM 201: its first broken link is its config, with Proxmox's refusal and the fix.
    part = html[html.index("201 epyc-nested") :]
    part = part[: part.index("</li>")]
    assert "not ready" in part
    assert "First broken link: config" in part
    assert "qm set 201 --cpu host" in part


def test_a_node_that_is_down_stays_in_the_tree_as_unknown(client, sim):
    login(client, *token(sim))
    html = wait_for(client, "/tree", "epyc-nested")
    part = html[html.index('href="/t/lab/node/pve3"') :]
    assert "unknown" in part[:300]


def test_vm_page_shows_findings_pending_history_and_agent(client, sim):
    login(client, *token(sim))
    wait_for(client, "/tree", "epyc-nested")
    html = wait_for(client, "/t/lab/vm/pve1/102", "Pending changes")
    assert "win11" in html
    assert "qm reboot 102" in html  # the finding's fix
    assert "Restart to apply pending changes" in html
    assert "/t/lab/vm/pve1/102/power/reboot?why=pending" in html
    assert "Guest agent" in html
    assert "net0 has firewall=0" in html  # the firewall summary names the NIC
    assert "<svg" in html  # the rrddata history


def test_vm_page_of_a_running_vm_has_a_history_graph(client, sim):
    login(client, *token(sim))
    vm = sim.cluster.vm(101)
    assert vm.status == "running"
    html = wait_for(client, "/t/lab/vm/pve1/101", "<polyline")
    assert "<polyline" in html
    assert "responding" in html  # the agent answers a ping


def test_pages_render_while_the_cache_is_still_empty(client, sim):
    sim.fail(kind="delay", seconds=1.0, path="/pending")
    login(client, *token(sim))
    start = time.perf_counter()
    html = client.get("/tree").text
    assert time.perf_counter() - start < 0.5  # never waits for the scan
    assert "Reading lab" in html
    sim.clear_faults()


def test_a_visitor_sees_what_their_identity_may_see(client, sim):
    sim.add_user("carol@pve", "carol-password", privs={"/vms/101": ["PVEAuditor"]})
    login(client, "carol@pve", "carol-password")
    html = wait_for(client, "/tree", "L0")
    assert "epyc-nested" not in html  # VM 201 is outside carol's permissions


def test_changes_long_poll_answers_when_the_view_is_refreshed(client, sim):
    login(client, *token(sim))
    wait_for(client, "/tree", "epyc-nested")
    got = client.get("/changes?key=target/lab&v=0", headers={"accept": "application/json"})
    assert got.json()["v"] >= 1
    assert client.get("/changes?key=other/x").status_code == 400


def test_auditor_sees_the_pages_but_may_not_act(client, sim):
    login(client, *ALICE)
    html = wait_for(client, "/tree", "epyc-nested")
    assert "alice@pve" in html


def test_an_inner_proxmox_is_shown_under_the_vm_that_runs_it(make_client, sim):
    with PveSim(LAB.parent / "pve7") as inner:
        settings = ServeSettings(
            [
                TargetSpec("lab", sim.url, sim.fingerprint),
                TargetSpec("nested", inner.url, inner.fingerprint, parent="lab/101"),
            ]
        )
        client = make_client(settings)
        login(client, *token(sim))
        html = client.get("/").text
        assert "Log in to nested" in html  # a second target, its own login
        page = client.get("/login?target=nested")
        userid, _, secret = inner.root_token.partition("=")
        r = client.post(
            "/login",
            data={
                "csrf": csrf_of(page.text),
                "username": userid,
                "password": secret,
                "target": "nested",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        html = wait_for(client, "/tree", "read in", timeout=15)
        html = wait_for(client, "/tree", 'class="inner"', timeout=15)
        vm101 = html[html.index("101 pve-inner") :]
        inner_block = vm101[vm101.index('class="inner"') :]
        # The inner target's node sits inside VM 101's entry, one level down.
        assert 'href="/t/nested/node/pve7"' in inner_block
        assert "L1 · nested" in inner_block
        assert "<h2>nested" not in html  # and is no longer drawn at the top
        assert html.count("root@pam!pvesim") >= 2
        inner.assert_conformant()
