"""Guests through the API: the same probes as the local agent path; a 403 names the privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.clirun import nestctl_json
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures"]


def vm_guest(
    sim: PveSim, token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *vmids: str
) -> dict[int, dict[str, Any]]:
    path = tmp_path / "token"
    path.write_text(token)
    _code, data = nestctl_json(
        capsys, "vm", "--guest", *vmids, "--api", sim.url, "--fingerprint", sim.fingerprint,
        "--token-file", str(path),
    )  # fmt: skip
    return {v["vmid"]: v for v in data["vms"]}


def codes(vm: dict[str, Any]) -> list[str]:
    return [f["code"] for f in vm["findings"]]


def test_the_guest_agent_answers_through_the_api(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vms = vm_guest(pve_sim, pve_sim.root_token, tmp_path, capsys, "101", "102", "103")
    guest = vms[101]["guest"]
    assert guest["via"] == "agent"
    assert guest["os"] == "linux"
    assert guest["virt_flag"] == "vmx"  # read from the guest's /proc/cpuinfo via file-read
    assert any(r.path.endswith("/agent/file-read") for r in pve_sim.requests)
    assert vms[102]["guest"] is None
    dead = next(f for f in vms[102]["findings"] if f["code"] == "vm.guest.agent-failed")
    assert "QEMU guest agent is not running" in dead["message"]
    assert "vm.guest.not-running" in codes(vms[103])


def test_a_403_names_the_missing_agent_privilege(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_user("audit@pve", "pw", privs=["PVEAuditor"])
    token = pve_sim.add_token("audit@pve", "ro", privsep=False)
    vms = vm_guest(pve_sim, token, tmp_path, capsys, "101")
    failed = next(f for f in vms[101]["findings"] if f["code"] == "vm.guest.agent-failed")
    assert "VM.GuestAgent.Audit" in failed["message"]
    assert vms[101]["guest"] is None
    assert vms[101]["cpu_arg"] is not None  # the rest of the VM was still checked
