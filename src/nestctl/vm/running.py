"""The QEMU process of a running VM, read as Proxmox itself reads it (reference §5.4).

pid file `/var/run/qemu-server/<vmid>.pid` -> `/proc/<pid>/cmdline` (NUL-separated). A process
counts as the VM only when argv[0] ends in `kvm` or is `.../qemu-*`, its `-pidfile` names that pid
file and it is alive: the same three checks as `vm_running_locally`. Options are read the way
`parse_cmdline` does: a later duplicate wins, so the last `-cpu` is the one QEMU uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nestctl.host.pidfiles import (
    PID_DIRS,
    PidfileCheck,
    check_pidfile,
    is_qemu_program,
    split_cmdline,
)
from nestctl.machine import Machine

__all__ = ["PID_DIRS", "is_qemu_program", "split_cmdline"]  # re-exported for older callers

#: get_cpu_from_running_vm's sanitising pattern (CPUConfig.pm l.292).
_CPU_SANE_RE = re.compile(r"^((?>[+-]?[\w\-\._=]+,?)+)$", re.ASCII)


@dataclass(frozen=True, slots=True)
class RunningVm:
    """What the running process says; `cpu_arg` is None when it has no -cpu (QEMU's default)."""

    vmid: int
    pid: int
    argv: tuple[str, ...]
    cpu_arg: str | None
    machine: str | None
    accel_tcg: bool = False


@dataclass(frozen=True, slots=True)
class RunningCheck:
    """The outcome of looking for a VM's process: running (with its facts) or why not."""

    running: bool | None  # None: could not check (e.g. the pid file is not readable)
    vm: RunningVm | None = None
    reason: str | None = None  # why it is not running / could not be checked


def parse_options(argv: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """`-opt value` pairs as parse_cmdline reads them; a later duplicate wins.

    An option followed by another option (or by nothing) is a flag with value None.
    """
    opts: dict[str, str | None] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name = arg.lstrip("-")
            if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                opts[name] = argv[i + 1]
                i += 2
                continue
            opts[name] = None
        i += 1
    return opts


def last_option(argv: list[str] | tuple[str, ...], name: str) -> str | None:
    """The value of the last `-name value` (or `--name value`) in argv, QEMU's own rule."""
    value: str | None = None
    for i, arg in enumerate(argv[:-1]):
        if arg in (f"-{name}", f"--{name}"):
            value = argv[i + 1]
    return value


def machine_type(machine: str | None) -> str | None:
    """`type=pc-q35-9.2+pve1,accel=...` or `pc-q35-9.2` -> the machine type name."""
    if not machine:
        return None
    for part in machine.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            return key
        if key == "type":
            return value
    return None


def facts_from_argv(vmid: int, pid: int, argv: list[str]) -> RunningVm:
    cpu = last_option(argv, "cpu")
    machine = last_option(argv, "machine")
    accel = last_option(argv, "accel") or ""
    tcg = "accel=tcg" in (machine or "") or accel.startswith("tcg")
    return RunningVm(vmid, pid, tuple(argv), cpu, machine_type(machine), tcg)


def running_check(check: PidfileCheck) -> RunningCheck:
    """The VM layer's view of a pid-file check (`nestctl.host.pidfiles`)."""
    if check.running and check.pid is not None:
        return RunningCheck(True, facts_from_argv(check.vmid, check.pid, list(check.argv)))
    reason = check.reason
    if check.stale and reason is not None:
        reason += " (stale pid file)"
    return RunningCheck(check.running, reason=reason)


def check_running(host: Machine, vmid: int) -> RunningCheck:
    """Is VM `vmid` running on this node, and with which command line? (None: unknown)"""
    return running_check(check_pidfile(host, vmid))


def sane_cpu(cpu_arg: str) -> bool:
    """Whether Proxmox's live migration would accept this running -cpu (get_cpu_from_running_vm)."""
    return _CPU_SANE_RE.match(cpu_arg) is not None
