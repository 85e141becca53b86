"""Another machine reached over SSH, through the same door: `SshRunner` runs an argv there,
`SshMachine` reads its files and lists its directories with that runner.

Every command still starts locally through the base runner (`SystemRunner` for real), so the test
guard, the manifest and the recording under another root hold for SSH too. The argv is quoted
once with `shlex.join` (ssh hands the remote user's shell one string); the connection runs in
batch mode, so a missing key is an error, never a password prompt.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nestctl.machine.commands import CommandResult, CommandStatus, Runner, SystemRunner
from nestctl.machine.reads import MAX_READ_BYTES, FileRead, Listing, Presence, ReadStatus

if TYPE_CHECKING:
    import subprocess

SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=5")
#: ssh's own exit code when it could not connect or authenticate (the remote command never ran).
SSH_FAILED = 255

# Remote helpers: `$1` is the path, `$2` the byte limit. Exit 2: missing, 3: not a regular file /
# not a directory (never opened: a FIFO would block the read), else the tool's own failure.
_READ = (
    'if [ -f "$1" ]; then head -c "$2" -- "$1"; '
    'elif [ -e "$1" ] || [ -h "$1" ]; then exit 3; else exit 2; fi'
)
_LIST = (
    'if [ -d "$1" ]; then find "$1" -mindepth 1 -maxdepth 1 -printf "%f\\0"; '
    'elif [ -e "$1" ] || [ -h "$1" ]; then exit 3; else exit 2; fi'
)
_EXISTS = 'if [ -e "$1" ] || [ -h "$1" ]; then exit 0; else exit 2; fi'


class SshRunner:
    """Runs an argv on `destination` (`user@host`) over ssh; a `Runner` like the local ones."""

    def __init__(self, destination: str, base: Runner | None = None) -> None:
        self.destination = destination
        self.base: Runner = base or SystemRunner()

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs `argv` on the remote machine."""
        return ["ssh", *SSH_OPTIONS, self.destination, "--", shlex.join(argv)]

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult:
        done = self.base(self.wrap(argv), timeout=timeout, stdin=stdin, ok_codes=ok_codes)
        result = done._replace(argv=tuple(argv))
        if done.status is CommandStatus.FAILED and done.rc == SSH_FAILED:
            # ssh could not reach or log in: the command never ran, so it is "could not run".
            err = " ".join(done.stderr.split())[:200] or f"ssh {self.destination} failed"
            return result._replace(status=CommandStatus.NOT_FOUND, stderr=err)
        return result

    def spawn(self, argv: Sequence[str], **how: Any) -> subprocess.Popen[bytes]:
        return self.base.spawn(self.wrap(argv), **how)


class SshMachine:
    """A `Machine` (read, exists, listdir, run) whose files are on the other end of ssh."""

    def __init__(self, destination: str, *, runner: Runner | None = None, timeout: float = 20.0):
        self.runner: Runner = SshRunner(destination, runner)
        self.timeout = timeout

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        wait = self.timeout if timeout is None else timeout
        return self.runner(argv, timeout=wait, stdin=stdin, ok_codes=ok_codes)

    def spawn(self, argv: Sequence[str], **how: Any) -> subprocess.Popen[bytes]:
        return self.runner.spawn(argv, **how)

    def _helper(self, script: str, *args: str) -> CommandResult:
        return self.run(["sh", "-c", script, "sh", *args], ok_codes=(0, 2, 3))

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        done = self._helper(_READ, hostpath, str(max_bytes + 1))
        status = _status(done)
        if status is not ReadStatus.OK:
            return FileRead(hostpath, status, error=_error(done, status))
        data = done.stdout
        if len(data.encode("utf-8", "surrogateescape")) > max_bytes:
            return FileRead(hostpath, ReadStatus.TRUNCATED, data[:max_bytes], "too large")
        return FileRead(hostpath, ReadStatus.OK, data)

    def exists(self, hostpath: str) -> Presence:
        done = self._helper(_EXISTS, hostpath)
        status = _status(done)
        if status is ReadStatus.NOT_A_FILE:
            status = ReadStatus.OK
        return Presence(hostpath, status, _error(done, status))

    def listdir(self, hostpath: str) -> Listing:
        done = self._helper(_LIST, hostpath)
        status = _status(done)
        if status is not ReadStatus.OK:
            return Listing(hostpath, status, error=_error(done, status))
        names = tuple(sorted(n for n in done.stdout.split("\0") if n))
        return Listing(hostpath, ReadStatus.OK, names)


def _status(done: CommandResult) -> ReadStatus:
    if done.status is CommandStatus.TIMEOUT:
        return ReadStatus.TIMED_OUT
    if done.status is not CommandStatus.OK:
        if "Permission denied" in done.stderr and done.rc != SSH_FAILED:
            return ReadStatus.NOT_PERMITTED
        return (
            ReadStatus.COULD_NOT_RUN
            if done.status is CommandStatus.NOT_FOUND
            else (ReadStatus.UNREADABLE)
        )
    return {0: ReadStatus.OK, 2: ReadStatus.MISSING, 3: ReadStatus.NOT_A_FILE}[done.rc or 0]


def _error(done: CommandResult, status: ReadStatus) -> str | None:
    if status in (ReadStatus.OK, ReadStatus.MISSING):
        return None
    if status is ReadStatus.NOT_A_FILE:
        return "not a regular file (or not a directory)"
    return " ".join(done.stderr.split())[:200] or done.describe()
