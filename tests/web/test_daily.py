"""The daily driver: inventory, actions that fit the state, fixes as buttons, node and storage
health, task history, firewall forms that keep what was typed, plain errors, containers."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from nestctl.api.errors import ApiConnectionError, ApiParameterError, ApiPermissionError
from nestctl.web.errors import sentence
from nestctl.web.offers import valid_actions
from tests.pvesim import ROOT_PASSWORD, PveSim
from tests.web.conftest import ALICE, csrf_of, login, token, wait_for

FW = "/t/lab/vm/pve1/101/firewall"


# -- the one valid-actions function -----------------------------------------------------------


def test_valid_actions_follow_the_state() -> None:
    assert valid_actions("qemu", "running").actions == (
        "shutdown", "reboot", "stop", "suspend", "reset",
    )  # fmt: skip
    assert valid_actions("lxc", "running").actions == ("shutdown", "reboot", "stop", "suspend")
    assert valid_actions("qemu", "stopped").actions == ("start",)
    assert valid_actions("qemu", "running", qmpstatus="paused").actions == ("resume", "stop")
    locked = valid_actions("qemu", "stopped", lock="backup")
    assert locked.actions == ()
    assert locked.why is not None
    assert "a backup is running" in locked.why
    down = valid_actions("qemu", "running", node_online=False, node="pve3")
    assert down.actions == ()
    assert down.why == "its node pve3 is offline: Proxmox cannot reach it"
    assert valid_actions("qemu", "stopped", template=True).actions == ()
    assert valid_actions("qemu", "unknown").actions == ()


# -- errors as one sentence -------------------------------------------------------------------


def test_errors_are_one_plain_sentence_never_library_text() -> None:
    urllib3 = (
        "cannot reach https://pve1:8006: HTTPSConnectionPool(host='pve1', port=8006): Max "
        "retries exceeded with url: /api2/json/version (Caused by NewConnectionError(...))"
    )
    text = sentence(ApiConnectionError(urllib3, method="GET", path="/version"))
    assert "HTTPSConnectionPool" not in text
    assert "Max retries" not in text
    assert text.startswith("nestctl could not reach the Proxmox API")
    refused = ApiParameterError(
        "Parameter verification failed.",
        status=400,
        method="POST",
        path="/nodes/pve1/qemu/101/firewall/rules",
        errors={"action": "unknown action 'accept'"},
    )
    text = sentence(refused)
    assert "POST" not in text
    assert "HTTP 400" not in text
    assert "Action: unknown action 'accept'" in text
    denied = ApiPermissionError("Permission check failed (/vms/101, VM.PowerMgmt)", status=403)
    assert "your identity lacks VM.PowerMgmt" in sentence(denied)


def test_an_unreachable_api_at_login_is_one_sentence(make_client, sim: PveSim) -> None:
    from nestctl.web.settings import ServeSettings, TargetSpec  # noqa: PLC0415

    client = make_client(ServeSettings([TargetSpec("lab", "https://127.0.0.1:9", sim.fingerprint)]))
    r = login(client, *token(sim))
    assert r.status_code == 401
    assert "nestctl could not reach the Proxmox API" in r.text
    assert "HTTPSConnectionPool" not in r.text
    assert "Max retries" not in r.text


# -- logging in -----------------------------------------------------------------------------


def test_a_token_pasted_whole_in_the_user_field_logs_in(client: TestClient, sim: PveSim) -> None:
    r = login(client, sim.root_token, "")
    assert r.status_code == 303, r.text
    assert "root@pam!pvesim" in client.get("/").text


def test_a_refused_pasted_token_never_shows_its_secret(client: TestClient, sim: PveSim) -> None:
    userid, _, _secret = sim.root_token.partition("=")
    r = login(client, f"{userid}=wrong-secret-1234", "")
    assert r.status_code == 401
    assert "wrong-secret-1234" not in r.text


def test_targets_sharing_an_identity_log_in_once(make_client, sim: PveSim) -> None:
    from nestctl.web.settings import ServeSettings, TargetSpec  # noqa: PLC0415

    # Two targets of the same cluster (say, two of its nodes' addresses): one login.
    settings = ServeSettings(
        [TargetSpec("lab", sim.url, sim.fingerprint), TargetSpec("again", sim.url, sim.fingerprint)]
    )
    client = make_client(settings)
    assert login(client, *token(sim)).status_code == 303
    page = client.get("/").text
    assert "Log in to again" not in page
    assert 'id="t-again"' in page


# -- the inventory ----------------------------------------------------------------------------


def test_the_home_screen_lists_vms_and_containers_with_problems_on_top(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    html = client.get("/").text
    pinned = html[
        html.index('id="problems"') : html.index("</section>", html.index('id="problems"'))
    ]
    assert "locked (backup)" in pinned  # VM 104 and CT 152
    assert "/t/lab/ct/pve1/152" in pinned
    assert "its node is offline" in pinned  # VM 301 on pve3
    assert "/t/lab/vm/pve1/101" not in pinned  # healthy: listed, not pinned
    for kind, node, vmid in (("vm", "pve1", 101), ("ct", "pve1", 150), ("ct", "pve2", 251)):
        assert f'href="/t/lab/{kind}/{node}/{vmid}"' in html
    # The nested badge comes with the analysis, only where nesting is wanted.
    html = wait_for(client, "/", "badge v-not-ready")
    row = re.search(r'<li data-s="250 [^"]*".*?</li>', html, re.S)
    assert row
    assert "v-not-ready" in row.group(0)  # CT 250 wants Docker and cannot
    plain = re.search(r'<li data-s="151 [^"]*".*?</li>', html, re.S)
    assert plain
    assert "badge" not in plain.group(0)  # CT 151 does not want nesting: no badge


def test_search_and_filters_work_without_script(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    html = client.get("/?q=docker").text
    shown = re.findall(r'<li data-s="([^"]*)" data-f="[^"]*">', html)
    assert shown
    assert all("docker" in s for s in shown)
    html = client.get("/?f=lxc").text
    shown = re.findall(r'<li data-s="[^"]*" data-f="([^"]*)">', html)
    assert shown
    assert all("lxc" in f.split() for f in shown)


# -- actions that fit the state -------------------------------------------------------------


def test_a_running_vm_offers_no_start_and_a_stopped_one_only_start(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    running = client.get("/t/lab/vm/pve1/101").text
    assert "/power/shutdown" in running
    assert "/power/start" not in running
    stopped = client.get("/t/lab/vm/pve1/103").text
    assert "/power/start" in stopped
    for action in ("shutdown", "reboot", "stop", "reset", "suspend", "resume"):
        assert f"/power/{action}" not in stopped


def test_a_vm_on_an_offline_node_says_why(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    html = client.get("/t/lab/vm/pve3/301").text
    assert "its node pve3 is offline" in html
    assert "/power/" not in html


def test_an_unknown_vmid_is_a_404(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    for url in (
        "/t/lab/vm/pve1/999",
        "/t/lab/vm/pve2/101",  # exists, but not on that node
        "/t/lab/vm/pve1/999/power/start",
        "/t/lab/ct/pve1/999",
        "/t/lab/node/nope",
    ):
        assert client.get(url).status_code == 404, url


def test_a_finding_fix_is_a_button_and_a_stopped_vm_is_offered_start(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    html = wait_for(client, "/t/lab/vm/pve1/103", "Make nested-ready</a>")
    assert "/t/lab/vm/pve1/103/enable?profile=linux-kvm" in html
    assert "nestctl vm enable 103 --profile linux-kvm" in html  # the CLI command stays shown
    page = client.get("/t/lab/vm/pve1/103/enable?profile=linux-kvm")
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', page.text)
    assert digest
    done = client.post(
        "/t/lab/vm/pve1/103/enable",
        data={"csrf": csrf_of(page.text), "profile": "linux-kvm", "digest": digest.group(1)},
    )
    assert done.status_code == 200
    assert "/power/start" in done.text  # stopped: it takes the change when it starts
    assert "/power/reboot" not in done.text
    assert "Restart to apply" not in done.text


def test_the_vm_firewall_fix_is_a_button(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    sim.cluster.vm(103).firewall_options["enable"] = 0
    html = wait_for(client, "/t/lab/vm/pve1/103", "Turn the VM firewall on")
    assert 'href="/t/lab/vm/pve1/103/firewall/turn-on"' in html
    page = client.get("/t/lab/vm/pve1/103/firewall/turn-on")
    assert "pvesh set /nodes/pve1/qemu/103/firewall/options --enable 1" in page.text
    r = client.post(
        "/t/lab/vm/pve1/103/firewall/turn-on",
        data={"csrf": csrf_of(page.text), "digest": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert str(sim.cluster.vm(103).firewall_options.get("enable")) == "1"


# -- firewall forms ---------------------------------------------------------------------------


def test_firewall_form_uses_pickers_from_the_schema_and_macros(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    html = client.get(FW).text
    form = html[html.index('id="add-rule"') :]
    assert '<select name="action">' in form
    assert '<select name="type">' in form
    assert '<select name="proto">' in form
    assert '<select name="macro">' in form
    assert '<option value="SSH"' in form  # from /cluster/firewall/macros
    assert '<input name="action"' not in form


def test_a_refused_firewall_form_keeps_what_was_typed(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    page = client.get(FW)
    before = len(sim.cluster.vm(101).firewall_rules)
    data = {
        "csrf": csrf_of(page.text),
        "type": "in",
        "action": "ACCEPT",
        "proto": "",  # a port needs a protocol (the schema's `requires`)
        "dport": "2222",
        "log": "info",
        "source": "10.1.2.0/24",
        "comment": "kept as typed",
        "enable": "1",
    }
    r = client.post(f"{FW}/rules", data=data)
    assert r.status_code == 400
    assert len(sim.cluster.vm(101).firewall_rules) == before
    assert 'value="2222"' in r.text
    assert 'value="10.1.2.0/24"' in r.text
    assert 'value="kept as typed"' in r.text
    assert "<option selected>info</option>" in r.text
    assert 'id="err-proto"' in r.text  # the field's error, beside the field
    assert "a port needs a protocol" in r.text
    assert "HTTP 400" not in r.text
    assert "POST /nodes" not in r.text


# -- node and storage health, tasks -----------------------------------------------------------


def test_node_health_and_storage_levels(client: TestClient, sim: PveSim) -> None:
    from tests.pvesim.storage import StorageDef  # noqa: PLC0415

    for name, used in (("fast", 85), ("full", 95)):
        sim.cluster.storage.define(StorageDef(name, "zfspool", {"images"}, total=100, used=used))
    login(client, *token(sim))
    html = wait_for(client, "/t/lab/node/pve1", 'id="storage"')
    assert re.search(r'data-level="ok"><strong>local-lvm</strong>', html)
    assert re.search(r'data-level="warning"><strong>fast</strong>', html)
    assert re.search(r'data-level="error"><strong>full</strong>', html)
    assert "pve-manager/" in html  # the PVE version
    assert "Load" in html
    assert "Root disk" in html
    for title in ("CPU: ", "Load: ", "Memory: ", "Root disk: "):
        assert f'class="now">{title}' in html  # graphs with their current value
    week = wait_for(client, "/t/lab/node/pve1?tf=week", "over the last week")
    assert "over the last week" in week


def test_task_history_marks_failed_tasks_and_opens_their_log(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    lock = sim.cluster.vm(104).conf.main.pop("lock")
    # Listed unlocked on the home screen (its own page is never read: its status would say locked).
    assert "/t/lab/vm/pve1/104" in client.get("/").text
    sim.cluster.vm(104).conf.main["lock"] = lock
    page = client.get("/t/lab/vm/pve1/104/power/start")
    r = client.post(
        "/t/lab/vm/pve1/104/power/start", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    client.get(r.headers["location"] + "/wait")
    html = client.get("/tasks").text
    assert "failed: VM is locked (backup)" in html
    link = re.search(r'<li class="failed-task"><a href="([^"]+)"', html)
    assert link
    log = client.get(link.group(1)).text
    assert "VM is locked (backup)" in log
    assert "failed-task" not in client.get("/tasks?failed=1&node=pve2").text


# -- containers --------------------------------------------------------------------------------


def test_container_docker_fixed_through_a_button(client: TestClient, sim: PveSim) -> None:
    ct = sim.cluster.nodes["pve2"].cts[250]
    assert "nesting=1" not in ct.conf.main.get("features", "")
    login(client, "root@pam", ROOT_PASSWORD)  # keyctl: only root@pam with a password may
    html = wait_for(client, "/t/lab/ct/pve2/250", "Allow Docker")
    assert "pct set 250 --features keyctl=1,nesting=1" in html
    page = client.get("/t/lab/ct/pve2/250/fix")
    assert page.status_code == 200
    r = client.post(
        "/t/lab/ct/pve2/250/fix",
        data={
            "csrf": csrf_of(page.text),
            "digest": re.search(r'name="digest" value="([^"]+)"', page.text).group(1),
        },  # type: ignore[union-attr]
    )
    assert r.status_code == 200, r.text
    features = ct.conf.pending.get("features") or ct.conf.main.get("features", "")
    assert "nesting=1" in features
    assert "keyctl=1" in features
    assert "/power/reboot" in r.text  # running: the change waits for a restart


def test_a_token_cannot_apply_a_root_only_container_fix(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    page = client.get("/t/lab/ct/pve2/250/fix").text
    assert 'id="blocked"' in page
    assert 'id="confirm"' not in page


def test_container_power_fits_its_state(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    running = client.get("/t/lab/ct/pve1/150").text
    assert "/power/shutdown" in running
    assert "/power/start" not in running
    locked = client.get("/t/lab/ct/pve1/152").text
    assert "a backup is running" in locked
    assert "/power/" not in locked
    assert client.get("/t/lab/ct/pve1/150/power/start").status_code == 409


def test_an_auditor_sees_no_change_and_gets_a_sentence(client: TestClient, sim: PveSim) -> None:
    login(client, *ALICE)
    page = client.get("/t/lab/ct/pve1/151/power/start")
    r = client.post("/t/lab/ct/pve1/151/power/start", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403
    assert "your identity lacks VM.PowerMgmt" in r.text


def test_the_home_screen_updates_itself_when_the_analysis_arrives(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    html = client.get("/").text
    m = re.search(r'data-live="inv/lab" data-v="([0-9.]+)"', html)
    assert m
    shown = m.group(1)
    newer = client.get(f"/changes?key=inv/lab&v={shown}").json()["v"]
    assert newer != shown  # the analysis (started after the page went out) or a refresh came in
    assert client.get("/changes?key=bogus/lab&v=0").status_code == 400


def test_guest_graphs_have_hour_day_and_week(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    hour = wait_for(client, "/t/lab/vm/pve1/101", "over the last hour")
    assert 'class="now">CPU: ' in hour
    assert 'href="?tf=week"' in hour
    week = client.get("/t/lab/vm/pve1/101?tf=week").text
    assert "over the last week" in week
    day = client.get("/t/lab/ct/pve1/150?tf=day").text
    assert "over the last day" in day
    assert any(
        q.path.endswith("/lxc/150/rrddata") and q.params.get("timeframe") == "day"
        for q in sim.requests
    )


def test_inventory_parsing_is_tolerant_and_groups_nodes_naturally() -> None:
    from nestctl.web import inventory as inv  # noqa: PLC0415

    rows = [
        {"type": "node", "node": "pve10", "status": "online"},
        {"type": "node", "node": "pve2", "status": "offline"},
        {"type": "qemu", "vmid": "101", "node": "pve10", "name": "a", "status": "running",
         "tags": "web;Prod", "cpu": "0.5", "mem": 1, "maxmem": 4},
        {"type": "lxc", "vmid": 200, "node": "pve2", "status": "stopped", "lock": "backup"},
        {"type": "qemu", "vmid": 1.5, "node": "pve2"},  # not an id
        {"type": "qemu", "vmid": 7},  # no node
        {"type": "storage", "node": "pve2", "storage": "local"},
        "junk",
    ]  # fmt: skip
    res = inv.parse_resources(rows)
    assert [g.id for g in res.guests] == ["qemu/101", "lxc/200"]
    web = res.guests[0]
    assert web.tags == ("web", "prod")
    assert web.cpu_pct == 50.0
    assert web.mem_pct == 25.0
    assert "prod" in web.search_text
    groups = inv.group(
        "lab", res, [inv.Row(g, node_online=res.node_online(g.node)) for g in res.guests]
    )
    assert [g.node for g in groups] == ["pve2", "pve10"]
    assert groups[0].rows[0].problem == "its node is offline"
    assert inv.parse_resources({"data": "not a list"}).guests == []


def test_a_container_firewall_rule_is_added_and_its_power_task_followed(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    ct = sim.cluster.nodes["pve1"].cts[150]
    url = "/t/lab/ct/pve1/150/firewall"
    page = client.get(url)
    assert "Firewall of CT 150" in page.text
    digest = re.search(
        r'id="add-rule">\s*<input[^>]*>\s*<input type="hidden" name="digest" value="([^"]*)"',
        page.text,
    )
    data = {"csrf": csrf_of(page.text), "type": "in", "action": "ACCEPT", "proto": "tcp"}
    data |= {"dport": "2375", "enable": "1", "digest": digest.group(1) if digest else ""}
    r = client.post(f"{url}/rules", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert any(str(rule.get("dport")) == "2375" for rule in ct.firewall_rules)
    stopped = client.get("/t/lab/ct/pve1/151/power/start")
    assert stopped.status_code == 200
    r = client.post(
        "/t/lab/ct/pve1/151/power/start",
        data={"csrf": csrf_of(stopped.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    done = client.get(r.headers["location"] + "/wait").json()
    assert done["ok"] is True
    assert sim.cluster.nodes["pve1"].cts[151].status == "running"
    assert "Start CT 151" in client.get(r.headers["location"]).text


def test_a_dropped_connection_on_the_home_screen_is_one_sentence(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    sim.fail(kind="drop", path="^/cluster/resources$")
    html = client.get("/").text
    assert "Could not list lab: nestctl could not reach the Proxmox API" in html
    for library in ("HTTPSConnectionPool", "Max retries", "RemoteDisconnected", "urllib3"):
        assert library not in html
    sim.clear_faults()


def test_a_running_guest_restarts_in_two_taps_from_the_home_screen(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    html = client.get("/").text
    quick = re.findall(r'<a class="quick" href="([^"]+)"', html)
    assert "/t/lab/vm/pve1/101/power/reboot" in quick  # running
    assert "/t/lab/ct/pve1/150/power/reboot" in quick  # a running container too
    for not_offered in ("/vm/pve1/103/", "/vm/pve1/104/", "/ct/pve1/152/", "/vm/pve3/301/"):
        assert not any(not_offered in q for q in quick), not_offered  # stopped, locked, offline
    page = client.get("/t/lab/vm/pve1/101/power/reboot")  # tap 1
    r = client.post(  # tap 2
        "/t/lab/vm/pve1/101/power/reboot",
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get(r.headers["location"] + "/wait").json()["ok"] is True


def test_a_full_storage_is_pinned_on_the_home_screen(client: TestClient, sim: PveSim) -> None:
    with sim.cluster.lock:
        sim.cluster.nodes["pve2"].storage_usage["local"] = (93, 100)
    login(client, *token(sim))
    html = client.get("/").text
    pinned = html[html.index('id="problems"') :]
    assert "storage local on pve2 is 93% full" in pinned
    assert 'href="/t/lab/node/pve2#storage"' in pinned
    assert "storage local on pve1" not in html  # 13%
