"""One `nestctl host enable/disable` at a time: an exclusive lock on a file only root can create.

Two runs at once would plan from the same facts and then both back up, write and reload. The
lock is taken before the host is probed, so the second run plans from what the first one left.
It lives in /run/nestctl (root's 0700 directory), not in the world-writable /run/lock, where any
user could hold the lock or plant a symlink. The lock goes away with the process (flock), even
after a crash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nestctl.machine import locks as machine_locks

if TYPE_CHECKING:
    from nestctl.machine import Host

LOCK_DIR = "/run/nestctl"
LOCK_FILE = f"{LOCK_DIR}/host-change.lock"

#: How long a second run waits for the first one (a reload takes seconds, not minutes).
WAIT_SECONDS = 60.0


class LockBusyError(Exception):
    """Another run holds the lock and did not let go in time."""


@contextlib.contextmanager
def change_lock(host: Host, *, wait: float | None = None) -> Iterator[None]:
    """Hold the host-change lock for the block; LockBusyError after `wait` seconds."""
    wait = WAIT_SECONDS if wait is None else wait
    try:
        with host.lock(LOCK_FILE, wait=wait):
            yield
    except machine_locks.LockBusyError as exc:
        holder = f" (pid {exc.holder})" if exc.holder else ""
        raise LockBusyError(
            f"another nestctl host enable/disable is running{holder}; waited {wait:.0f} s for it"
        ) from None
