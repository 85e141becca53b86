"""An exclusive lock on a file, for the door (`Host.lock`): one change, one state writer at a time.

flock on a file created 0600 (no link followed) in a directory made 0700: the lock goes away with
the process, even after a crash. The holder writes its pid into the file, so a second run that
gives up can say who holds it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from nestctl.parse import is_ascii_digits


class LockBusyError(Exception):
    """Another process holds the lock and did not let go in time; `holder` is its pid, if known."""

    def __init__(self, path: str, holder: str | None) -> None:
        super().__init__(f"{path} is held by {f'pid {holder}' if holder else 'another process'}")
        self.holder = holder


def _holder(fd: int) -> str | None:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if is_ascii_digits(text):
            return text
    return None


@contextlib.contextmanager
def hold(real: str, *, wait: float | None) -> Iterator[None]:
    """Hold the lock at `real` for the block: wait None blocks; else LockBusyError after `wait`."""
    import fcntl  # noqa: PLC0415 - POSIX only, and only changes need it

    os.makedirs(os.path.dirname(real), mode=0o700, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags, 0o600)
    try:
        if wait is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockBusyError(real, _holder(fd)) from None
                    time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
