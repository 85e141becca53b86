"""A fake Windows machine answering `run` from recorded outputs (tests/data/windows).

Faithful to how output reaches the probes: Windows writes CRLF; wsl.exe writes UTF-16LE to a pipe;
bcdedit and PowerShell write the OEM code page (CP932 on ja-JP); whoever runs the command (the
system runner, or the guest agent after base64) hands the bytes over decoded as UTF-8 with
replacement characters. Commands without a recording come back RECORDED (not run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nestctl.machine import MAX_READ_BYTES, CommandResult, CommandStatus, FileRead, ReadStatus

DATA = Path(__file__).resolve().parents[1] / "data" / "windows"


def recorded(name: str) -> str:
    """A recorded output without its first line (the provenance note)."""
    text = (DATA / name).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    assert first.startswith("# source: windows-guest.md"), f"{name} lacks its provenance note"
    return rest


def wire(name: str, encoding: str = "utf-8", newline: str = "\r\n") -> bytes:
    """The bytes a Windows program would write for a recorded output."""
    return recorded(name).replace("\n", newline).encode(encoding)


@dataclass(frozen=True)
class Answer:
    rc: int
    stdout: bytes = b""
    stderr: bytes = b""


@dataclass
class FakeWindows:
    answers: dict[tuple[str, ...], Answer]
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        return FileRead(hostpath, ReadStatus.MISSING)

    def exists(self, hostpath: str) -> bool:
        return False

    def listdir(self, hostpath: str) -> list[str] | None:
        return None

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
            return CommandResult(args, CommandStatus.RECORDED)
        status = CommandStatus.OK if answer.rc in ok_codes else CommandStatus.FAILED
        return CommandResult(
            args,
            status,
            answer.rc,
            answer.stdout.decode("utf-8", errors="replace"),
            answer.stderr.decode("utf-8", errors="replace"),
        )
