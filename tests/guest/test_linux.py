"""Linux guest probes and rules against fake guest trees: the verdict a user gets and its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nestctl.findings import Verdict, verdict_for
from nestctl.guest.facts import HostSide
from nestctl.guest.linux import (
    classify_platform,
    kvm_access_from_mode,
    parse_group_file,
    parse_proc_status,
    probe_linux,
)
from nestctl.guest.report import guest_json, guest_report
from nestctl.guest.rules import guest_findings
from nestctl.machine import CommandResult, CommandStatus, Host, RecordingRunner
from tests.guest.linux_trees import cpuinfo, l1_kvm, tcg_guest
from tests.helpers import write_tree
from tests.privileges import needs_root

CONTRACT = {"os", "virt_flag", "dev_kvm", "kvm_usable", "accel", "level"}


def _judge(tmp_path: Path, tree: dict[str, str | bytes], hs: HostSide | None = None):  # type: ignore[no-untyped-def]
    write_tree(tmp_path, tree)
    facts = probe_linux(Host(tmp_path))
    found = guest_findings(facts, hs)
    return facts, found, {f.code: f for f in found}, guest_json(facts, found, hs)


def test_l1_under_kvm_is_usable(tmp_path: Path) -> None:
    _facts, found, codes, obj = _judge(tmp_path, l1_kvm())
    assert verdict_for(found) is Verdict.READY
    assert "guest.kvm.usable" in codes
    assert {k: obj[k] for k in CONTRACT} == {
        "os": "linux",
        "virt_flag": "svm",
        "dev_kvm": True,
        "kvm_usable": True,
        "accel": "kvm",
        "level": 1,
    }
    assert obj["hypervisor"] == "QEMU"
    assert obj["linux"]["module_nested"] is True
    assert obj["linux"]["lab"]["qemu_binaries"] == ["qemu-system-x86_64"]


def test_l2_warns_about_deep_nesting(tmp_path: Path) -> None:
    # The host side knows the Proxmox node is itself a VM (level 1), so this guest is level 2.
    _facts, found, codes, obj = _judge(tmp_path, l1_kvm(), HostSide(vmid=101, parent_level=1))
    assert obj["level"] == 2
    assert "more than two levels" in codes["guest.level.deep"].message
    assert verdict_for(found) is Verdict.READY  # a warning, not a failure


def test_tcg_is_told_apart_from_kvm(tmp_path: Path) -> None:
    facts, found, codes, obj = _judge(tmp_path, tcg_guest())
    assert obj["accel"] == "tcg"
    assert "guest.accel.tcg" in codes
    assert "--kvm 1" in (codes["guest.accel.tcg"].fix or "")
    assert facts.linux is not None
    certainties = {e.certainty for e in facts.linux.accel_evidence}
    assert "medium" in certainties  # absence of kvm-clock is evidence, not proof
    assert verdict_for(found) is Verdict.READY  # TCG emulates svm: /dev/kvm works, slowly


def test_tcg_without_flag_names_every_layer(tmp_path: Path) -> None:
    tree = tcg_guest()
    tree["/proc/cpuinfo"] = cpuinfo("AuthenticAMD", "Common KVM processor", "fpu hypervisor lm")
    del tree["/dev/kvm"]
    _facts, found, codes, obj = _judge(tmp_path, tree)
    fix = codes["guest.cpu.no-virt-flag"].fix or ""
    assert "nestctl host enable" in fix
    assert "qm set <vmid> --cpu host" in fix
    assert "qm reboot <vmid>" in fix
    assert "cannot be seen from inside" in fix
    assert "never vmx" in codes["guest.cpu.no-virt-flag"].message
    assert obj["virt_flag"] is None
    assert verdict_for(found) is Verdict.NOT_READY


def test_flag_visible_but_no_dev_kvm(tmp_path: Path) -> None:
    # qemu-e2e.md: -cpu kvm64,+svm shows svm, yet kvm_amd is refused and /dev/kvm never appears.
    tree = l1_kvm()
    del tree["/dev/kvm"]
    del tree["/sys/module/kvm_amd/parameters/nested"]
    _facts, found, codes, obj = _judge(tmp_path, tree)
    finding = codes["guest.kvm.module-not-loaded"]
    assert "modprobe kvm_amd" in (finding.fix or "")
    assert "may have been refused" in finding.message  # kvm core loaded, kvm_amd not
    assert (obj["virt_flag"], obj["dev_kvm"], obj["kvm_usable"]) == ("svm", False, False)
    assert verdict_for(found) is Verdict.NOT_READY


def test_vendor_mismatch_means_no_dev_kvm_ever(tmp_path: Path) -> None:
    tree = l1_kvm()
    tree["/proc/cpuinfo"] = cpuinfo("GenuineIntel", "Intel Xeon", "fpu hypervisor svm lm")
    del tree["/dev/kvm"]
    del tree["/sys/module/kvm_amd/parameters/nested"]
    _facts, found, codes, _obj = _judge(tmp_path, tree, HostSide(vmid=105))
    finding = codes["guest.cpu.vendor-mismatch"]
    assert "can never appear" in finding.message
    assert finding.fix == "on the Proxmox host: qm set 105 --cpu host, then qm reboot 105"
    assert verdict_for(found) is Verdict.NOT_READY


def test_host_side_names_the_broken_layer(tmp_path: Path) -> None:
    tree = l1_kvm()
    tree["/proc/cpuinfo"] = cpuinfo("AuthenticAMD", "Common KVM processor", "fpu hypervisor lm")
    del tree["/dev/kvm"]
    hs = HostSide(vmid=101, running_cpu="kvm64", exposes_virt=False, host_nested=True)
    _f, _found, codes, _obj = _judge(tmp_path, tree, hs)
    assert codes["guest.vm.cpu-no-virt"].fix == (
        "on the Proxmox host: qm set 101 --cpu host, then qm reboot 101"
    )
    _f, _found, codes, _obj = _judge(tmp_path, tree, HostSide(vmid=101, host_nested=False))
    assert "nestctl host enable" in (codes["guest.host.nested-off"].fix or "")


def test_dev_kvm_without_permission(tmp_path: Path) -> None:
    needs_root()  # chown of the fake /dev/kvm; CI runs as root, so there it never skips
    tree = l1_kvm()
    tree["/proc/self/status"] = (
        "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t1000 \n"
    )
    write_tree(tmp_path, tree)
    os.chown(tmp_path / "dev/kvm", 0, 104)
    (tmp_path / "dev/kvm").chmod(0o660)
    facts = probe_linux(Host(tmp_path))
    found = guest_findings(facts)
    codes = {f.code: f for f in found}
    assert "not in group kvm" in codes["guest.kvm.no-permission"].message
    assert codes["guest.kvm.no-permission"].fix == (
        "in this guest: sudo usermod -aG kvm alice, then log out and in again"
    )
    assert guest_json(facts, found)["kvm_usable"] is False
    # ... and once the user's process is in the kvm group, it opens.
    (tmp_path / "proc/self/status").write_text("Uid:\t1000\t1000\t1000\t1000\nGroups:\t104 1000\n")
    facts = probe_linux(Host(tmp_path))
    assert guest_json(facts, guest_findings(facts))["kvm_usable"] is True


@pytest.mark.parametrize(
    ("mode", "uid", "gids", "usable"),
    [
        (0o20660, 1000, [1000], False),  # crw-rw---- root:kvm, not in kvm
        (0o20660, 1000, [1000, 104], True),  # in kvm
        (0o20666, 1000, [1000], True),  # Debian's udev rule makes it world read-write
        (0o20600, 0, [0], True),  # root opens anything
        (0o20640, 1000, [104], False),  # group may read but not write
    ],
)
def test_kvm_access_from_mode(mode: int, uid: int, gids: list[int], usable: bool) -> None:
    access = kvm_access_from_mode(mode, 0, 104, uid=uid, gids=gids, group="kvm")
    assert access.usable is usable


def test_the_kernel_answer_wins_when_commands_run(tmp_path: Path) -> None:
    # A live guest: the `test -r -w` answer counts ACLs the mode bits do not show.
    def respond(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[:2] == ("sh", "-c"):
            return CommandResult(argv, CommandStatus.OK, 1)
        if argv[0] == "systemctl":
            return CommandResult(argv, CommandStatus.OK, 3, "inactive\n")
        return None

    write_tree(tmp_path, l1_kvm())
    host = Host(tmp_path, runner=RecordingRunner(respond))
    facts = probe_linux(host)
    codes = {f.code: f for f in guest_findings(facts)}
    assert "guest.kvm.no-permission" in codes
    assert (
        codes["guest.lab.libvirtd-inactive"].fix == "in this guest: systemctl enable --now libvirtd"
    )


def test_missing_systemctl_is_could_not_check_not_failure(tmp_path: Path) -> None:
    def respond(argv: tuple[str, ...]) -> CommandResult | None:
        return CommandResult(argv, CommandStatus.NOT_FOUND) if argv[0] == "systemctl" else None

    write_tree(tmp_path, l1_kvm())
    facts = probe_linux(Host(tmp_path, runner=RecordingRunner(respond)))
    found = guest_findings(facts)
    codes = {f.code: f for f in found}
    assert "could not check" in codes["guest.lab.libvirtd-unchecked"].message
    assert verdict_for(found) is Verdict.READY


def test_unreadable_cpuinfo_is_could_not_check(tmp_path: Path) -> None:
    tree = l1_kvm()
    del tree["/proc/cpuinfo"]
    del tree["/dev/kvm"]
    write_tree(tmp_path, tree)
    report = guest_report(Host(tmp_path), os="linux")
    assert report.exit_code == 2
    assert report.findings[0].code == "guest.cpuinfo.unreadable"


def test_guest_module_nested_off_is_reported(tmp_path: Path) -> None:
    tree = l1_kvm()
    tree["/sys/module/kvm_amd/parameters/nested"] = "0\n"
    _f, found, codes, _obj = _judge(tmp_path, tree)
    assert "cannot host VMs in turn" in codes["guest.kvm.nested-off"].message
    assert verdict_for(found) is Verdict.READY


def test_no_qemu_is_a_lab_warning(tmp_path: Path) -> None:
    tree = l1_kvm()
    del tree["/usr/bin/qemu-system-x86_64"]
    del tree["/usr/sbin/libvirtd"]
    _f, found, codes, _obj = _judge(tmp_path, tree)
    assert "guest.lab.no-qemu" in codes
    assert "guest.lab.no-libvirt" in codes
    assert verdict_for(found) is Verdict.READY


def test_bare_metal_and_other_hypervisors(tmp_path: Path) -> None:
    tree = l1_kvm()
    tree["/proc/cpuinfo"] = cpuinfo("AuthenticAMD", "AMD EPYC", "fpu svm lm npt")
    for p in ("/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name"):
        tree[p] = "Supermicro\n"
    tree["/sys/devices/system/clocksource/clocksource0/available_clocksource"] = "tsc hpet\n"
    _f, _found, _codes, obj = _judge(tmp_path, tree)
    assert (obj["accel"], obj["level"]) == ("none", None)
    assert classify_platform("VMware, Inc.", "VMware7,1", None) == "VMware"
    assert classify_platform("Microsoft Corporation", "Virtual Machine", None) == (
        "Microsoft Hyper-V"
    )
    assert classify_platform(None, None, "xen") == "Xen"
    assert classify_platform("Dell Inc.", "PowerEdge R640", None) is None


def test_status_and_group_parsers() -> None:
    assert parse_proc_status("Uid:\t1000\t1001\t1001\t1001\nGid:\t5\t5\t5\t5\nGroups:\t7 8\n") == (
        1001,
        frozenset({5, 7, 8}),
    )
    assert parse_group_file("kvm:x:104:alice,bob\nbroken\n") == {"kvm": (104, ("alice", "bob"))}


def test_another_kvm_module_is_reported_as_found(tmp_path: Path) -> None:
    # A microVM whose /dev/kvm comes from kvm_pvm: no vmx/svm, no `nested` parameter.
    write_tree(
        tmp_path,
        {
            "/proc/cpuinfo": "processor : 0\nvendor_id : AuthenticAMD\nflags : fpu hypervisor\n",
            "/sys/module/kvm_pvm/initstate": "live\n",
            "/sys/module/kvm/parameters/ignore_msrs": "N\n",
        },
    )
    facts = probe_linux(Host(tmp_path))
    assert facts.linux is not None
    assert facts.linux.kvm_module == "kvm_pvm"
    assert facts.linux.module_nested is None
