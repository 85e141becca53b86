"""The home screen pins a guest whose last backup task failed, in Proxmox's words (issue 20)."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from tests.pvesim import PveSim
from tests.web.conftest import login, token, wait_for


def _problems(body: str) -> str:
    return (
        body.split('id="problems"')[1].split("</section>", maxsplit=1)[0]
        if 'id="problems"' in body
        else ""
    )


def test_a_failed_last_backup_is_pinned_on_the_home_screen(sim: PveSim, client: TestClient) -> None:
    sim.cluster.storage.vzdump_errors[103] = "unable to open the archive"
    upid = sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103", "storage": "local"}).data
    assert sim.wait_task("pve1", upid)["exitstatus"] == "job errors"
    login(client, *token(sim))
    first = client.get("/").text  # the scan starts after this page went out
    assert "/vm/pve1/103" in first
    body = wait_for(client, "/", "Last backup failed: unable to open the archive")
    pinned = _problems(body)
    assert "Last backup failed: unable to open the archive" in pinned
    assert 'href="/t/lab/vm/pve1/103"' in pinned


def test_a_guest_backed_up_fine_is_not_pinned(sim: PveSim, client: TestClient) -> None:
    upid = sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103", "storage": "local"}).data
    assert sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    login(client, *token(sim))
    client.get("/")
    # The scan answered once the page's version has a backups part above 0.
    for _ in range(200):
        body = client.get("/").text
        time.sleep(0.05)
        if 'data-v="' in body and not body.split('data-v="')[1].split('"')[0].endswith(".0"):
            break
    assert "Last backup failed" not in body
    assert 'href="/t/lab/vm/pve1/103"' not in _problems(body)
