"""From L0, outside: into L1 through its agent, and the whole lab as one tree."""

from __future__ import annotations

import json
from pathlib import Path

from tests.lab.conftest import Lab
from tests.lab.l0_cli import inner_doctor, nestctl_l0


def test_vm_guest_from_l0_into_l1(lab: Lab, l0_root: Path) -> None:
    code, body = nestctl_l0("vm", "101", "--guest", "--no-qemu", "--root", str(l0_root))
    vm = body["vms"][0]
    assert vm["running"] is True
    assert vm["running_cpu_arg"] == "EPYC"
    guest = vm["guest"]
    assert guest["via"] == "agent"
    # L1's own view: a KVM host (svm, kvm_amd, a usable /dev/kvm) that itself runs under TCG.
    assert guest["virt_flag"] == "svm"
    assert guest["kvm_usable"] is True
    assert guest["linux"]["kvm_module"] == "kvm_amd"
    assert guest["linux"]["module_nested"] is True
    assert guest["accel"] == "tcg"
    assert vm["chain"]["guest"] == "ok"
    assert vm["broken_link"] is None
    assert code in (0, 1, 2)


def test_tree_l0_l1_l2(lab: Lab, l0_root: Path, tmp_path: Path, artifacts: Path) -> None:
    inner = inner_doctor(lab.main, tmp_path / "l1-101.json")
    _code, body = nestctl_l0("tree", "--root", str(l0_root), "--guests", "--inner", f"101={inner}")
    (artifacts / "tree.json").write_text(json.dumps(body, indent=2) + "\n")
    [l0] = body["tree"]
    assert (l0["kind"], l0["node"], l0["level"]) == ("node", "l0lab", 0)
    vms = {vm["vmid"]: vm for vm in l0["children"]}
    assert set(vms) == {101, 102, 103}
    [l1] = vms[101]["children"]
    assert (l1["kind"], l1["target"], l1["node"], l1["level"]) == ("node", "vm101", "l1lab", 1)
    assert l1["verdict"] == "ready"  # a KVM host with nested on, now and after a reboot
    l2 = {vm["vmid"]: vm for vm in l1["children"]}
    assert set(l2) == {201, 202}
    assert all(vm["broken_link"] is None for vm in l2.values())
    assert vms[101]["broken_link"] is None
