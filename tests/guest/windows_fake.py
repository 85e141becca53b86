"""Recorded Windows outputs (tests/data/windows) and a fake Windows machine answering with them.

Windows writes CRLF; wsl.exe writes UTF-16LE to a pipe; bcdedit and PowerShell write the OEM code
page (CP932 on ja-JP). `wire` produces those bytes; `TableMachine` hands them over as the real
runners do. Commands without a recording come back RECORDED (not run).
"""

from __future__ import annotations

from pathlib import Path

from tests.guest.table_machine import Answer, TableMachine

DATA = Path(__file__).resolve().parents[1] / "data" / "windows"

__all__ = ["Answer", "FakeWindows", "recorded", "wire"]


def recorded(name: str) -> str:
    """A recorded output without its first line (the provenance note)."""
    text = (DATA / name).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    assert first.startswith("# source: windows-guest.md"), f"{name} lacks its provenance note"
    return rest


def wire(name: str, encoding: str = "utf-8", newline: str = "\r\n") -> bytes:
    """The bytes a Windows program would write for a recorded output."""
    return recorded(name).replace("\n", newline).encode(encoding)


def FakeWindows(answers: dict[tuple[str, ...], Answer]) -> TableMachine:  # noqa: N802 - a fake's name
    return TableMachine(answers)
