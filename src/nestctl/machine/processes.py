"""Long-lived processes the door starts for a caller who talks to them while they run.

`Host.run` waits for a command and returns its output; a few helpers must stay up instead: QEMU
frozen while the oracle asks it over its socket, `ssh ... tar` whose output is read as a stream.
They start here, through the runner's `spawn`, so the test guard that refuses real commands sees
them too, and a host under another root (`--root`) never starts anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from subprocess import Popen, SubprocessError, TimeoutExpired
from typing import IO

# What callers of `spawn` wait and catch with, so they need not import subprocess themselves.
__all__ = ["Popen", "SpawnRefusedError", "SubprocessError", "TimeoutExpired", "spawn"]

#: Where a spawned process's stream goes: a pipe, nowhere, or an open file.
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
Stream = int | IO[bytes] | None

_PR_SET_PDEATHSIG = 1


class SpawnRefusedError(OSError):
    """The host is not live (another root, a recording runner): nothing is started."""


def die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec function: SIGKILL this child when its parent dies (Linux prctl), so no helper
    (an oracle QEMU) outlives a nestctl that was killed outright (SIGKILL gives no chance to reap).

    The signal fires when the thread that forked exits: callers fork from the thread that waits
    for the child. prctl is looked up here, before the fork: the child only calls
    it (no import, no allocation-heavy work between fork and exec).
    """
    prctl: Callable[..., int] | None = None
    if sys.platform == "linux":
        import ctypes  # noqa: PLC0415 - only when QEMU is started

        prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    stdin: Stream = DEVNULL,
    stdout: Stream = DEVNULL,
    stderr: Stream = DEVNULL,
    own_group: bool = False,
    tied_to_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `argv` (never a shell string). `own_group`: a Ctrl-C on our terminal does not reach
    it; `tied_to_parent`: it dies with this process."""
    return Popen(
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        close_fds=True,
        process_group=0 if own_group else None,
        preexec_fn=die_with_parent(os.getpid()) if tied_to_parent else None,  # noqa: PLW1509 - prctl only
    )
