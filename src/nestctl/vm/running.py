"""The QEMU process of a running VM, read as Proxmox itself reads it (reference §5.4).

pid file `/var/run/qemu-server/<vmid>.pid` -> `/proc/<pid>/cmdline` (NUL-separated). A process
counts as the VM only when argv[0] ends in `kvm` or is `.../qemu-*`, its `-pidfile` names that pid
file and it is alive: the same three checks as `vm_running_locally`. Options are read the way
`parse_cmdline` does: a later duplicate wins, so the last `-cpu` is the one QEMU uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nestctl.machine import Machine

#: Where qemu-server keeps pid files; /var/run is a symlink to /run on Debian, a fake tree may
#: hold either, and Proxmox names the /var/run path in `-pidfile`.
PID_DIRS = ("/var/run/qemu-server", "/run/qemu-server")

_PID_RE = re.compile(r"^\s*(\d+)\s*$")
#: get_cpu_from_running_vm's sanitising pattern (CPUConfig.pm l.292).
_CPU_SANE_RE = re.compile(r"^((?>[+-]?[\w\-\._=]+,?)+)$")


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

    running: bool
    vm: RunningVm | None = None
    reason: str | None = None  # why it is not running / could not be checked


def split_cmdline(data: str) -> list[str]:
    """argv from /proc/<pid>/cmdline: NUL-separated, with a trailing NUL."""
    parts = data.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def is_qemu_program(argv0: str) -> bool:
    """Proxmox's test: argv[0] ends in `kvm` or its base name starts with `qemu-`."""
    return argv0.endswith("kvm") or re.search(r"(?:^|/)qemu-[^/]*$", argv0) is not None


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


def _same_run_path(path: str) -> str:
    """/var/run is /run on Debian: compare pid file paths with that in mind."""
    return path.removeprefix("/var")


def _process_alive(host: Machine, pid: int) -> bool:
    """Like check_process_running: /proc/<pid>/stat exists and the process is not a zombie."""
    stat = host.read(f"/proc/{pid}/stat")
    if stat.ok and stat.text:
        # "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses.
        state = stat.text.rpartition(")")[2].split()
        return not state or state[0] != "Z"
    return host.exists(f"/proc/{pid}").present is True


def check_running(host: Machine, vmid: int) -> RunningCheck:
    """Is VM `vmid` running on this node, and with which command line?"""
    pidfile = None
    pid_text = None
    for d in PID_DIRS:
        read = host.read(f"{d}/{vmid}.pid")
        if read.ok:
            pidfile, pid_text = f"{d}/{vmid}.pid", read.text or ""
            break
        if read.status.value == "unreadable":
            return RunningCheck(False, reason=f"{d}/{vmid}.pid: {read.error}")
    if pidfile is None or pid_text is None:
        return RunningCheck(False, reason="no pid file")
    m = _PID_RE.match(pid_text)
    if m is None:
        return RunningCheck(False, reason=f"{pidfile} holds no pid")
    pid = int(m.group(1))
    cmd = host.read(f"/proc/{pid}/cmdline")
    if not cmd.ok or not cmd.text:
        return RunningCheck(False, reason=f"process {pid} from {pidfile} is gone (stale pid file)")
    argv = split_cmdline(cmd.text)
    if not argv or not is_qemu_program(argv[0]):
        return RunningCheck(False, reason=f"process {pid} is not QEMU (stale pid file)")
    named = last_option(argv, "pidfile")
    if named is None or _same_run_path(named) != _same_run_path(pidfile):
        return RunningCheck(False, reason=f"process {pid} does not use {pidfile} (stale pid file)")
    if not _process_alive(host, pid):
        return RunningCheck(False, reason=f"process {pid} is not running (zombie)")
    return RunningCheck(True, facts_from_argv(vmid, pid, argv))


def sane_cpu(cpu_arg: str) -> bool:
    """Whether Proxmox's live migration would accept this running -cpu (get_cpu_from_running_vm)."""
    return _CPU_SANE_RE.match(cpu_arg) is not None
