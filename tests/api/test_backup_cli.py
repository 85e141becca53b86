"""`nestctl backup status|now|jobs` against the simulator, and the backup engine's judgements."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from nestctl.api.backups import (
    BackupFacts,
    BackupRun,
    BackupVolume,
    Guest,
    backup_choices,
    backup_findings,
    per_guest,
    restore_command,
    runs_from_tasks,
)
from tests.api.clirun import nestctl_json
from tests.pvesim import PveSim
from tests.pvesim.storage import BackupJob, StorageDef

pytest_plugins = ["tests.pvesim.fixtures"]

GUEST_KEYS = {
    "id", "type", "vmid", "node", "name", "status", "last", "age_seconds", "last_task", "jobs",
    "covered", "restore",
}  # fmt: skip
DAY = 86400


def backup(
    sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    token = tmp_path / "token"
    token.write_text(sim.root_token)
    return nestctl_json(
        capsys, "backup", *args, "--api", sim.url, "--fingerprint", sim.fingerprint,
        "--token-file", str(token),
    )  # fmt: skip


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in data["guests"]}


def test_status_reports_age_size_storage_and_judges_each_guest(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = pve_sim.cluster.storage
    now = int(time.time())
    state.add_backup("local", "pve1", 101, ctime=now - 3600, size=2048)
    state.add_backup("local", "pve1", 101, ctime=now - 30 * DAY)
    state.add_backup("local", "pve1", 102, ctime=now - 10 * DAY)
    state.jobs.append(BackupJob("nightly", vmid="101,102", schedule="21:00"))
    code, data = backup(pve_sim, tmp_path, capsys, "status")
    assert code == 2  # node pve3 is down: 301's backups are unknown (never "none")
    assert set(data) == {"max_age_days", "guests", "uncovered", "jobs", "findings", "verdict"}
    guests = by_id(data)
    assert set(guests["qemu/101"]) == GUEST_KEYS
    g101 = guests["qemu/101"]
    assert g101["status"] == "ok"
    assert g101["last"]["size"] == 2048
    assert g101["last"]["storage"] == "local"
    assert 3500 <= g101["age_seconds"] <= 3700
    assert g101["restore"].startswith("qmrestore local:backup/vzdump-qemu-101-")
    assert g101["jobs"] == ["nightly"]
    assert guests["qemu/102"]["status"] == "stale"
    assert guests["qemu/103"]["status"] == "none"
    assert "qemu/103" in data["uncovered"]
    assert "qemu/101" not in data["uncovered"]
    codes = {(f["code"], f["message"].split(":")[0]) for f in data["findings"]}
    assert ("backup.stale", "VM 102 (win11)") in codes
    assert ("backup.none", "VM 103 (default-cpu)") in codes
    assert ("backup.no-job", "VM 103 (default-cpu)") in codes
    assert guests["qemu/301"]["status"] == "unknown"
    assert ("backup.unknown", "VM 301 (on-a-down-node)") in codes
    # a longer limit makes 102 fine
    pve_sim.cluster.set_node_online("pve3", True)
    code, data = backup(pve_sim, tmp_path, capsys, "status", "101", "102", "--max-age", "14")
    assert [g["status"] for g in data["guests"]] == ["ok", "ok"]
    assert code == 0  # warnings only (103's), the verdict stays "ready"


def test_back_up_now_follows_the_task_and_a_failed_backup_is_an_error(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = backup(pve_sim, tmp_path, capsys, "now", "103", "--storage", "local")
    assert code == 0, data
    assert data["task"]["ok"] is True
    assert data["compress"] == "zstd"
    assert data["backup"]["volid"].startswith("local:backup/vzdump-qemu-103-")
    assert data["backup"]["volid"].endswith(".vma.zst")
    assert "lock" not in pve_sim.cluster.vm(103).conf.main
    pve_sim.cluster.storage.vzdump_errors[103] = "unable to open file - No space left on device"
    code, data = backup(pve_sim, tmp_path, capsys, "now", "103", "--storage", "local")
    assert code == 1
    assert data["task"]["exitstatus"] == "job errors"
    assert "No space left on device" in data["findings"][0]["message"]
    code, data = backup(pve_sim, tmp_path, capsys, "status", "103")
    assert by_id(data)["qemu/103"]["status"] == "failed"
    failed = [f for f in data["findings"] if f["code"] == "backup.failed"]
    assert failed
    assert "No space left on device" in failed[0]["message"]


def test_back_up_now_refuses_a_storage_that_holds_no_backups(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = backup(pve_sim, tmp_path, capsys, "now", "103", "--storage", "local-lvm")
    assert code == 1
    assert data["findings"][0]["code"] == "backup.storage"
    assert not any(r.path.endswith("/vzdump") for r in pve_sim.requests)


def test_a_failed_job_task_for_many_guests_is_split_by_its_log(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.storage.vzdump_errors[102] = "VM 102 qmp command 'backup' failed"
    upid = pve_sim.request("POST", "/nodes/pve1/vzdump", {"all": "1", "storage": "local"}).data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "job errors"
    code, data = backup(pve_sim, tmp_path, capsys, "status")
    assert code == 1
    guests = by_id(data)
    assert guests["qemu/102"]["status"] == "failed"
    assert guests["qemu/102"]["last_task"]["error"] == "VM 102 qmp command 'backup' failed"
    assert guests["qemu/101"]["status"] == "ok"
    assert guests["qemu/101"]["last_task"]["ok"] is True


def test_jobs_lists_schedule_next_run_coverage_and_uncovered_guests(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = pve_sim.cluster.storage.jobs
    jobs.append(BackupJob("all-but-104", all=True, exclude="104,301", schedule="sat 02:00"))
    jobs.append(BackupJob("old", vmid="301", enabled=False))
    code, data = backup(pve_sim, tmp_path, capsys, "jobs")
    assert set(data) == {"jobs", "uncovered", "findings", "verdict"}
    first = data["jobs"][0]
    assert first["id"] == "all-but-104"
    assert first["schedule"] == "sat 02:00"
    assert time.gmtime(first["next_run"]).tm_wday == 5  # a Saturday
    assert "qemu/104" not in first["covers"]
    assert "qemu/101" in first["covers"]
    assert data["uncovered"] == ["qemu/104"]
    codes = {(f["code"], f["message"].split(":")[0]) for f in data["findings"]}
    assert ("backup.job-disabled", "VM 301 (on-a-down-node)") in codes
    assert code == 0  # warnings only; the jobs themselves were read


# -- the engine alone ----------------------------------------------------------------------------


def test_pbs_storages_offer_no_compression_and_non_backup_storages_none_at_all() -> None:
    choices = backup_choices(
        {
            "local": {"type": "dir", "content": "iso,backup"},
            "pbs": {"type": "pbs", "content": "backup"},
            "local-lvm": {"type": "lvmthin", "content": "images,rootdir"},
        }
    )
    assert [(c.storage, c.compressions) for c in choices] == [
        ("local", ("zstd", "lzo", "gzip", "0")),
        ("pbs", ()),
    ]


def test_restore_commands_are_proxmoxs_argument_orders() -> None:
    vol = BackupVolume("s:backup/x.tar.zst", "s", "n", 300, 1, 1, "tar.zst", None, False)
    assert (
        restore_command(Guest("lxc", 300, "n", None), vol) == "pct restore 300 s:backup/x.tar.zst"
    )
    assert restore_command(Guest("qemu", 300, "n", None), vol) == "qmrestore s:backup/x.tar.zst 300"


def test_a_failure_older_than_the_newest_backup_is_not_the_last_word() -> None:
    now = 1_800_000_000
    guest = Guest("qemu", 101, "pve1", "a")
    vol = BackupVolume("l:backup/v", "l", "pve1", 101, now - 100, 1, None, None, False)
    failed = BackupRun("UPID:x", "pve1", 101, now - 5000, now - 4900, False, "boom")
    facts = BackupFacts([guest], [vol], [failed], [], set(), {})
    entries = per_guest(facts)
    findings = backup_findings(entries, now)
    assert entries[0].status == "ok"
    assert not [f for f in findings if f.code == "backup.failed"]
    later = BackupRun("UPID:y", "pve1", 101, now - 50, now - 40, False, "boom")
    facts.runs.append(later)
    entries = per_guest(facts)
    assert [f.code for f in backup_findings(entries, now)] == ["backup.failed"]


def test_hostile_task_lists_are_skipped_not_fatal() -> None:
    runs, problems = runs_from_tasks(
        [None, "x", {"type": "vzdump", "upid": "nonsense"}, {"type": "vzdump"}, 3],
        lambda _u: [],
    )
    assert runs == []
    assert problems == []


def test_an_unreadable_storage_is_a_stated_unknown(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.storage.define(StorageDef("nfs", "nfs", {"backup"}, shared=True))
    pve_sim.fail(path="/storage/nfs/content", status=500, message="mount error: timed out")
    code, data = backup(pve_sim, tmp_path, capsys, "status")
    unread = [f for f in data["findings"] if f["code"] == "backup.unreadable"]
    assert unread
    assert "nfs" in unread[0]["message"]
    assert code in (1, 2)


def test_a_container_backup_and_its_pct_restore_command(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = backup(pve_sim, tmp_path, capsys, "now", "151", "--storage", "local")
    assert code == 0, data
    assert data["guest"]["id"] == "lxc/151"
    assert data["backup"]["volid"].startswith("local:backup/vzdump-lxc-151-")
    assert data["backup"]["notes"] == "dns"
    code, data = backup(pve_sim, tmp_path, capsys, "status", "151")
    entry = by_id(data)["lxc/151"]
    assert entry["status"] == "ok"
    assert entry["restore"].startswith("pct restore 151 local:backup/vzdump-lxc-151-")


def test_an_offline_node_makes_only_its_own_guests_unknown(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())
    pve_sim.cluster.storage.add_backup("local", "pve1", 101, ctime=now - 60)
    code, data = backup(pve_sim, tmp_path, capsys, "status", "101")
    assert code == 0, data  # pve3 is down, but 101 lives on pve1
    code, data = backup(pve_sim, tmp_path, capsys, "status", "301")
    assert code == 2
    assert [f["code"] for f in data["findings"]] == ["backup.unknown", "backup.no-job"]
