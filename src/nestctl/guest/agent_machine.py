"""The `Machine` protocol over a guest agent, so the guest probes run unchanged from the host.

Guest-side failures (a missing file, a program that is not installed) become FileRead, Presence,
Listing and CommandResult statuses, exactly as `Host` reports them; nothing here raises for them.

Unknown is never "absent". Existence and listings need guest-exec (`test -e`, `ls`): when the agent
refuses guest-exec (qemu-ga ``block-rpcs``/``allow-rpcs``, the default on some distributions) or
the guest has no `test`, they are "could-not-run" with the reason, and `blocker` says what would
let nestctl check. When the agent itself fails (gone, not answering, malformed replies), `failure`
holds the reason, every later call returns at once as "could not run" / "timed out", and the caller
reports the agent instead of trusting those results.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from nestctl.guest.agent import AgentError, AgentTimeout, GuestAgent, GuestAgentError
from nestctl.guest.facts import Blocker
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
    if _disabled(err):
        return ReadStatus.COULD_NOT_RUN  # qemu-ga blocks guest-file-*: nothing was read
    if _has(err.desc, ("is a directory",)):
        return ReadStatus.NOT_A_FILE
    if _has(err.desc, _MISSING_HINTS):
        return ReadStatus.MISSING
    if _has(err.desc, _DENIED_HINTS):
        return ReadStatus.NOT_PERMITTED
    return ReadStatus.UNREADABLE


def _disabled(err: AgentError) -> bool:
    """qemu-ga's answer to a command its configuration blocks: CommandNotFound, "... has been
    disabled" (an unknown command says "has not been found" instead)."""
    return "disabled" in err.desc.lower()


#: The programs `exists` and `listdir` need in a Linux guest.
_PROBE_TOOLS = frozenset({"test", "ls"})

