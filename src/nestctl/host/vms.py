"""QEMU processes that hold KVM and so block a reload of the KVM module.

Proxmox VMs are found the way Proxmox itself checks them (qemu-server `vm_running_locally`): the pid
in /var/run/qemu-server/<vmid>.pid must be alive and its argv[0] must end in ``kvm`` or be
``.../qemu-*``. Other QEMU processes count when their command line asks for KVM or one of their
file descriptors is /dev/kvm.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from nestctl.machine import Host

PID_DIRS = ("/var/run/qemu-server", "/run/qemu-server")

_QEMU_ARGV0 = re.compile(r"(^|/)(qemu-[^/]*|[^/]*kvm)$")


class KvmProcess(NamedTuple):
    pid: int
    argv0: str
    why: str  # "-enable-kvm", "accel=kvm", "/dev/kvm open"


class RunningVms(NamedTuple):
    vms: dict[int, int]  # Proxmox vmid -> pid
    others: tuple[KvmProcess, ...]  # QEMU holding KVM outside Proxmox's pid files
    stale_pidfiles: tuple[str, ...]  # pid files whose process is gone or is not QEMU


def read_argv(host: Host, pid: int) -> list[str] | None:
    text = host.read_text(f"/proc/{pid}/cmdline")
    if text is None:
        return None
    return [a for a in text.split("\0") if a] or None


def is_qemu(argv: list[str]) -> bool:
    return bool(argv) and _QEMU_ARGV0.search(argv[0]) is not None


def _pid(text: str | None) -> int | None:
    if text is None:
        return None
    value = text.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    return int(value)


def proxmox_vms(host: Host) -> tuple[dict[int, int], list[str]]:
    """vmid -> pid of running Proxmox VMs, and pid files that do not point at a live QEMU."""
    vms: dict[int, int] = {}
    stale: list[str] = []
    for directory in PID_DIRS:
        for path in host.glob(directory, "*.pid").paths():
            stem = path.rsplit("/", 1)[-1].removesuffix(".pid")
            if not stem.isascii() or not stem.isdigit():
                continue
            vmid = int(stem)
            if vmid in vms:
                continue  # /var/run is /run on a real host: the same file twice
            pid = _pid(host.read_text(path))
            argv = read_argv(host, pid) if pid is not None else None
            if pid is None or argv is None or not is_qemu(argv):
                stale.append(path)
                continue
            vms[vmid] = pid
    return vms, stale


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
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in known_pids:
            continue
        argv = read_argv(host, pid)
        if argv is None or not is_qemu(argv):
            continue
        why = _kvm_reason(host, pid, argv)
        if why is not None:
            found.append(KvmProcess(pid, argv[0], why))
    return sorted(found, key=lambda p: p.pid)


def running_vms(host: Host, *, scan_processes: bool = True) -> RunningVms:
    """Proxmox VMs from their pid files and, when `scan_processes`, other QEMU holding KVM.

    The caller may skip the /proc scan when the vendor module's refcount is 0: every open /dev/kvm
    holds a reference on it (the device's file operations belong to kvm_intel/kvm_amd), so then
    no process can be holding KVM.
    """
    vms, stale = proxmox_vms(host)
    others = other_kvm_processes(host, set(vms.values())) if scan_processes else []
    return RunningVms(dict(sorted(vms.items())), tuple(others), tuple(stale))
