"""Carry out a `Plan`: back up, write, reload, read back, and restore when it did not take.

Nothing is changed when the plan is refused, when not root, or when /etc/modprobe.d is not
writable. Files are written with a fixed mode (0644, root's); a symlink is replaced only when the
plan names it. Each run backs up into a directory of its own, keeping links as links and files
with their mode and owner; a failure puts those backups back. A reload happens only when the plan
allows it, and only if, checked again just before `modprobe -r`, no VM and nothing else holds the
module; between the unload and the load SIGINT/SIGTERM/SIGHUP wait, so KVM is never left unloaded.
Under a root other than `/` commands are recorded, not run: the outcome is "persisted".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nestctl.host.kvm import loaded_modules, read_module, read_param
from nestctl.host.plan import BACKUP_DIR, ETC_DIR, FileChange, Plan
from nestctl.host.vms import running_vms
from nestctl.machine import CommandResult, CommandStatus

if TYPE_CHECKING:
    from nestctl.machine import Host

#: Signals that would stop us between `modprobe -r` and `modprobe`: they wait until both ran.
_DEFERRED = ("SIGINT", "SIGTERM", "SIGHUP")


@dataclass
class Outcome:
    """What applying a plan did. `state` is one of the documented outcome names."""

    state: str  # refused, nothing-to-do, planned, done, persisted, restored, failed
    message: str
    backups: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    commands: list[CommandResult] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    live_after: bool | None = None
    restored: list[str] = field(default_factory=list)
    backup_of: dict[str, str] = field(default_factory=dict)  # path -> its backup (host paths)

    def commands_json(self) -> list[dict[str, Any]]:
        return [
            {"argv": list(c.argv), "status": c.status.value, "rc": c.rc, "stderr": c.stderr.strip()}
            for c in self.commands
        ]


def default_stamp() -> str:
    """The start of a backup directory's name (the directory itself is unique per run)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def apply_refusal(host: Host, plan: Plan) -> str | None:
    """Why this plan cannot be applied on this host at all (checked before any change)."""
    if plan.refusal is not None:
        return plan.refusal
    if plan.nothing_to_do:
        return None
    if not host.is_admin:
        return "changing the host needs root (run with sudo)"
    dirs = [ETC_DIR] if plan.files else []
    if any(fc.old is not None for fc in plan.files):
        dirs.append(BACKUP_DIR)
    for directory in dirs:
        problem = host.writable_dir(directory)
        if problem is not None:
            return f"cannot write: {problem}"
    return None


def _restore(host: Host, changes: list[FileChange], out: Outcome) -> list[str]:
    """Put back every file written: from its backup (exactly as it was), or remove a new one."""
    restored: list[str] = []
    for fc in reversed(changes):
        if fc.path not in out.written:
            continue
        backup = out.backup_of.get(fc.path)
        if backup is not None:
            host.restore(backup, fc.path)
        else:
            host.remove(fc.path)
        restored.append(fc.path)
    return restored


def _write_all(host: Host, plan: Plan, stamp: str, out: Outcome) -> str | None:
    """Back up and write every file; on an error undo what was written and say why."""
    try:
        backup_dir: str | None = None
        for fc in plan.files:
            if host.lstat(fc.path) is not None:
                if backup_dir is None:
                    backup_dir = host.make_backup_dir(BACKUP_DIR, stamp)
                backup = host.backup(fc.path, backup_dir)
                if backup is not None:
                    out.backups.append(backup)
                    out.backup_of[fc.path] = backup
            host.write_atomic(fc.path, fc.new, mode=0o644, replace_symlink=fc.symlink is not None)
            out.written.append(fc.path)
    except OSError as exc:
        try:
            out.restored = _restore(host, list(plan.files), out)
        except OSError as exc2:
            return f"writing failed ({exc}) and so did restoring ({exc2}); backups: {out.backups}"
        return f"writing failed: {exc}; restored the files already written"
    return None


