"""pvesim's snapshot, storage and backup endpoints: schema return types, locks, refusals."""

from __future__ import annotations

import time
import urllib.parse

from tests.pvesim import PveSim
from tests.pvesim.schema import return_problems
from tests.pvesim.storage import BackupJob, next_run

pytest_plugins = ["tests.pvesim.fixtures"]

GETS = [
    ("/storage", {}),
    ("/nodes/{node}/storage", {"content": "backup"}),
    ("/nodes/{node}/storage/{storage}/content", {"content": "backup"}),
    ("/cluster/backup", {}),
    ("/cluster/backup/{id}", {}),
    ("/cluster/backup-info/not-backed-up", {}),
    ("/nodes/{node}/qemu/{vmid}/snapshot", {}),
    ("/nodes/{node}/qemu/{vmid}/snapshot/{snapname}", {}),
    ("/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config", {}),
    ("/nodes/{node}/lxc/{ct}/snapshot", {}),
]


def test_answers_match_the_schema_return_types(pve_sim: PveSim) -> None:
    pve_sim.cluster.storage.jobs.append(BackupJob("daily", all=True, schedule="02:30"))
    for path in ("/nodes/pve1/qemu/101/snapshot", "/nodes/pve1/lxc/151/snapshot"):
        upid = pve_sim.request("POST", path, {"snapname": "s1", "description": "d"}).data
        assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    upid = pve_sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "101,151"}).data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    values = {"node": "pve1", "vmid": "101", "ct": "151", "storage": "local", "id": "daily",
              "snapname": "s1"}  # fmt: skip
    problems = []
    for template, params in GETS:
        path = template.format(**values)
        resp = pve_sim.request("GET", path, params)
        assert resp.status == 200, (path, resp.body)
        schema_path = template.replace("{ct}", "{vmid}")
        problems += return_problems(pve_sim.schema.returns(schema_path), resp.data, template)
    assert problems == []
    content = pve_sim.request("GET", "/nodes/pve1/storage/local/content", {"content": "backup"})
    assert sorted(v["vmid"] for v in content.data) == [101, 151]
    assert {v["subtype"] for v in content.data} == {"qemu", "lxc"}


def test_vzdump_locks_each_guest_while_it_runs_and_frees_it(pve_sim: PveSim) -> None:
    pve_sim.cluster.storage.backup_seconds = 5
    upid = pve_sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103"}).data
    assert ":vzdump:103:" in upid
    assert pve_sim.cluster.vm(103).conf.main["lock"] == "backup"
    snap = pve_sim.request("POST", "/nodes/pve1/qemu/103/snapshot", {"snapname": "during"}).data
    pve_sim.cluster.storage.backup_seconds = 0
    for task in pve_sim.cluster.running_tasks:
        task.ends = 0
    assert pve_sim.wait_task("pve1", snap)["exitstatus"] == "VM is locked (backup)"
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    assert "lock" not in pve_sim.cluster.vm(103).conf.main


def test_vzdump_to_a_storage_without_backup_content_fails_the_task(pve_sim: PveSim) -> None:
    upid = pve_sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103", "storage": "local-lvm"})
    status = pve_sim.wait_task("pve1", upid.data)
    assert status["exitstatus"] == "can't use storage 'local-lvm' for backups - wrong content type"


def test_a_job_task_for_many_guests_has_no_id_and_names_each_guest_in_its_log(
    pve_sim: PveSim,
) -> None:
    pve_sim.cluster.storage.vzdump_errors[102] = "boom"
    upid = pve_sim.request("POST", "/nodes/pve1/vzdump", {"all": "1"}).data
    assert ":vzdump::" in upid
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "job errors"
    log = pve_sim.request(
        "GET", f"/nodes/pve1/tasks/{urllib.parse.quote(upid)}/log", {"limit": 500}
    ).data
    lines = [r["t"] for r in log]
    assert "ERROR: Backup of VM 102 failed - boom" in lines
    assert "INFO: Starting Backup of VM 151 (lxc)" in lines
    assert "ERROR: Backup of VM 104 failed - VM is locked (backup)" in lines  # the fixture's lock


def test_next_run_of_calendar_events() -> None:
    monday_noon = 1_796_601_600 + 12 * 3600  # 2026-12-07 (a Monday) 12:00 UTC
    assert time.gmtime(monday_noon).tm_wday == 0
    assert next_run("21:00", monday_noon) == monday_noon + 9 * 3600
    assert next_run("02:30", monday_noon) == monday_noon + 14 * 3600 + 30 * 60
    sat = next_run("sat 02:00", monday_noon)
    assert sat is not None
    assert time.gmtime(sat).tm_wday == 5
    assert next_run("mon..fri 01:00", monday_noon) == monday_noon + 13 * 3600
    assert next_run("*/15", monday_noon) is None  # not simulated: no next-run, as unknown


def test_not_backed_up_counts_disabled_jobs_like_proxmox(pve_sim: PveSim) -> None:
    pve_sim.cluster.storage.jobs.append(BackupJob("off", vmid="101", enabled=False))
    data = pve_sim.request("GET", "/cluster/backup-info/not-backed-up").data
    ids = {(e["type"], e["vmid"]) for e in data}
    assert ("qemu", 101) not in ids
    assert ("lxc", 151) in ids
