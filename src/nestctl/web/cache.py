"""Background-refreshed views, per session and target, so a page never waits on a slow node.

Each logged-in identity has its own cache (Proxmox's permissions decide what it may see, so one
visitor's view is never shown to another). A target's view is refreshed every `interval` seconds
while someone looks at it, and stops being refreshed after `idle` seconds without a visit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
Key = tuple[str, ...]


@dataclass
class _Entry:
    value: Any = None
    version: int = 0
    last_wanted: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Refresher:
    """Values built in worker threads, kept fresh in the background, read without waiting."""

    def __init__(self, interval: float, idle: float = 300.0, per_visitor: int = 16) -> None:
        self.interval = interval
        self.idle = idle
        #: Refreshing views per (session, kind): a visitor paging through 2,000 VMs keeps the
        #: last 16 fresh, not 2,000 loops asking Proxmox every few seconds.
        self.per_visitor = per_visitor
        self._entries: dict[Key, _Entry] = {}

    def peek(self, key: Key) -> Any:
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    def version(self, key: Key) -> int:
        entry = self._entries.get(key)
        return 0 if entry is None else entry.version

    def want(self, key: Key, build: Callable[[bool], Any], *, interval: float | None = None) -> Any:
        """The newest value (None before the first build); keeps the refresher for `key` alive.

        `build(poked)` runs in a worker thread; `poked` says an action asked for a fresh value
        (so a builder may refresh parts it otherwise keeps longer)."""
        entry = self._entries.get(key)
        if entry is None:
            self._make_room(key)
            entry = self._entries[key] = _Entry()
        entry.last_wanted = time.monotonic()
        if entry.task is None or entry.task.done():
            entry.task = asyncio.get_running_loop().create_task(
                self._loop(key, entry, build, interval or self.interval)
            )
        return entry.value

    def _make_room(self, key: Key) -> None:
        """Forget the least recently wanted views of this visitor's kind beyond the cap."""
        group = sorted(
            (k for k in self._entries if k[:2] == key[:2]),
            key=lambda k: self._entries[k].last_wanted,
        )
        for old in group[: max(0, len(group) - self.per_visitor + 1)]:
            entry = self._entries.pop(old)
            if entry.task is not None:
                entry.task.cancel()

    def live_keys(self) -> list[Key]:
        return list(self._entries)

    def poke(self, key: Key) -> None:
        """Refresh now (after an action changed something)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.wake.set()

    async def wait_change(self, key: Key, after: int, timeout: float) -> int:
        """Wait until the value of `key` is newer than version `after` (or `timeout`)."""
        entry = self._entries.get(key)
        if entry is None:
            # Nothing to wait on (a key never wanted, or dropped): answer after the timeout,
            # not at once, or a page polling it would loop as fast as it can ask.
            await asyncio.sleep(timeout)
            return 0
        entry.last_wanted = time.monotonic()  # a page polling for changes is being viewed
        if entry.version > after:
            return entry.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(entry.changed.wait(), timeout)
        return entry.version

    def drop(self, prefix: str) -> None:
        """Forget every key starting with `prefix` (a session that ended)."""
        for key in [k for k in self._entries if k and k[0] == prefix]:
            entry = self._entries.pop(key)
            if entry.task is not None:
                entry.task.cancel()

    def close(self) -> None:
        for entry in self._entries.values():
            if entry.task is not None:
                entry.task.cancel()
        self._entries.clear()

    async def _loop(
        self, key: Key, entry: _Entry, build: Callable[[bool], Any], interval: float
    ) -> None:
        poked = True
        while time.monotonic() - entry.last_wanted < self.idle:
            entry.wake.clear()
            entry.value = await asyncio.to_thread(build, poked)
            entry.version += 1
            entry.changed.set()
            entry.changed = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.wake.wait(), interval)
            poked = entry.wake.is_set()
