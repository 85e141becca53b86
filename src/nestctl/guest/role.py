"""Whether a Linux guest is a hypervisor itself: a Proxmox VE node, or running VMs of its own.

Read only through the `Machine` protocol (inside the guest, a fake tree, or the guest agent), so
`vm --guest` can tell that a VM hosts an inner layer. Unknown stays None, never "no": a guest
agent that refuses guest-exec cannot list /proc, and then whether VMs run is not known.
"""

from __future__ import annotations

from nestctl.guest.facts import RoleFacts
from nestctl.host.pidfiles import is_qemu_program, split_cmdline
from nestctl.machine import Machine, ReadStatus

#: What a Proxmox VE node has: pve-manager's dpkg file list and `pveversion`, qemu-server's `qm`
#: (files, so they are read even where guest-exec is refused), and the pmxcfs mount /etc/pve.
PVE_FILES = ("/var/lib/dpkg/info/pve-manager.list", "/usr/bin/pveversion", "/usr/bin/qm")
PVE_DIRS = ("/etc/pve",)
#: More processes than this are not all read (each is one read through the agent).
MAX_PROCESSES = 4096


def _is_vm_process(comm: str, cmdline: str | None) -> bool:
    """QEMU running a VM: `qemu-system-*`/`qemu-kvm`, or Proxmox's `kvm` (a user process: kernel
    threads have an empty cmdline, and their names such as `kvm-pit/42` never equal `kvm`)."""
    if comm.startswith("qemu-system-") or comm == "qemu-kvm":
        return True
    if comm != "kvm":
        return False
    argv = split_cmdline(cmdline or "")
    return bool(argv) and is_qemu_program(argv[0])


def probe_pve_node(machine: Machine) -> tuple[bool | None, tuple[str, ...]]:
    """(whether this is a Proxmox VE node, the paths that say so); None when nothing could tell."""
    found: list[str] = []
    unknown = False
    for path in PVE_FILES:
        status = machine.read(path, max_bytes=64).status
        if status in (ReadStatus.OK, ReadStatus.TRUNCATED):
            found.append(path)
        elif status is not ReadStatus.MISSING:
            presence = machine.exists(path)  # e.g. 0700 and not root: it may still be seen
            found += [path] if presence.present else []
            unknown = unknown or presence.present is None
    for path in PVE_DIRS:
        presence = machine.exists(path)
        found += [path] if presence.present else []
        unknown = unknown or presence.present is None
    if found:
        return True, tuple(found)
    return (None if unknown else False), ()


def probe_running_vms(machine: Machine) -> tuple[str, ...] | None:
    """The QEMU/KVM processes running in this guest ("kvm (pid 1234)"), or None when /proc could
    not be listed (or a process could not be read and none was found)."""
    listing = machine.listdir("/proc")
    if not listing.ok:
        return None
    pids = sorted((n for n in listing.names if n.isascii() and n.isdigit()), key=int)
    found: list[str] = []
    unread = False
    for pid in pids[:MAX_PROCESSES]:
        comm = machine.read(f"/proc/{pid}/comm", max_bytes=256)
        if comm.status is ReadStatus.MISSING:
            continue  # it exited since the listing
        if not comm.ok or comm.text is None:
            unread = True
            continue
        name = comm.text.strip()
        cmdline = None
        if name == "kvm":
            cmd = machine.read(f"/proc/{pid}/cmdline", max_bytes=4096)
            cmdline = cmd.text if cmd.ok else None
        if _is_vm_process(name, cmdline):
            found.append(f"{name} (pid {pid})")
    if not found and (unread or len(pids) > MAX_PROCESSES):
        return None
    return tuple(found)


def probe_role(machine: Machine) -> RoleFacts:
    pve, evidence = probe_pve_node(machine)
    return RoleFacts(pve_node=pve, pve_evidence=evidence, running_vms=probe_running_vms(machine))
