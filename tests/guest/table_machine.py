"""A `Machine` answering from tables: files from a dict, commands from recorded answers.

Faithful to how output reaches the probes: a command's stdout/stderr are bytes, handed over decoded
as UTF-8 with replacement characters, as both the system runner and the guest agent adapter do.
It has no `stat`, like the guest agent. Commands without an answer come back `unanswered`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nestctl.machine import (
    MAX_READ_BYTES,
    CommandResult,
    CommandStatus,
    FileRead,
    Listing,
    Presence,
    ReadStatus,
)


@dataclass(frozen=True)
class Answer:
    rc: int
    stdout: bytes = b""
    stderr: bytes = b""


@dataclass
class TableMachine:
    answers: dict[tuple[str, ...], Answer]
    files: dict[str, str | bytes] = field(default_factory=dict)
    unanswered: CommandStatus = CommandStatus.RECORDED
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        if hostpath not in self.files:
            return FileRead(hostpath, ReadStatus.MISSING)
        data = self.files[hostpath]
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
        return FileRead(hostpath, ReadStatus.OK, raw[:max_bytes].decode("utf-8", "replace"))

    def exists(self, hostpath: str) -> Presence:
        prefix = hostpath.rstrip("/") + "/"
        found = hostpath in self.files or any(p.startswith(prefix) for p in self.files)
        return Presence(hostpath, ReadStatus.OK if found else ReadStatus.MISSING)

    def listdir(self, hostpath: str) -> Listing:
        prefix = hostpath.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)}
        if not names:
            return Listing(hostpath, ReadStatus.MISSING)
        return Listing(hostpath, ReadStatus.OK, tuple(sorted(names)))

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        args = tuple(argv)
        self.ran.append(args)
        answer = self.answers.get(args)
        if answer is None:
            rc = 127 if self.unanswered is CommandStatus.NOT_FOUND else None
            return CommandResult(args, self.unanswered, rc)
        status = CommandStatus.OK if answer.rc in ok_codes else CommandStatus.FAILED
        return CommandResult(
            args,
            status,
            answer.rc,
            answer.stdout.decode("utf-8", errors="replace"),
            answer.stderr.decode("utf-8", errors="replace"),
        )
