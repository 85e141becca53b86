"""A VM whose guest is a Proxmox VE node running VMs of its own wants nesting (intent
inner-layer), read over the Proxmox API's guest agent endpoints by `doctor --guests` (issue 18)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.api.clirun import nestctl_json
from tests.pvesim import PveSim
from tests.pvesim.cluster import ExecAnswer

pytest_plugins = ["tests.pvesim.fixtures"]


def _api(sim: PveSim, tmp_path: Path) -> list[str]:
    token = tmp_path / "token"
    token.write_text(sim.root_token + "\n")
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--token-file", str(token)]


def _vm(body: dict[str, Any], vmid: int) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in body["vms"] if v["vmid"] == vmid)
    return found


def _start(sim: PveSim) -> None:
    """Start VM 103 and wait for its task to end (the simulator's tasks take a moment)."""
    upid = sim.request("POST", "/nodes/pve1/qemu/103/status/start").data
    for _ in range(400):
        status = sim.request("GET", f"/nodes/pve1/tasks/{upid}/status").data
        if status["status"] == "stopped":
            break
        time.sleep(0.01)
    assert sim.request("GET", "/nodes/pve1/qemu/103/status/current").data["status"] == "running"


def _make_103_an_inner_proxmox(sim: PveSim, *, lists_proc: bool) -> None:
    """VM 103 (default-cpu, no tag, no flags, stopped) runs a Proxmox VE with one VM of its own."""
    vm = sim.cluster.nodes["pve1"].vms[103]
    guest = sim.cluster.nodes["pve1"].vms[101].guest  # a running Linux guest's tree and agent
    assert guest is not None
    vm.guest = guest
    assert sim.request("PUT", "/nodes/pve1/qemu/103/config", {"agent": "1"}).status == 200
    guest.files["/var/lib/dpkg/info/pve-manager.list"] = b"/.\n/usr/bin/pveversion\n"
    guest.files["/usr/bin/qm"] = b"#!/usr/bin/perl\n"
    guest.files["/proc/4242/comm"] = b"kvm\n"
    guest.files["/proc/4242/cmdline"] = b"/usr/bin/kvm\x00-id\x00100\x00"
    if lists_proc:
        ls = ExecAnswer(["ls", "-1A", "/proc/"], out_data="1\n4242\ncpuinfo\nself\n")
        guest.exec_answers.append(ls)


def test_an_inner_proxmox_seen_through_the_agent_is_inner_layer(
    pve_sim: PveSim, tmp_path: Path, capsys: Any
) -> None:
    _make_103_an_inner_proxmox(pve_sim, lists_proc=True)
    _start(pve_sim)
    _code, body = nestctl_json(capsys, "doctor", "--guests", *_api(pve_sim, tmp_path))
    vm = _vm(body, 103)
    assert vm["guest"] is not None, [f["message"] for f in vm["findings"]]
    linux = vm["guest"]["linux"]
    assert linux["pve_node"] is True
    assert linux["pve_evidence"] == ["/var/lib/dpkg/info/pve-manager.list", "/usr/bin/qm"]
    assert linux["running_vms"] == ["kvm (pid 4242)"]
    assert (vm["wants_nested"], vm["intent"]) == (True, "inner-layer")


def test_an_agent_that_cannot_list_proc_leaves_running_vms_null(
    pve_sim: PveSim, tmp_path: Path, capsys: Any
) -> None:
    _make_103_an_inner_proxmox(pve_sim, lists_proc=False)
    pve_sim.cluster.nodes["pve1"].vms[103].guest.files.pop("/usr/bin/qm")  # type: ignore[union-attr]
    pve_sim.cluster.nodes["pve1"].vms[103].guest.files.pop(  # type: ignore[union-attr]
        "/var/lib/dpkg/info/pve-manager.list"
    )
    _start(pve_sim)
    _code, body = nestctl_json(capsys, "doctor", "--guests", *_api(pve_sim, tmp_path))
    vm = _vm(body, 103)
    assert vm["guest"] is not None, [f["message"] for f in vm["findings"]]
    linux = vm["guest"]["linux"]
    # `ls` and `test` do not run in this guest: unknown, never "no".
    assert (linux["pve_node"], linux["running_vms"]) == (None, None)
    # Unknown is no role: its kvm_intel alone makes it a KVM host ("guest"), not inner-layer.
    assert (vm["wants_nested"], vm["intent"]) == (True, "guest")
