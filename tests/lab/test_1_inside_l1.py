"""nestctl inside L1, as the admin of a nested node runs it (through L1's guest agent)."""

from __future__ import annotations

from tests.lab.conftest import Lab


def test_host_on_the_l1_kvm_host(lab: Lab) -> None:
    code, body = lab.main.nestctl("host")
    host = body["host"]
    assert code == 0, body["findings"]
    assert (host["vendor"], host["virt_flag"], host["kvm_module"]) == ("amd", "svm", "kvm_amd")
    assert host["dev_kvm"] is True
    assert host["nested"]["live"] is True
    # After a reboot: what the file L1's admin wrote says, and nestctl names that file.
    assert host["nested"]["after_reboot"] is True
    assert host["nested"]["decided_by"] == "/etc/modprobe.d/kvm-amd.conf:1"
    assert host["level"] == "L1+"
    assert host["virtualized"] is True
    # The running L2 VMs, found by their Proxmox pid files and real QEMU processes holding KVM.
    assert host["running_vms"] == [201, 202]
    assert host["refcount"] >= 2  # each L2 QEMU holds kvm_amd


def test_enable_dry_run_plans_no_reload_while_l2_runs(lab: Lab) -> None:
    before = lab.nested_off.read("/etc/modprobe.d/kvm-amd.conf")
    code, body = lab.nested_off.nestctl("host", "enable", "--dry-run")
    change = body["change"]
    assert code == 0
    assert change["dry_run"] is True
    assert change["outcome"] == "planned"
    assert [s["path"] for s in change["steps"] if s["kind"] == "write"] == [
        "/etc/modprobe.d/kvm-amd.conf"
    ]
    assert not [s for s in change["steps"] if s["kind"] == "run"]  # no modprobe -r / modprobe
    assert any("VM 201 is running" in b for b in change["reload_blockers"])
    # A dry run changes nothing: the file and the live parameter are as they were.
    assert lab.nested_off.read("/etc/modprobe.d/kvm-amd.conf") == before
    assert lab.nested_off.read("/sys/module/kvm_amd/parameters/nested").strip() == b"0"


def test_guest_view_of_l1_itself(lab: Lab) -> None:
    code, body = lab.main.nestctl("guest")
    guest = body["guest"]
    assert guest["kvm_usable"] is True
    assert guest["virt_flag"] == "svm"
    assert guest["accel"] == "tcg"  # L1 runs under emulation, and says so
    codes = {f["code"]: f["severity"] for f in body["findings"]}
    assert codes.get("guest.accel.tcg") == "warning"
    assert code == 0


def test_vm_guest_from_l1_into_l2(lab: Lab) -> None:
    code, body = lab.main.nestctl("vm", "201", "--guest", "--no-qemu")
    vm = body["vms"][0]
    assert vm["running"] is True
    assert vm["restart_required"] is False
    assert vm["running_cpu_arg"] == vm["cpu_arg"] == "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    guest = vm["guest"]
    assert guest["via"] == "agent"
    # L2's own view: svm visible because L1 runs it with -cpu host, under L1's real KVM.
    assert guest["virt_flag"] == "svm"
    assert guest["linux"]["hypervisor_flag"] is True
    assert guest["accel"] == "kvm"
    assert guest["dev_kvm"] is True
    assert guest["level"] == 2  # L1 is a VM itself, so its guests are (at least) level 2
    assert vm["chain"] == {"host": "ok", "config": "ok", "process": "ok", "guest": "ok"}
    assert vm["broken_link"] is None
    assert code == 0, body["findings"]
