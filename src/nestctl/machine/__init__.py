"""The one door to the machine: every file read, file write and command goes through `Host`.

A `Host` is rooted at a directory (``--root``, default ``/``). Paths given to it are always
host-absolute (``/proc/cpuinfo``); it maps them under its root. Commands run only when the root is
``/``; under any other root they are recorded instead, so tests and collected snapshots exercise the
very same code paths as a live host without touching it.

The package is split by what it holds: `reads` (what probing a path gave), `commands` (runners and
their results), `fileio` (the bounded, non-blocking reads and entry-exact copies under the door),
`door` (`Host` and the `Machine` protocol). Import from here.
"""

from __future__ import annotations

from nestctl.machine.commands import (
    CommandResult,
    CommandStatus,
    RecordingRunner,
    Responder,
    Runner,
    SystemRunner,
    status_of_command,
)
from nestctl.machine.door import Host, Machine, ManifestEntry
from nestctl.machine.fileio import UnsafeWriteError
from nestctl.machine.reads import (
    MAX_READ_BYTES,
    FileRead,
    Listing,
    Presence,
    ReadStatus,
    Record,
    status_of_oserror,
)

__all__ = [
    "MAX_READ_BYTES",
    "CommandResult",
    "CommandStatus",
    "FileRead",
    "Host",
    "Listing",
    "Machine",
    "ManifestEntry",
    "Presence",
    "ReadStatus",
    "Record",
    "RecordingRunner",
    "Responder",
    "Runner",
    "SystemRunner",
    "UnsafeWriteError",
    "status_of_command",
    "status_of_oserror",
]
