"""From L0, outside: into L1 through its agent, and the whole lab as one tree."""

from __future__ import annotations

import json
from pathlib import Path

from tests.lab.conftest import Lab
from tests.lab.l0_cli import inner_doctor, nestctl_l0, nestctl_l0_text


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
    # L0 here is a root directory without /proc/cpuinfo or KVM module (this machine is no KVM
    # host): its host link is unknown, never "broken". L1's own view (its agent) shows svm
    # usable now, which outranks the unread link: VM 101 (tagged nested) is ready.
    assert vm["chain"]["host"] == "unknown"
    assert (vm["wants_nested"], vm["intent"], vm["verdict"]) == (True, "tag", "ready")
    assert (body["verdict"], code) == ("ready", 0)


def test_tree_l0_l1_l2(lab: Lab, l0_root: Path, tmp_path: Path, artifacts: Path) -> None:
    # Every L1 describes itself (run inside it through its agent); L0 ties them to its VMs.
    args = ["tree", "--root", str(l0_root), "--guests"]
    for l1 in lab.all:
        doc = inner_doctor(l1, tmp_path / f"l1-{l1.spec.vmid}.json")
        args += ["--inner", f"{l1.spec.vmid}={doc}"]
    _code, body = nestctl_l0(*args)
    (artifacts / "tree.json").write_text(json.dumps(body, indent=2) + "\n")
    (artifacts / "tree.txt").write_text(nestctl_l0_text(*args))
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
    # L2 guests with nothing wrong are ready, though they host no L3 (issue 18) ...
    assert all(vm["verdict"] == "ready" for vm in l2.values())
    # ... and L1 101 is ready: it hosts the L2s, and its guest sees svm usable.
    assert vms[101]["broken_link"] is None
    assert vms[101]["verdict"] == "ready"
    # The two broken L1s sit beside it, each with its own first broken link.
    assert vms[103]["broken_link"] == "config"
    assert vms[102]["children"][0]["verdict"] == "not-ready"
