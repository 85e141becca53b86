"""Commands: their typed results, and the two runners (one runs for real, one records).

argv only, never a shell string. A missing program or a timeout is a status, never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from nestctl.machine.fileio import decode
from nestctl.machine.reads import ReadStatus

if TYPE_CHECKING:
    import subprocess


class CommandStatus(StrEnum):
    OK = "ok"  # ran, exit code accepted
    FAILED = "failed"  # ran, exit code not accepted
    NOT_FOUND = "not-found"  # the program is not installed (126/127 territory)
    TIMEOUT = "timeout"
    RECORDED = "recorded"  # not run: the host is not live, the command went into the plan


class CommandResult(NamedTuple):
    argv: tuple[str, ...]
    status: CommandStatus
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is CommandStatus.OK

    def describe(self) -> str:
        """One line naming the command and how it ended, with stderr indented (for messages)."""
        cmd = " ".join(self.argv)
        if self.status is CommandStatus.NOT_FOUND:
            return f"{cmd}: command not found"
        if self.status is CommandStatus.TIMEOUT:
            return f"{cmd}: timed out after {self.duration:.1f} s"
        if self.status is CommandStatus.RECORDED:
            return f"{cmd}: recorded, not run"
        text = f"{cmd}: exit code {self.rc}"
        err = self.stderr.strip()
        if err:
            text += "\n" + "\n".join("    " + line for line in err.splitlines())
        return text


def status_of_command(result: CommandResult) -> ReadStatus:
    """Why a command that was to answer a question about a path gave no answer."""
    if result.status is CommandStatus.TIMEOUT:
        return ReadStatus.TIMED_OUT
    return ReadStatus.COULD_NOT_RUN


class Runner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult: ...

    def spawn(self, argv: Sequence[str], **how: Any) -> subprocess.Popen[bytes]:
        """Start a process that keeps running (see `nestctl.machine.processes.spawn`)."""
        ...


class SystemRunner:
    """Runs commands for real. argv only, never a shell string."""

    def spawn(self, argv: Sequence[str], **how: Any) -> subprocess.Popen[bytes]:
        from nestctl.machine.processes import spawn  # noqa: PLC0415 - rare; keep start-up fast

        return spawn(argv, **how)

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult:
        import subprocess  # noqa: PLC0415 - only commands that really run pay for it

        args = tuple(argv)
        start = time.monotonic()
        try:
            proc = subprocess.run(
                args,
                input=stdin.encode() if stdin is not None else None,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            return CommandResult(args, CommandStatus.NOT_FOUND, duration=time.monotonic() - start)
        except subprocess.TimeoutExpired:
            return CommandResult(args, CommandStatus.TIMEOUT, duration=time.monotonic() - start)
        except OSError as exc:  # permission denied on the binary and the like
            return CommandResult(
                args, CommandStatus.NOT_FOUND, stderr=str(exc), duration=time.monotonic() - start
            )
        status = CommandStatus.OK if proc.returncode in ok_codes else CommandStatus.FAILED
        if proc.returncode in (126, 127) and status is CommandStatus.FAILED:
            status = CommandStatus.NOT_FOUND
        return CommandResult(
            args,
            status,
            proc.returncode,
            decode(proc.stdout),
            decode(proc.stderr),
            time.monotonic() - start,
        )


Responder = Callable[[tuple[str, ...]], CommandResult | None]


class RecordingRunner:
    """Records commands instead of running them.

    A `respond` callback may answer a command (and act on a fake tree, as a real `modprobe` would
    change sysfs); commands it does not answer come back as RECORDED.
    """

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond = respond
        self.calls: list[tuple[str, ...]] = []

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        if self.respond is not None:
            answer = self.respond(args)
            if answer is not None:
                return answer
        return CommandResult(args, CommandStatus.RECORDED)

    def spawn(self, argv: Sequence[str], **how: Any) -> subprocess.Popen[bytes]:
        from nestctl.machine.processes import SpawnRefusedError  # noqa: PLC0415

        self.calls.append(tuple(argv))
        raise SpawnRefusedError(f"{' '.join(argv)}: recorded, not started (not a live host)")
