"""The `nestctl vm --json` contract (issue 4): every documented key, its type, never renamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from nestctl.cli import cli
from tests.vm.vmtrees import digest_args, node, run_vm, vm_conf

#: Keys the issue documents; extra keys may be added, these may never go or change meaning.
VM_KEYS = {
    "vmid": int,
    "name": (str, type(None)),
    "running": bool,
    "cpu_arg": (str, type(None)),
    "cpu_arg_pending": (str, type(None)),
    "running_cpu_arg": (str, type(None)),
    "nested": dict,
    "restart_required": bool,
    "findings": list,
}
NESTED_KEYS = {"exposed": (bool, type(None)), "flag": (str, type(None))}
FINDING_KEYS = {"code", "severity", "message", "fix"}
#: Extra keys nestctl adds (documented in docs/vm.md), pinned so they are not renamed either.
VM_EXTRA = {
    "node",
    "lock",
    "proxmox_cpu_arg",
    "chain",
    "broken_link",
    "wants_nested",
    "intent",
    "verdict",
}
ENABLE_KEYS = {
    "vmid",
    "profile",
    "dry_run",
    "commands",
    "applied",
    "blocked",
    "manual",
    "restart",
    "results",
    "findings",
    "verdict",
}


def run(root: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [*args, "--root", str(root), "--json"])
    return json.loads(result.output)  # type: ignore[no-any-return]


def check_finding(f: dict[str, Any]) -> None:
    assert set(f) == FINDING_KEYS
    assert f["severity"] in ("error", "warning", "info")
    assert isinstance(f["code"], str)
    assert f["code"].startswith("vm.")


def test_vm_json_contract(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "name: web\nostype: l26\ncpu: host\n\n[PENDING]\nmemory: 4096\n")
    vm_conf(tmp_path, 101, "cpu: host,flags=+vmx\n")  # refused by Proxmox: cpu_arg null
    run_vm(tmp_path, 100, 7, "host,+kvm_pv_eoi,+kvm_pv_unhalt")
    data = run(tmp_path, "vm")
    assert set(data) == {"vms", "findings", "verdict"}
    assert data["verdict"] in ("ready", "not-ready", "unknown")
    assert [v["vmid"] for v in data["vms"]] == [100, 101]
    for vm in data["vms"]:
        assert set(vm) == set(VM_KEYS) | VM_EXTRA, set(vm) ^ (set(VM_KEYS) | VM_EXTRA)
        for key, kind in VM_KEYS.items():
            assert isinstance(vm[key], kind), key
        assert set(vm["nested"]) == {*NESTED_KEYS, "source"}
        for key, kind in NESTED_KEYS.items():
            assert isinstance(vm["nested"][key], kind), key
        assert vm["nested"]["flag"] in ("vmx", "svm", None)
        for f in vm["findings"]:
            check_finding(f)
    for f in data["findings"]:
        check_finding(f)
    web, refused = data["vms"]
    assert web["cpu_arg"] == "host,+kvm_pv_eoi,+kvm_pv_unhalt"  # unquoted
    assert web["cpu_arg_pending"] == web["cpu_arg"]  # a pending memory change: same -cpu
    assert web["restart_required"] is False  # memory is not a cpu/machine/args change
    assert refused["cpu_arg"] is None
    assert refused["cpu_arg_pending"] is None
    assert any(f["code"] == "vm.cpu.refused" for f in refused["findings"])


def test_vm_json_with_guest_adds_one_key(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "cpu: host\n")
    vm = run(tmp_path, "vm", "--guest")["vms"][0]
    assert set(vm) == set(VM_KEYS) | VM_EXTRA | {"guest"}


def test_enable_json_contract(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\n")
    data = run(tmp_path, "vm", "enable", "100", "--profile", "linux-kvm", "--dry-run")
    assert set(data) == ENABLE_KEYS
    assert data["commands"] == [
        ["qm", "set", "100", "--cpu", "host", "--tags", "nested", *digest_args(tmp_path, 100)]
    ]
    for f in data["findings"]:
        check_finding(f)