def _run(host: Host, out: Outcome, argv: tuple[str, ...]) -> CommandResult:
    result = host.run(argv, timeout=60.0)
    out.commands.append(result)
    return result


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for the block; they arrive (and act) right after it.

    Blocked, not ignored: a Ctrl-C during the reload still stops nestctl, once the module is
    back. `modprobe` inherits the mask, so a terminal's Ctrl-C does not stop it half-way either.
    The mask covers this thread only: a process-directed signal can land on another thread and
    Python would still run its handler here, so the handlers are swapped for a recorder too, and
    what was recorded is raised again once the block is over.
    """
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    wanted = {getattr(signal, name) for name in _DEFERRED if hasattr(signal, name)}
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def record(signum: int, _frame: object) -> None:
        caught.append(signum)

    handlers = {sig: signal.signal(sig, record) for sig in wanted}
    masked = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, wanted) if masked else set()
    try:
        yield
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)  # pending ones reach `record` now
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def still_free(host: Host, module: str) -> str | None:
    """Why `module` cannot be unloaded right now (checked again just before `modprobe -r`)."""
    running = running_vms(host)
    if running.vms:
        return "VMs started since the plan: " + ", ".join(str(v) for v in running.vms)
    if running.others:
        return "QEMU processes hold KVM: " + ", ".join(str(p.pid) for p in running.others)
    if not running.complete:
        return "whether VMs run cannot be checked (run as root to read QEMU's pid files)"
    mod = read_module(host, module, proc_modules=loaded_modules(host))
    if mod.refcount is None:
        return f"/sys/module/{module}/refcnt cannot be read"
    if mod.refcount > 0 or mod.holders:
        users = f"; used by {', '.join(mod.holders)}" if mod.holders else ""
        return f"{module} is in use (refcount {mod.refcount}{users})"
    return None


def _reload(host: Host, out: Outcome, module: str) -> CommandResult:
    removed = _run(host, out, ("modprobe", "-r", module))
    if not removed.ok and removed.status is not CommandStatus.RECORDED:
        return removed
    return _run(host, out, ("modprobe", module))


def apply_plan(host: Host, plan: Plan, *, stamp: str | None = None) -> Outcome:
    refusal = apply_refusal(host, plan)
    if refusal is not None:
        return Outcome("refused", refusal)
    if plan.nothing_to_do:
        return Outcome(
            "nothing-to-do", "nothing to do: nested is already as asked, now and after reboot"
        )
    assert plan.module is not None
    module = plan.module
    out = Outcome("persisted", "")
    problem = _write_all(host, plan, stamp or default_stamp(), out)
    if problem is not None:
        out.state, out.message = "failed", problem
        return out
    if not plan.reload_needed:
        out.state = "done"
        out.message = f"written; {module} " + (
            "is not loaded: the setting applies when it is" if plan.notes else "already has it live"
        )
        out.remaining = list(plan.notes)
        return out
    if not plan.reload:
        out.message = "persisted; the running module keeps its value until it is reloaded"
        out.remaining = [
            *plan.reload_blockers,
            f"then: modprobe -r {module} && modprobe {module}, or reboot",
        ]
        return out

    busy = still_free(host, module)
    if busy is not None:
        out.message = f"persisted, but not reloaded: {busy} (checked just before unloading)"
        out.remaining = [f"when nothing uses KVM: nestctl host {plan.action}", "or reboot"]
        return out
    with deferred_signals():
        return _reload_and_check(host, plan, out, module)


def _reload_and_check(host: Host, plan: Plan, out: Outcome, module: str) -> Outcome:
    """Unload, load, read back; undo the files and load again when the new value fails."""
    result = _reload(host, out, module)
    if result.status is CommandStatus.RECORDED:
        out.message = "persisted; the reload was recorded, not run (the root is not /)"
        out.remaining = [f"on the host: modprobe -r {module} && modprobe {module}, or reboot"]
        return out
    if not result.ok and result.argv[:2] == ("modprobe", "-r"):
        out.message = f"persisted, but the module could not be unloaded: {result.describe()}"
        out.remaining = ["stop the VMs using KVM, then: nestctl host " + plan.action, "or reboot"]
        return out
    if not result.ok:
        # The module is out and would not come back with the new setting: undo and load it again.
        undo = _undo_files(host, plan, out)
        again = _run(host, out, ("modprobe", module))
        out.state = "failed"
        out.message = (
            f"loading {module} with the new setting failed ({result.describe()}); {undo} and "
            + (
                "loaded it again"
                if again.ok
                else f"loading it again failed too: {again.describe()}"
            )
        )
        return out
    live = read_param(host, module, "nested").value
    out.live_after = live
    if live is plan.desired:
        out.state = "done"
        out.message = (
            f"done: {module} nested is now {'on' if plan.desired else 'off'}, and persisted"
        )
        return out
    undo = _undo_files(host, plan, out)
    again = _reload(host, out, module)
    out.live_after = read_param(host, module, "nested").value
    out.state = "restored"
    out.message = (
        f"the reload did not take ({module} nested reads {live!r} afterwards); {undo} and "
        + (
            "reloaded the module"
            if again.ok
            else f"reloading the module failed: {again.describe()}"
        )
    )
    return out


def _undo_files(host: Host, plan: Plan, out: Outcome) -> str:
    """Put the previous files back; say what happened (a failure names the backups)."""
    try:
        out.restored = _restore(host, list(plan.files), out)
    except OSError as exc:
        return f"restoring the previous files failed ({exc}; backups: {', '.join(out.backups)})"
    return "restored the previous files"
