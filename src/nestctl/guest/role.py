"""Whether a Linux guest is a hypervisor itself: a Proxmox VE node, or running VMs of its own.

Read only through the `Machine` protocol (inside the guest, a fake tree, or the guest agent), so
`vm --guest` can tell that a VM hosts an inner layer. Unknown stays None, never "no": a guest
agent that refuses guest-exec cannot list /proc, and then whether VMs run is not known.
"""

from __future__ import annotations

from nestctl.guest.facts import RoleFacts
from nestctl.host.pidfiles import is_qemu_program, split_cmdline
from nestctl.machine import Machine, ReadStatus
from nestctl.parse import is_ascii_digits

#: What a Proxmox VE node has: pve-manager's dpkg file list and `pveversion`, qemu-server's `qm`
#: (files, so they are read even where guest-exec is refused), and the pmxcfs mount /etc/pve.
PVE_FILES = ("/var/lib/dpkg/info/pve-manager.list", "/usr/bin/pveversion", "/usr/bin/qm")
PVE_DIRS = ("/etc/pve",)
#: More processes than this are not all read (each is one read through the agent; `ps`, one
#: command, is asked first).
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
    for path in PVE_DIRS if not found else ():  # one command each through the agent
        presence = machine.exists(path)
        found += [path] if presence.present else []
        unknown = unknown or presence.present is None
    if found:
        return True, tuple(found)
    return (None if unknown else False), ()


def _from_ps(machine: Machine) -> tuple[str, ...] | None:
    """Through `ps` (one command, where guest-exec and procps are there): None when it did not
    run. Only Proxmox's `kvm` needs its cmdline read (one read each)."""
    result = machine.run(["ps", "-e", "-o", "pid=,comm="], timeout=15.0)
    if not result.ok:
        return None
    found: list[str] = []
    for line in result.stdout.splitlines():
        pid, _, name = line.strip().partition(" ")
        name = name.strip()
        if not is_ascii_digits(pid):
            continue
        if _vm_process(machine, pid, name):
            found.append(f"{name} (pid {pid})")
    return tuple(found)


def _vm_process(machine: Machine, pid: str, name: str) -> bool:
    """Whether process `pid` named `name` runs a VM (a `kvm` one is judged by its cmdline)."""
    cmdline = None
    if name == "kvm":
        cmd = machine.read(f"/proc/{pid}/cmdline", max_bytes=4096)
        cmdline = cmd.text if cmd.ok else None
    return _is_vm_process(name, cmdline)


def _from_proc(machine: Machine) -> tuple[str, ...] | None:
    """Each /proc/<pid>/comm read (where no command runs: a fake tree, no procps)."""
    listing = machine.listdir("/proc")
    if not listing.ok:
        return None
    pids = sorted((n for n in listing.names if is_ascii_digits(n)), key=int)
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
        if _vm_process(machine, pid, name):
            found.append(f"{name} (pid {pid})")
    if not found and (unread or len(pids) > MAX_PROCESSES):
        return None
    return tuple(found)


def probe_running_vms(machine: Machine) -> tuple[str, ...] | None:
    """The QEMU/KVM processes running in this guest ("kvm (pid 1234)"), or None when that could
    not be told (no command ran and /proc could not be listed, or a process was unreadable)."""
    found = _from_ps(machine)
    return found if found is not None else _from_proc(machine)


def probe_role(machine: Machine) -> RoleFacts:
    pve, evidence = probe_pve_node(machine)
    return RoleFacts(pve_node=pve, pve_evidence=evidence, running_vms=probe_running_vms(machine))
