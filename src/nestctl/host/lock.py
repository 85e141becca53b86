"""One `nestctl host enable/disable` at a time: an exclusive lock on a file only root can create.

Two runs at once would plan from the same facts and then both back up, write and reload. The
lock is taken before the host is probed, so the second run plans from what the first one left.
It lives in /run/nestctl (root's 0700 directory), not in the world-writable /run/lock, where any
user could hold the lock or plant a symlink. The lock goes away with the process (flock), even
after a crash.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nestctl.parse import is_ascii_digits

if TYPE_CHECKING:
    from nestctl.machine import Host

LOCK_DIR = "/run/nestctl"
LOCK_FILE = f"{LOCK_DIR}/host-change.lock"

#: How long a second run waits for the first one (a reload takes seconds, not minutes).
WAIT_SECONDS = 60.0


class LockBusyError(Exception):
    """Another run holds the lock and did not let go in time."""


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if is_ascii_digits(text):
            return f" (pid {text})"
    return ""


@contextlib.contextmanager
def change_lock(host: Host, *, wait: float | None = None) -> Iterator[None]:
    """Hold the host-change lock for the block; LockBusyError after `wait` seconds."""
    import fcntl  # noqa: PLC0415 - POSIX only, and only changes need it

    wait = WAIT_SECONDS if wait is None else wait
    os.makedirs(host.real(LOCK_DIR), mode=0o700, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(host.real(LOCK_FILE), flags, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusyError(
                        f"another nestctl host enable/disable is running{_holder(fd)}; "
                        f"waited {wait:.0f} s for it"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
