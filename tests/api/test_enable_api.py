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
