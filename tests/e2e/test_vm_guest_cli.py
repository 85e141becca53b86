"""`nestctl vm VMID --guest` end to end: a fake Proxmox node whose VM is a real booted guest.

The VM runs under TCG (`kvm: 0`, as Proxmox runs a VM without KVM), so the host-side prediction,
asked of the real QEMU, and the guest's own view through the real agent must agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from tests.e2e.conftest import PVE_VMID
from tests.e2e.guest_vm import BootedGuest
from tests.e2e.pve_root import make_pve_root
from tests.helpers import write_tree
from tests.vm.vmtrees import AMD_CPUINFO, PVE92, dpkg_status, qemu_argv

pytestmark = pytest.mark.e2e


def node_with_guest(tmp_path: Path, booted: BootedGuest) -> Path:
    pid = booted.pid
    argv = [
        *qemu_argv(PVE_VMID, booted.cpu),
        "-accel",
        "tcg",
    ]  # Proxmox's running check needs -pidfile
    root = make_pve_root(
        tmp_path, PVE_VMID, booted.cpu, booted.qga_socket, pid=pid, argv=argv, extra_conf="kvm: 0\n"
    )
    write_tree(
        root,
        {
            f"/proc/{pid}/stat": f"{pid} (kvm) S 1 {pid} {pid} 0 -1 4194560",
            "/proc/cpuinfo": AMD_CPUINFO,
            "/sys/module/kvm_amd/parameters/nested": "1\n",
            "/dev/kvm": "",
            "/etc/hostname": "pve1\n",
            "/var/lib/dpkg/status": dpkg_status(PVE92),
        },
    )
    return root


def vm_guest_json(root: Path) -> tuple[int, dict[str, Any]]:
    args = ["vm", str(PVE_VMID), "--guest", "--use-qemu", "--json", "--root", str(root)]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    data = json.loads(result.output)
    return result.exit_code, data["vms"][0]


def test_vm_guest_view_is_what_the_guest_saw(tmp_path: Path, booted: BootedGuest) -> None:
    rc, vm = vm_guest_json(node_with_guest(tmp_path, booted))
    guest = vm["guest"]
    assert guest is not None, vm["findings"]
    assert guest["via"] == "agent"
    assert guest["os"] == "linux"
    sees_svm = "svm" in booted.flags
    assert guest["virt_flag"] == ("svm" if sees_svm else None)
    assert guest["dev_kvm"] is booted.dev_kvm
    assert guest["kvm_usable"] is booted.dev_kvm
    assert guest["accel"] == "tcg"
    # The host side (config -> running -cpu -> QEMU's answer) predicted the flag the guest sees.
    assert vm["running"] is True
    assert vm["running_cpu_arg"] == booted.cpu
    assert vm["nested"]["exposed"] is sees_svm
    assert vm["nested"]["source"] != "table"
    # Usable nesting needs both: the flag and a /dev/kvm the guest's KVM module could create.
    assert (rc == 0) is (sees_svm and booted.dev_kvm)


def test_flag_visible_but_no_dev_kvm_names_the_guest_link(
    tmp_path: Path, booted_guests: dict[str, BootedGuest]
) -> None:
    booted = booted_guests["kvm64,+svm"]  # svm behind an Intel vendor string: no /dev/kvm
    rc, vm = vm_guest_json(node_with_guest(tmp_path, booted))
    assert rc == 1
    assert vm["guest"]["virt_flag"] == "svm"
    assert vm["guest"]["kvm_usable"] is False
    assert vm["broken_link"] == "guest"
    assert any("vendor" in f["message"] for f in vm["findings"])
