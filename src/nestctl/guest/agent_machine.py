"""The `Machine` protocol over a guest agent, so the guest probes run unchanged from the host.

Guest-side failures (a missing file, a program that is not installed) become FileRead and
CommandResult statuses, exactly as `Host` reports them; nothing here raises for them. When the
agent itself fails (gone, not answering), calls return "unreadable" / "timeout" results and
`failure` holds the reason, so the caller can say "the agent stopped answering" instead of trusting
those results; later calls then return at once instead of waiting for the timeout again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from nestctl.guest.agent import AgentError, AgentTimeout, GuestAgent, GuestAgentError
from nestctl.machine import (
    MAX_READ_BYTES,
    CommandResult,
    CommandStatus,
    FileRead,
    Listing,
    ManifestEntry,
    Presence,
    ReadStatus,
    status_of_command,
)

_MISSING_HINTS = ("no such file", "cannot find", "not found", "does not exist")
_DENIED_HINTS = ("permission denied", "access is denied", "operation not permitted")
_SPAWN_FAILED_HINTS = ("failed to execute", "no such file", "cannot find", "not found")


def _has(text: str, hints: Sequence[str]) -> bool:
    low = text.lower()
    return any(h in low for h in hints)


def _read_status(err: AgentError) -> ReadStatus:
    if _has(err.desc, ("is a directory",)):
        return ReadStatus.NOT_A_FILE
    if _has(err.desc, _MISSING_HINTS):
        return ReadStatus.MISSING
    return ReadStatus.UNREADABLE


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class AgentMachine:
    """A guest seen through its QEMU guest agent. `os_kind`: "linux", "windows" or None (ask)."""

    def __init__(self, agent: GuestAgent, *, os_kind: str | None = None) -> None:
        self.agent = agent
        self._os_kind = os_kind
        self.failure: GuestAgentError | None = None
        self.manifest: list[ManifestEntry] = []

    @property
    def os_kind(self) -> str:
        """ "windows" when guest-get-osinfo says mswindows, else "linux"."""
        if self._os_kind is None:
            if self.failure is not None:
                return "linux"  # unknown, and asking a dead agent would only wait
            try:
                osid = str(self.agent.osinfo().get("id", ""))
            except AgentError:
                osid = ""  # old agents lack guest-get-osinfo: assume Linux
            except GuestAgentError as exc:
                self.failure = exc
                osid = ""
            self._os_kind = "windows" if osid == "mswindows" else "linux"
        return self._os_kind

    # -- Machine -------------------------------------------------------------------------

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        if self.failure is not None:
            result = FileRead(hostpath, ReadStatus.UNREADABLE, error=self._failure_text())
        else:
            try:
                data = self.agent.read_file(hostpath, max_bytes)
            except AgentError as exc:
                result = FileRead(hostpath, _read_status(exc), error=exc.desc)
            except GuestAgentError as exc:
                self.failure = exc
                result = FileRead(hostpath, ReadStatus.UNREADABLE, error=self._failure_text())
            else:
                result = FileRead(hostpath, ReadStatus.OK, data.decode("utf-8", errors="replace"))
        self.manifest.append(ManifestEntry("read", f"agent:{hostpath}", result.status.value))
        return result

    def exists(self, hostpath: str) -> Presence:
        if self.os_kind == "windows":
            cmd = f"Test-Path -LiteralPath {_ps_quote(hostpath)}"
            res = self.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", cmd])
            answer = res.stdout.strip().lower()
            if res.ok and answer in ("true", "false"):
                status = ReadStatus.OK if answer == "true" else ReadStatus.MISSING
                return Presence(hostpath, status)
            return Presence(hostpath, status_of_command(res), res.describe())
        # `test -e` rather than guest-file-open: opening a device node can have side effects.
        res = self.run(["test", "-e", hostpath], ok_codes=(0, 1))
        if res.ok:
            return Presence(hostpath, ReadStatus.OK if res.rc == 0 else ReadStatus.MISSING)
        return Presence(hostpath, status_of_command(res), res.describe())

    def listdir(self, hostpath: str) -> Listing:
        if self.os_kind == "windows":
            cmd = f"Get-ChildItem -Force -Name -LiteralPath {_ps_quote(hostpath)}"
            argv = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", cmd]
        else:
            # The trailing slash makes ls fail on a plain file instead of printing its name.
            argv = ["ls", "-1A", hostpath.rstrip("/") + "/"]
        res = self.run(argv)
        if res.ok:
            names = sorted(line.rstrip("\r") for line in res.stdout.splitlines() if line.strip())
            return Listing(hostpath, ReadStatus.OK, tuple(names))
        if res.status is CommandStatus.FAILED:
            # The program ran and refused: its message says why.
            if _has(res.stderr, ("not a directory",)):
                return Listing(hostpath, ReadStatus.NOT_A_FILE, error="is not a directory")
            if _has(res.stderr, _MISSING_HINTS):
                return Listing(hostpath, ReadStatus.MISSING)
            if _has(res.stderr, _DENIED_HINTS):
                return Listing(hostpath, ReadStatus.NOT_PERMITTED, error=res.stderr.strip())
        return Listing(hostpath, status_of_command(res), error=res.describe())

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        args = tuple(argv)
        start = time.monotonic()
        result = self._run(args, timeout, stdin, ok_codes, start)
        self.manifest.append(ManifestEntry("run", "agent:" + " ".join(args), result.status.value))
        return result

    # -- internals -------------------------------------------------------------------------

    def _failure_text(self) -> str:
        return f"guest agent: {self.failure}"

    def _run(
        self,
        args: tuple[str, ...],
        timeout: float,
        stdin: str | None,
        ok_codes: Sequence[int],
        start: float,
    ) -> CommandResult:
        if not args:
            return CommandResult(args, CommandStatus.NOT_FOUND, stderr="empty command")
        if self.failure is not None:
            return CommandResult(args, CommandStatus.TIMEOUT, stderr=self._failure_text())
        try:
            res = self.agent.exec(
                args[0],
                args[1:],
                timeout,
                stdin=stdin.encode() if stdin is not None else None,
            )
        except AgentError as exc:
            # guest-exec itself failed: the program could not be started in the guest.
            status = (
                CommandStatus.NOT_FOUND
                if _has(exc.desc, _SPAWN_FAILED_HINTS)
                else CommandStatus.FAILED
            )
            return CommandResult(args, status, stderr=exc.desc, duration=time.monotonic() - start)
        except GuestAgentError as exc:
            self.failure = exc
            status = (
                CommandStatus.TIMEOUT if isinstance(exc, AgentTimeout) else CommandStatus.FAILED
            )
            return CommandResult(
                args, status, stderr=self._failure_text(), duration=time.monotonic() - start
            )
        duration = time.monotonic() - start
        if res.timed_out:
            return CommandResult(args, CommandStatus.TIMEOUT, duration=duration)
        rc = res.exitcode if res.exitcode is not None else -(res.signal or 0)
        if rc in ok_codes:
            status = CommandStatus.OK
        elif rc in (126, 127):
            status = CommandStatus.NOT_FOUND
        else:
            status = CommandStatus.FAILED
        return CommandResult(
            args,
            status,
            rc,
            res.stdout.decode("utf-8", errors="replace"),
            res.stderr.decode("utf-8", errors="replace"),
            duration,
        )
