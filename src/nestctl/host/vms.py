"""QEMU processes that hold KVM and so block a reload of the KVM module.

Proxmox VMs are found from their pid files (`nestctl.host.pidfiles`, the way qemu-server's
`vm_running_locally` checks them). Other QEMU processes count when their command line asks for KVM
or one of their file descriptors is /dev/kvm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from nestctl.host.pidfiles import PidfileScan, is_qemu_program, scan_pidfiles, split_cmdline
from nestctl.parse import is_ascii_digits

if TYPE_CHECKING:
    from nestctl.machine import Host


class KvmProcess(NamedTuple):
    pid: int
    argv0: str
    why: str  # "-enable-kvm", "accel=kvm", "/dev/kvm open"


class RunningVms(NamedTuple):
    vms: dict[int, int]  # Proxmox vmid -> pid, of the VMs known to run
    others: tuple[KvmProcess, ...]  # QEMU holding KVM outside Proxmox's pid files
    stale_pidfiles: tuple[str, ...]  # pid files whose process is gone or is not QEMU
    unknown: dict[int, str]  # vmid -> why we cannot tell whether it runs
    problems: tuple[str, ...]  # pid-file directories that could not be listed

    @property
    def complete(self) -> bool:
        """Every Proxmox VM's state is known (otherwise `vms` may miss running ones)."""
        return not self.unknown and not self.problems


def read_argv(host: Host, pid: int) -> list[str] | None:
    read = host.read(f"/proc/{pid}/cmdline")
    if not read.ok or read.text is None:
        return None
    return [a for a in split_cmdline(read.text) if a] or None


def _kvm_reason(host: Host, pid: int, argv: list[str]) -> str | None:
    if "-enable-kvm" in argv:
        return "-enable-kvm"
    for i, arg in enumerate(argv):
        if "accel=kvm" in arg or (arg == "-accel" and argv[i + 1 : i + 2] == ["kvm"]):
            return "accel=kvm"
        if arg.startswith("kvm,") and argv[i - 1 : i] == ["-accel"]:
            return "accel=kvm"
    for fd in host.listdir(f"/proc/{pid}/fd").names:
        if host.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/kvm":
            return "/dev/kvm open"
    return None


def other_kvm_processes(host: Host, known_pids: set[int]) -> list[KvmProcess]:
    found: list[KvmProcess] = []
    for name in host.listdir("/proc").names:
        if not is_ascii_digits(name):
            continue
        pid = int(name)
        if pid in known_pids:
            continue
        argv = read_argv(host, pid)
        if argv is None or not is_qemu_program(argv[0]):
            continue
        why = _kvm_reason(host, pid, argv)
        if why is not None:
            found.append(KvmProcess(pid, argv[0], why))
    return sorted(found, key=lambda p: p.pid)


def from_scan(scan: PidfileScan, others: list[KvmProcess] | None = None) -> RunningVms:
    return RunningVms(scan.running, tuple(others or ()), scan.stale, scan.unknown, scan.problems)


def running_vms(host: Host, *, scan_processes: bool = True) -> RunningVms:
    """Proxmox VMs from their pid files and, when `scan_processes`, other QEMU holding KVM.

    The caller may skip the /proc scan when the vendor module's refcount is 0: every open /dev/kvm
    holds a reference on it (the device's file operations belong to kvm_intel/kvm_amd), so then
    no process can be holding KVM.
    """
    scan = scan_pidfiles(host)
    # Only VMs known to run are skipped: a stale pid file's pid may be another QEMU with KVM.
    others = other_kvm_processes(host, set(scan.running.values())) if scan_processes else []
    return from_scan(scan, others)
