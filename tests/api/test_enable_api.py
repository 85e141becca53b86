"""`nestctl vm enable --api` against the simulator: digest, concurrent change, restart task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nestctl.api.client import ApiClient
from nestctl.vm.enable import EnableOptions
from nestctl.vm.facts import VmOptions
from nestctl.vm.remote_enable import enable_report_api
from tests.api.clirun import nestctl_json
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures", "tests.api.simclient"]


def enable(
    sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    token = tmp_path / "token"
    token.write_text(sim.root_token)
    return nestctl_json(
        capsys, "vm", "enable", *args, "--api", sim.url, "--fingerprint", sim.fingerprint,
        "--token-file", str(token),
    )  # fmt: skip


def test_dry_run_shows_the_api_call_with_the_digest_and_changes_nothing(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pve_sim.cluster.vm(103).conf.digest
    code, data = enable(pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm", "--dry-run")
    assert data["commands"] == [
        ["pvesh", "set", "/nodes/pve1/qemu/103/config", "--cpu", "host", "--tags", "nested",
         "--digest", before]
    ]  # fmt: skip
    assert pve_sim.cluster.vm(103).conf.digest == before
    assert not any(r.method == "PUT" for r in pve_sim.requests)
    assert code == 0


def test_apply_sets_the_cpu_through_the_api(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = enable(pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm")
    assert data["applied"] is True
    assert pve_sim.cluster.vm(103).conf.main["cpu"] == "host"
    assert pve_sim.cluster.vm(103).conf.main["tags"] == "nested"  # now meant to nest
    put = next(r for r in pve_sim.requests if r.method == "PUT")
    assert put.params["digest"]
    assert put.params["tags"] == "nested"  # in the same update, under the same digest
    assert code == 0


def test_a_concurrent_change_is_refused_not_overwritten(
    pve_sim: PveSim, sim_client: ApiClient
) -> None:
    client = sim_client
    real_put = client.put

    def put_after_another_admin(path: str, **params: Any) -> Any:
        pve_sim.cluster.edit_config(103, memory="4096")  # between our check and our change
        return real_put(path, **params)

    client.put = put_after_another_admin  # type: ignore[method-assign]
    report = enable_report_api(client, VmOptions(), EnableOptions(103, "linux-kvm"))
    assert [f.code for f in report.findings if f.code.startswith("vm.enable")] == [
        "vm.enable.conflict"
    ]
    assert report.payload["applied"] is False
    assert "cpu" not in pve_sim.cluster.vm(103).conf.main
    assert report.exit_code == 1


def test_restart_reboots_through_the_api_and_verifies(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # VM 102 runs with cpu: host waiting in [PENDING]: --restart applies it.
    code, data = enable(pve_sim, tmp_path, capsys, "102", "--profile", "linux-kvm", "--restart")
    assert [r["argv"][1] for r in data["results"]][-1] == "create"
    assert data["restart"]["matches"] is True
    assert pve_sim.cluster.vm(102).conf.pending == {}
    polled = [r for r in pve_sim.requests if r.path.endswith("/status") and "tasks" in r.path]
    assert polled
    assert code == 0


def test_a_locked_vm_is_not_touched(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = enable(pve_sim, tmp_path, capsys, "104", "--profile", "linux-kvm")
    assert data["applied"] is False
    assert not any(r.method == "PUT" for r in pve_sim.requests)
    assert code == 1


# -- --snapshot: the safety net --------------------------------------------------------------------


def test_snapshot_is_taken_before_the_config_change(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = enable(pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm", "--snapshot")
    assert code == 0, data
    snap = data["snapshot"]
    assert snap["taken"] is True
    assert snap["name"].startswith("nestctl-before-linux-kvm-")
    writes = [(r.method, r.path) for r in pve_sim.requests if r.method in ("POST", "PUT")]
    assert writes == [
        ("POST", "/nodes/pve1/qemu/103/snapshot"),
        ("PUT", "/nodes/pve1/qemu/103/config"),
    ]
    conf = pve_sim.cluster.vm(103).conf
    assert conf.main["cpu"] == "host"
    assert "cpu" not in conf.sections[snap["name"]]  # the way back holds the old config
    assert any(f["code"] == "vm.enable.snapshot" for f in data["findings"])


def test_a_failed_snapshot_refuses_the_change(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.vm(103).task_errors["snapshot"] = "zfs error: out of space"
    before = pve_sim.cluster.vm(103).conf.main.copy()
    code, data = enable(pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm", "--snapshot")
    assert code == 1
    assert data["applied"] is False
    assert data["snapshot"]["taken"] is False
    assert "zfs error: out of space" in data["snapshot"]["error"]
    assert [f["code"] for f in data["findings"] if f["severity"] == "error"] == [
        "vm.enable.snapshot-failed"
    ]
    assert not any(r.method == "PUT" for r in pve_sim.requests)
    assert pve_sim.cluster.vm(103).conf.main == before


def test_a_storage_without_snapshots_is_said_and_nothing_changes(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.edit_config(103, scsi0="local:103/vm-103-disk-0.raw,size=8G")
    code, data = enable(pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm", "--snapshot")
    assert code == 1
    assert data["snapshot"]["supported"] is False
    assert "only qcow2 images" in data["snapshot"]["why"]
    assert not any(r.method in ("POST", "PUT") for r in pve_sim.requests)


def test_dry_run_names_the_snapshot_it_would_take(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = enable(
        pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm", "--snapshot", "--dry-run"
    )
    assert code == 0
    assert data["snapshot"]["supported"] is True
    assert data["snapshot"]["taken"] is False
    assert not any(r.method in ("POST", "PUT") for r in pve_sim.requests)


def test_vm_disable_rollback_goes_back_to_the_safety_snapshot(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = enable(pve_sim, tmp_path, capsys, "103", "--profile", "linux-kvm", "--snapshot")
    assert code == 0, data
    name = data["snapshot"]["name"]
    token = tmp_path / "token"
    args = [
        "--api",
        pve_sim.url,
        "--fingerprint",
        pve_sim.fingerprint,
        "--token-file",
        str(token),
    ]
    code, data = nestctl_json(capsys, "vm", "disable", "103", "--rollback", "--dry-run", *args)
    assert code == 0, data
    assert data["commands"] == [
        ["pvesh", "create", f"/nodes/pve1/qemu/103/snapshot/{name}/rollback"]
    ]
    assert pve_sim.cluster.vm(103).conf.main["cpu"] == "host"
    code, data = nestctl_json(capsys, "vm", "disable", "103", "--rollback", "--yes", *args)
    assert code == 0, data
    assert data["applied"] is True
    assert "cpu" not in pve_sim.cluster.vm(103).conf.main
    code, data = nestctl_json(capsys, "vm", "disable", "101", "--rollback", "--yes", *args)
    assert code == 1
    assert data["findings"][0]["code"] == "vm.disable.no-snapshot"
