"""Power actions behind a confirmation, followed to the task's end; refusals in Proxmox's words."""

from __future__ import annotations

import re
from urllib.parse import unquote

from tests.web.conftest import ALICE, csrf_of, login, token


def _confirm_and_post(client, url: str):
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="confirm"' in page.text or "confirm_name" in page.text
    return client.post(url, data={"csrf": csrf_of(page.text)}, follow_redirects=False)


def test_start_a_stopped_vm_and_follow_the_task_to_its_end(client, sim):
    login(client, *token(sim))
    assert sim.cluster.vm(103).status == "stopped"
    r = _confirm_and_post(client, "/t/lab/vm/pve1/103/power/start")
    assert r.status_code == 303
    task_url = r.headers["location"]
    upid = unquote(task_url.rsplit("/", 1)[1])
    assert re.fullmatch(
        r"UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmstart:103:root@pam!pvesim:", upid
    )
    page = client.get(task_url)
    assert "Start VM 103" in page.text
    done = client.get(task_url + "/wait").json()
    assert done["running"] is False
    assert done["exitstatus"] == "OK"
    assert done["ok"] is True
    assert done["log_tail"], "the log tail is shown"
    assert sim.cluster.vm(103).status == "running"
    page = client.get(task_url)
    assert "Ended: OK" in page.text


def test_every_vm_action_that_fits_has_a_confirmation_page(client, sim):
    login(client, *token(sim))
    assert sim.cluster.vm(101).running
    for action in ("shutdown", "stop", "reboot", "reset", "suspend"):
        page = client.get(f"/t/lab/vm/pve1/101/power/{action}")
        assert page.status_code == 200, action
        assert f"{action.capitalize()} VM 101?" in page.text
    for action in ("start", "resume"):  # a running VM: refused before any confirmation
        page = client.get(f"/t/lab/vm/pve1/101/power/{action}")
        assert page.status_code == 409, action
        assert "does not fit its state" in page.text
    assert client.get("/t/lab/vm/pve1/101/power/destroy").status_code == 404


def test_action_without_the_privilege_shows_proxmox_403_and_changes_nothing(client, sim):
    login(client, *ALICE)
    r = _confirm_and_post(client, "/t/lab/vm/pve1/103/power/start")
    assert r.status_code == 403
    assert "Permission check failed" in r.text
    assert "VM.PowerMgmt" in r.text
    assert sim.cluster.vm(103).status == "stopped"


def test_restart_to_apply_pending_changes_uses_status_reboot(client, sim):
    login(client, *token(sim))
    page = client.get("/t/lab/vm/pve1/101/power/reboot?why=pending")
    assert "pending changes" in page.text
    r = client.post(
        "/t/lab/vm/pve1/101/power/reboot", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert ":qmreboot:101:" in unquote(r.headers["location"])
    posts = [q.path for q in sim.requests if q.method == "POST" and not q.harness]
    assert "/nodes/pve1/qemu/101/status/reboot" in posts


def test_node_reboot_needs_the_typed_node_name(client, sim):
    login(client, *token(sim))
    page = client.get("/t/lab/node/pve1/power/reboot")
    assert "Type the node" in page.text
    csrf = csrf_of(page.text)
    r = client.post("/t/lab/node/pve1/power/reboot", data={"csrf": csrf, "confirm_name": "pve2"})
    assert r.status_code == 400
    assert not any(q.path == "/nodes/pve1/status" and q.method == "POST" for q in sim.requests)
    r = client.post("/t/lab/node/pve1/power/reboot", data={"csrf": csrf, "confirm_name": "pve1"})
    assert r.status_code == 200
    assert "reboot requested" in r.text
    assert any(q.path == "/nodes/pve1/status" and q.method == "POST" for q in sim.requests)


def test_node_shutdown_without_sys_powermgmt_is_refused(client, sim):
    login(client, *ALICE)
    page = client.get("/t/lab/node/pve2/power/shutdown")
    r = client.post(
        "/t/lab/node/pve2/power/shutdown", data={"csrf": csrf_of(page.text), "confirm_name": "pve2"}
    )
    assert r.status_code == 403
    assert "Sys.PowerMgmt" in r.text
    assert sim.cluster.nodes["pve2"].online


def test_a_locked_vm_explains_its_lock_instead_of_buttons(client, sim):
    login(client, *token(sim))
    page = client.get("/t/lab/vm/pve1/104").text
    assert "Proxmox has locked it (backup): a backup is running" in page
    assert "/power/" not in page
    r = client.get("/t/lab/vm/pve1/104/power/start")
    assert r.status_code == 409
    assert "a backup is running" in r.text
    assert not [q for q in sim.requests if q.path.endswith("/status/start")]


def test_a_failed_task_shows_its_exit_status(client, sim):
    # VM 104 is locked (backup) only after the dashboard listed it: the page offered Start,
    # the task starts, then fails with Proxmox's own text.
    lock = sim.cluster.vm(104).conf.main.pop("lock")
    login(client, *token(sim))
    # Listed unlocked on the home screen (its own page is never read: its status would say locked).
    assert "/t/lab/vm/pve1/104" in client.get("/").text
    sim.cluster.vm(104).conf.main["lock"] = lock
    r = _confirm_and_post(client, "/t/lab/vm/pve1/104/power/start")
    assert r.status_code == 303
    done = client.get(r.headers["location"] + "/wait").json()
    assert done["ok"] is False
    assert done["exitstatus"] == "VM is locked (backup)"
    page = client.get(r.headers["location"])
    assert "Ended: VM is locked (backup)" in page.text
    assert sim.cluster.vm(104).status == "stopped"


def test_task_wait_rejects_a_non_upid(client, sim):
    login(client, *token(sim))
    assert client.get("/t/lab/task/not-a-upid/wait").status_code == 404
