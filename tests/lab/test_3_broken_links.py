"""One link broken on purpose per test: nestctl must name the first broken one, and only that.

* L1 started with `-cpu EPYC,-svm` (VM 103 at L0): L1 is not a KVM host at all;
* kvm_amd loaded with nested=0 inside L1 (VM 102 at L0): L1 is a KVM host, its guests get no svm;
* an L2 config changed but not restarted (VM 203 inside the main L1).
"""

from __future__ import annotations

from pathlib import Path

from tests.lab.conftest import Lab
from tests.lab.l0_cli import inner_doctor, nestctl_l0
from tests.lab.stack import L1

#: What Proxmox starts for `cpu: qemu64` (nestctl's prediction of its -cpu): under KVM, QEMU
#: switches svm off for built-in models unless +svm is given.
QEMU64_AS_PROXMOX_STARTS_IT = "qemu64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt"


def _tree(l0_root: Path, tmp_path: Path, vmid: int, l1: L1) -> dict[int, dict]:
    """L0's VMs in `nestctl tree`, with L1 `vmid`'s own doctor report hung under its VM."""
    inner = inner_doctor(l1, tmp_path / f"l1-{vmid}.json")
    _code, body = nestctl_l0("tree", "--root", str(l0_root), "--inner", f"{vmid}={inner}")
    return {vm["vmid"]: vm for vm in body["tree"][0]["children"]}


def test_l1_started_without_svm(lab: Lab, l0_root: Path, tmp_path: Path) -> None:
    code, body = nestctl_l0("vm", "103", "--guest", "--no-qemu", "--root", str(l0_root))
    vm = body["vms"][0]
    # The first broken link is L1's config: its -cpu switches svm off. The guest confirms it.
    assert vm["broken_link"] == "config"
    assert vm["chain"]["guest"] == "broken"
    assert vm["guest"]["virt_flag"] is None
    assert vm["guest"]["kvm_usable"] is False
    assert code == 1
    # Inside, L1's own host check says why it cannot host VMs.
    _code, inside = lab.no_svm.nestctl("host")
    assert inside["host"]["virt_flag"] is None
    assert inside["host"]["dev_kvm"] is False
    assert "host.cpu.virt-not-passed-through" in {f["code"] for f in inside["findings"]}
    vms = _tree(l0_root, tmp_path, 103, lab.no_svm)
    assert vms[103]["broken_link"] == "config"
    [l1] = vms[103]["children"]
    assert l1["verdict"] == "not-ready"
    assert l1["children"] == []


def test_kvm_amd_nested_off_inside_l1(lab: Lab, l0_root: Path, tmp_path: Path) -> None:
    # From L0, L1 itself is fine: svm visible, /dev/kvm usable ...
    _code, body = nestctl_l0("vm", "102", "--guest", "--no-qemu", "--root", str(l0_root))
    assert body["vms"][0]["chain"]["guest"] == "ok"
    # ... the break is one level down: L1's kvm_amd runs with nested=0.
    vms = _tree(l0_root, tmp_path, 102, lab.nested_off)
    [l1] = vms[102]["children"]
    assert l1["verdict"] == "not-ready"
    assert "host.nested.off" in {f["code"] for f in l1["findings"]}
    [l2] = l1["children"]
    assert (l2["vmid"], l2["broken_link"]) == (201, "host")
    # And L2 really sees no svm (its own view through its agent, asked inside L1).
    _code, inside = lab.nested_off.nestctl("vm", "201", "--guest", "--no-qemu")
    vm = inside["vms"][0]
    assert vm["guest"]["via"] == "agent"
    assert vm["guest"]["virt_flag"] is None
    assert vm["broken_link"] == "host"


def test_l2_config_changed_but_not_restarted(lab: Lab) -> None:
    l1 = lab.main
    try:
        l1.sh(f"lab-start-l2 203 qemu64 -- {QEMU64_AS_PROXMOX_STARTS_IT}")
        _code, before = l1.nestctl("vm", "203", "--no-qemu")
        vm = before["vms"][0]
        assert vm["running"] is True
        assert vm["restart_required"] is False
        assert vm["broken_link"] == "config"  # qemu64 under KVM: no svm for the guest
        # The admin fixes the config (cpu: host) but does not restart the VM.
        l1.sh("sed -i 's/^cpu: .*/cpu: host/' /etc/pve/qemu-server/203.conf")
        code, after = l1.nestctl("vm", "203", "--no-qemu")
        vm = after["vms"][0]
        assert vm["restart_required"] is True
        assert vm["chain"]["config"] == "ok"
        assert vm["broken_link"] == "process"  # the running QEMU still has the old -cpu
        assert vm["running_cpu_arg"] == QEMU64_AS_PROXMOX_STARTS_IT
        restart = [f for f in vm["findings"] if f["code"] == "vm.restart-required"]
        assert restart
        assert restart[0]["fix"] == "qm reboot 203"
        assert code == 1
    finally:
        l1.sh(
            "kill $(cat /var/run/qemu-server/203.pid) 2>/dev/null; "
            "rm -f /etc/pve/qemu-server/203.conf /var/run/qemu-server/203.pid; true"
        )
