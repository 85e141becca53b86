"""Which Proxmox VMs run on this node, read from qemu-server's pid files as Proxmox reads them.

The one implementation behind `nestctl host` (VMs blocking a module reload), `nestctl vm` (which
VMs run, with which command line) and `doctor`. qemu-server's `vm_running_locally` counts a VM as
running when `/var/run/qemu-server/<vmid>.pid` holds a pid whose process is alive, whose argv[0]
ends in ``kvm`` or is ``.../qemu-*``, and whose ``-pidfile`` names that very file.

QEMU writes its pid files 0600 root: as another user they cannot be read, and then whether the VM
runs is unknown (``running`` None), never "not running".
"""

from __future__ import annotations

from nestctl.machine import Machine, ReadStatus, Record
from nestctl.parse import is_ascii_digits, parse_uint

#: Where qemu-server keeps pid files; /var/run is a symlink to /run on Debian, a fake tree may
#: hold either, and Proxmox names the /var/run path in `-pidfile`.
PID_DIRS = ("/var/run/qemu-server", "/run/qemu-server")

#: What lets a user read them: QEMU creates the pid files 0600, owned by root.
PIDFILE_FIX = "run as root to read QEMU's pid files"


class PidfileCheck(Record):
    """Whether one VM runs: True (with its pid and argv), False (and why not) or None (unknown)."""

    __slots__ = ("argv", "pid", "pidfile", "reason", "running", "vmid")
    vmid: int
    running: bool | None
    pid: int | None
    argv: tuple[str, ...]
    pidfile: str | None  # the pid file read, when there is one
    reason: str | None  # why not running, or why it could not be checked

    def __init__(
        self,
        vmid: int,
        running: bool | None,
        pid: int | None = None,
        *,
        argv: tuple[str, ...] = (),
        pidfile: str | None = None,
        reason: str | None = None,
    ) -> None:
        self._set(vmid=vmid, running=running, pid=pid, argv=argv, pidfile=pidfile, reason=reason)

    @property
    def stale(self) -> bool:
        """A pid file whose process is gone or is not this VM's QEMU."""
        return self.pidfile is not None and self.running is False


class PidfileScan(Record):
    """Every VM that has a pid file, checked; and the pid-file directories we could not list."""

    __slots__ = ("checks", "problems")
    checks: dict[int, PidfileCheck]  # by VMID, sorted
    problems: tuple[str, ...]  # "<dir>: not-permitted (...)": VMs may be missing from checks

    def __init__(self, checks: dict[int, PidfileCheck], problems: tuple[str, ...] = ()) -> None:
        self._set(checks=checks, problems=problems)

    def check(self, vmid: int) -> PidfileCheck:
        """The check for `vmid`; without a pid file it is not running, unless a directory
        could not be listed (then unknown)."""
        found = self.checks.get(vmid)
        if found is not None:
            return found
        if self.problems:
            return PidfileCheck(vmid, None, reason="; ".join(self.problems))
        return PidfileCheck(vmid, False, reason="no pid file")

    @property
    def running(self) -> dict[int, int]:
        """VMID -> pid of the VMs known to run."""
        return {c.vmid: c.pid for c in self.checks.values() if c.running and c.pid is not None}

    @property
    def unknown(self) -> dict[int, str]:
        """VMID -> why it could not be checked."""
        return {c.vmid: c.reason or "unknown" for c in self.checks.values() if c.running is None}

    @property
    def stale(self) -> tuple[str, ...]:
        return tuple(c.pidfile for c in self.checks.values() if c.stale and c.pidfile)

    @property
    def complete(self) -> bool:
        """Every VM's state is known: nothing unreadable, every directory listed."""
        return not self.problems and all(c.running is not None for c in self.checks.values())


def is_qemu_program(argv0: str) -> bool:
    """Proxmox's test: argv[0] ends in `kvm` or its base name starts with `qemu-`."""
    return argv0.endswith("kvm") or argv0.rpartition("/")[2].startswith("qemu-")


def split_cmdline(data: str) -> list[str]:
    """argv from /proc/<pid>/cmdline: NUL-separated, with a trailing NUL."""
    parts = data.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _last_option(argv: list[str], name: str) -> str | None:
    value: str | None = None
    for i, arg in enumerate(argv[:-1]):
        if arg in (f"-{name}", f"--{name}"):
            value = argv[i + 1]
    return value