#: What lets nestctl check when qemu-ga blocks guest-exec (qemu-ga(8): block-rpcs / allow-rpcs).
EXEC_BLOCKED_FIX = (
    "in the guest, allow guest-exec and guest-exec-status in qemu-ga: remove them from "
    "block-rpcs= in /etc/qemu/qemu-ga.conf, or add them to allow-rpcs= (qemu-ga 8.0+); on "
    "RHEL-family guests the --block-rpcs/--allow-rpcs list is in /etc/sysconfig/qemu-ga; then "
    "restart qemu-guest-agent"
)


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class AgentMachine:
    """A guest seen through its QEMU guest agent.

    `os_kind`: "linux", "windows", or None to ask the agent; "unknown" when it cannot be told.
    """

    def __init__(self, agent: GuestAgent, *, os_kind: str | None = None) -> None:
        self.agent = agent
        self._os_kind = os_kind
        self.failure: GuestAgentError | None = None
        #: Why guest-exec cannot run anything (the agent refuses it), once seen.
        self.exec_refused: str | None = None
        self._missing_tools: set[str] = set()  # programs the probes need that the guest lacks
        self.manifest: list[ManifestEntry] = []

    @property
    def os_kind(self) -> str:
        """ "windows" (osinfo says mswindows), "linux", or "unknown": never a guess."""
        if self._os_kind is None:
            self._os_kind = self._ask_os()
        return self._os_kind

    def _ask_os(self) -> str:
        if self.failure is not None:
            return "unknown"  # asking a dead agent would only wait
        try:
            osid = self.agent.osinfo().get("id")
        except AgentError:
            osid = None  # agents before 2.10, or one that blocks guest-get-osinfo
        except GuestAgentError as exc:
            self.failure = exc
            return "unknown"
        if osid == "mswindows":
            return "windows"
        if isinstance(osid, str) and osid:
            return "linux"  # qemu-ga's Linux build: the os-release ID
        # No os-release ID either: the kernel's own name is evidence; without it, unknown.
        ostype = self.read("/proc/sys/kernel/ostype", max_bytes=64)
        return "linux" if ostype.ok and (ostype.text or "").strip() == "Linux" else "unknown"

    @property
    def blocker(self) -> Blocker | None:
        """Why this guest's facts that need commands could not be checked, and what would help."""
        if self.exec_refused is not None:
            return Blocker(
                f"the guest agent refuses guest-exec ({self.exec_refused})", EXEC_BLOCKED_FIX
            )
        if self._missing_tools:
            tools = ", ".join(sorted(self._missing_tools))
            return Blocker(
                f"the guest has no {tools}",
                f"in the guest: install {tools} (coreutils, or busybox with its {tools} applet)",
            )
        return None

    # -- Machine -------------------------------------------------------------------------

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        if self.failure is not None:
            result = FileRead(hostpath, self._failure_status(), error=self._failure_text())
        else:
            try:
                data, complete = self.agent.read_file_upto(hostpath, max_bytes)
            except AgentError as exc:
                result = FileRead(hostpath, _read_status(exc), error=exc.desc)
            except GuestAgentError as exc:
                self.failure = exc
                result = FileRead(hostpath, self._failure_status(), error=self._failure_text())
            else:
                text = data.decode("utf-8", errors="replace")
                if complete:
                    result = FileRead(hostpath, ReadStatus.OK, text)
                else:
                    result = FileRead(
                        hostpath, ReadStatus.TRUNCATED, text, f"larger than {max_bytes} bytes"
                    )
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
        if self.os_kind != "linux":
            return Presence(hostpath, ReadStatus.COULD_NOT_RUN, "the guest's OS is unknown")
        # `test -e` rather than guest-file-open: opening a device node can have side effects.
        # Only its own answers count: 0 present, 1 absent; anything else (no `test`, guest-exec
        # refused, killed) leaves the question open.
        res = self.run(["test", "-e", hostpath], ok_codes=(0, 1))
        if res.ok:
            return Presence(hostpath, ReadStatus.OK if res.rc == 0 else ReadStatus.MISSING)
        return Presence(hostpath, status_of_command(res), res.describe())

    def listdir(self, hostpath: str) -> Listing:
        if self.os_kind == "windows":
            cmd = f"Get-ChildItem -Force -Name -LiteralPath {_ps_quote(hostpath)}"
            argv = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", cmd]
        elif self.os_kind == "linux":
            # The trailing slash makes ls fail on a plain file instead of printing its name.
            argv = ["ls", "-1A", hostpath.rstrip("/") + "/"]
        else:
            return Listing(hostpath, ReadStatus.COULD_NOT_RUN, error="the guest's OS is unknown")
        res, truncated = self._run_logged(tuple(argv), 30.0, None, (0,))
        if truncated:
            return Listing(hostpath, ReadStatus.TRUNCATED, error="the agent cut the listing short")
        if res.ok:
            names = sorted(line.rstrip("\r") for line in res.stdout.splitlines() if line.strip())
            return Listing(hostpath, ReadStatus.OK, tuple(names))
        if res.status is CommandStatus.FAILED and res.rc is not None:
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
        res, truncated = self._run_logged(tuple(argv), timeout, stdin, ok_codes)
        if truncated and res.ok:
            # Part of the output is not an answer: callers parse stdout.
            note = "output truncated by the guest agent (over 16 MiB)"
            return res._replace(status=CommandStatus.FAILED, stderr=f"{res.stderr}{note}")
        return res

    # -- internals -------------------------------------------------------------------------

    def _failure_text(self) -> str:
        return f"guest agent: {self.failure}"

    def _failure_status(self) -> ReadStatus:
        return (
            ReadStatus.TIMED_OUT
            if isinstance(self.failure, AgentTimeout)
            else ReadStatus.COULD_NOT_RUN
        )

    def _run_logged(
        self,
        args: tuple[str, ...],
        timeout: float,
        stdin: str | None,
        ok_codes: Sequence[int],
    ) -> tuple[CommandResult, bool]:
        result, truncated = self._run(args, timeout, stdin, ok_codes, time.monotonic())
        self.manifest.append(ManifestEntry("run", "agent:" + " ".join(args), result.status.value))
        return result, truncated

    def _run(
        self,
        args: tuple[str, ...],
        timeout: float,
        stdin: str | None,
        ok_codes: Sequence[int],
        start: float,
    ) -> tuple[CommandResult, bool]:
        if not args:
            return CommandResult(args, CommandStatus.NOT_FOUND, stderr="empty command"), False
        if self.failure is not None:
            status = (
                CommandStatus.TIMEOUT
                if isinstance(self.failure, AgentTimeout)
                else CommandStatus.FAILED
            )
            return CommandResult(args, status, stderr=self._failure_text()), False
        if self.exec_refused is not None:
            return self._refused(args, start), False
        try:
            res = self.agent.exec(
                args[0],
                args[1:],
                timeout,
                stdin=stdin.encode() if stdin is not None else None,
            )
        except AgentError as exc:
            # "exec" is the same call through the Proxmox API (ApiGuestAgent).
            if exc.command in ("guest-exec", "exec") and _disabled(exc):
                self.exec_refused = exc.desc
                return self._refused(args, start), False
            # guest-exec itself failed: the program could not be started in the guest.
            missing = _has(exc.desc, _SPAWN_FAILED_HINTS)
            if missing and args[0] in _PROBE_TOOLS:
                self._missing_tools.add(args[0])
            status = CommandStatus.NOT_FOUND if missing else CommandStatus.FAILED
            duration = time.monotonic() - start
            return CommandResult(args, status, stderr=exc.desc, duration=duration), False
        except GuestAgentError as exc:
            self.failure = exc
            status = (
                CommandStatus.TIMEOUT if isinstance(exc, AgentTimeout) else CommandStatus.FAILED
            )
            duration = time.monotonic() - start
            return CommandResult(
                args, status, stderr=self._failure_text(), duration=duration
            ), False
        duration = time.monotonic() - start
        if res.timed_out:
            return CommandResult(args, CommandStatus.TIMEOUT, duration=duration), False
        rc = res.exitcode if res.exitcode is not None else -(res.signal or 0)
        if rc in ok_codes:
            status = CommandStatus.OK
        elif rc in (126, 127):
            status = CommandStatus.NOT_FOUND
        else:
            status = CommandStatus.FAILED
        result = CommandResult(
            args,
            status,
            rc,
            res.stdout.decode("utf-8", errors="replace"),
            res.stderr.decode("utf-8", errors="replace"),
            duration,
        )
        return result, res.truncated

    def _refused(self, args: tuple[str, ...], start: float) -> CommandResult:
        # Not NOT_FOUND: the program may well be installed; the agent will not start it.
        return CommandResult(
            args,
            CommandStatus.FAILED,
            stderr=f"the guest agent refuses guest-exec: {self.exec_refused}",
            duration=time.monotonic() - start,
        )
