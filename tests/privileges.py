"""Run a check as an unprivileged user, so "not permitted" paths are tested where CI runs (as root).

CI runs as root, and root reads a 0600 file anyway: a test of what a normal user sees must drop
privileges. `as_unprivileged` forks, switches the child to nobody/nogroup (setresgid/setresuid,
no supplementary groups: what `setpriv --reuid=nobody --regid=nogroup --clear-groups` does), runs
the function there and hands its result (or failure) back. Forking keeps the interpreter and the
imported code: nothing has to be importable by nobody, only the files the test reads.
Run as a normal user, the function simply runs in-process: that user is already unprivileged.

`needs_root` is the other direction: such a test runs as root in CI, and skips only outside CI.
The `open_tmp_path` fixture (tests/conftest.py) is a temporary directory nobody can traverse too
(pytest's own tmp_path sits under a 0700 directory).
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

#: Modes that deny the owner too, so a test means the same as nobody (CI, root-owned tree) and as
#: a normal user who owns the tree.
DENY_FILE = 0o000
DENY_DIR = 0o000
PASS_ONLY = 0o111  # a directory one may pass through but not list

NOBODY_UID = 65534
NOGROUP_GID = 65534


def is_root() -> bool:
    return os.geteuid() == 0


def needs_root() -> None:
    """Skip outside CI when not root; in CI (which runs as root) never skip."""
    if not is_root():
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root, and CI runs as root")
        pytest.skip("needs root (CI runs it as root)")


def as_unprivileged(func: Callable[[], T]) -> T:
    """`func()` run as an unprivileged user; its exception comes back as an AssertionError."""
    if not is_root():
        return func()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(read_end)
        try:
            os.setgroups([])
            os.setresgid(NOGROUP_GID, NOGROUP_GID, NOGROUP_GID)
            os.setresuid(NOBODY_UID, NOBODY_UID, NOBODY_UID)
            outcome: tuple[str, object] = ("ok", func())
        except BaseException:  # noqa: BLE001 - every failure goes back to the parent
            outcome = ("error", traceback.format_exc())
        try:
            data = pickle.dumps(outcome)
        except Exception:  # noqa: BLE001
            data = pickle.dumps(("error", f"unpicklable result: {outcome[1]!r}"))
        with os.fdopen(write_end, "wb") as fh:
            fh.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind != "ok":
        raise AssertionError(f"in the unprivileged child:\n{value}")
    return value  # type: ignore[no-any-return]