def _same_run_path(path: str) -> str:
    """/var/run is /run on Debian: compare pid file paths with that in mind."""
    return path.removeprefix("/var")


def _alive(machine: Machine, pid: int) -> bool | None:
    """Like check_process_running: /proc/<pid>/stat exists and the process is not a zombie."""
    stat = machine.read(f"/proc/{pid}/stat")
    if stat.ok and stat.text:
        # "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses.
        state = stat.text.rpartition(")")[2].split()
        return not state or state[0] != "Z"
    return machine.exists(f"/proc/{pid}").present


def _unknown(vmid: int, path: str, what: str, error: str | None) -> PidfileCheck:
    detail = f" ({error})" if error else ""
    return PidfileCheck(vmid, None, pidfile=path, reason=f"{what}{detail}")


def _check_file(machine: Machine, vmid: int, path: str, text: str) -> PidfileCheck:
    pid = parse_uint(text.partition("\n")[0], max_digits=10)
    if pid is None:
        return PidfileCheck(vmid, False, pidfile=path, reason=f"{path} holds no pid")
    cmd = machine.read(f"/proc/{pid}/cmdline")
    if cmd.status is ReadStatus.MISSING or (cmd.ok and not cmd.text):
        return PidfileCheck(
            vmid, False, pid, pidfile=path, reason=f"process {pid} from {path} is gone"
        )
    if not cmd.ok or cmd.text is None:
        return _unknown(vmid, path, f"/proc/{pid}/cmdline cannot be read", cmd.error)
    argv = split_cmdline(cmd.text)
    if not argv or not is_qemu_program(argv[0]):
        return PidfileCheck(vmid, False, pid, pidfile=path, reason=f"process {pid} is not QEMU")
    named = _last_option(argv, "pidfile")
    if named is None or _same_run_path(named) != _same_run_path(path):
        return PidfileCheck(
            vmid, False, pid, pidfile=path, reason=f"process {pid} does not use {path}"
        )
    alive = _alive(machine, pid)
    if alive is None:
        return _unknown(vmid, path, f"/proc/{pid} cannot be checked", None)
    if not alive:
        return PidfileCheck(vmid, False, pid, pidfile=path, reason=f"process {pid} is a zombie")
    return PidfileCheck(vmid, True, pid, argv=tuple(argv), pidfile=path)


def _check_path(machine: Machine, vmid: int, path: str) -> PidfileCheck | None:
    """The check for one pid file, or None when that file does not exist."""
    read = machine.read(path)
    if read.status is ReadStatus.MISSING:
        return None
    if not read.ok or read.text is None:
        return _unknown(vmid, path, f"{path} cannot be read", read.error or read.status.value)
    return _check_file(machine, vmid, path, read.text)


def check_pidfile(machine: Machine, vmid: int) -> PidfileCheck:
    """Whether VM `vmid` runs on this node (its pid file in either directory)."""
    for directory in PID_DIRS:
        check = _check_path(machine, vmid, f"{directory}/{vmid}.pid")
        if check is not None:
            return check
    return PidfileCheck(vmid, False, reason="no pid file")


def scan_pidfiles(machine: Machine) -> PidfileScan:
    """Every VM with a pid file on this node, each checked as `check_pidfile` does.

    One directory listing instead of a failed open per VM; a VM without a pid file does not run.
    """
    checks: dict[int, PidfileCheck] = {}
    problems: list[str] = []
    for directory in PID_DIRS:
        listing = machine.listdir(directory)
        if listing.status is ReadStatus.MISSING:
            continue
        if not listing.ok:
            problems.append(listing.describe())
            continue
        for name in listing.names:
            stem = name.removesuffix(".pid")
            if stem == name or not is_ascii_digits(stem) or len(stem) > 9:
                continue
            vmid = int(stem)
            if vmid in checks:
                continue  # /var/run is /run on a real host: the same file twice
            check = _check_path(machine, vmid, f"{directory}/{name}")
            if check is not None:
                checks[vmid] = check
    return PidfileScan(dict(sorted(checks.items())), tuple(problems))
