"""Tasks followed in the background from the moment an action started them.

The follower polls the task (one request at a time) while the browser loads the task page, so
"shown as ended" comes right after the task's own end; pages and `/wait` read the follower's
state instead of asking Proxmox again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from nestctl.api import actions
from nestctl.web.snapshot import describe_error


@dataclass
class Follower:
    upid: actions.Upid
    state: actions.TaskState | None = None
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    polled: asyncio.Event = field(default_factory=asyncio.Event)  # the first answer is in
    ended_at: float | None = None
    task: asyncio.Task[None] | None = None


class Followers:
    """Per session: UPID -> its follower. Finished ones are forgotten after `keep` seconds."""

    def __init__(self, keep: float = 600.0) -> None:
        self.keep = keep
        self._items: dict[tuple[str, str], Follower] = {}

    def get(self, sid: str, upid: actions.Upid) -> Follower | None:
        return self._items.get((sid, upid.text))

    def start(self, sid: str, api: Any, upid: actions.Upid) -> Follower:
        self._forget_old()
        key = (sid, upid.text)
        follower = self._items.get(key)
        if follower is None:
            follower = self._items[key] = Follower(upid)
            follower.task = asyncio.get_running_loop().create_task(self._run(api, follower))
        return follower

    def drop(self, sid: str) -> None:
        for key in [k for k in self._items if k[0] == sid]:
            follower = self._items.pop(key)
            if follower.task is not None:
                follower.task.cancel()

    def close(self) -> None:
        for follower in self._items.values():
            if follower.task is not None:
                follower.task.cancel()
        self._items.clear()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, f in list(self._items.items()):
            if f.ended_at is not None and now - f.ended_at > self.keep:
                del self._items[key]

    async def _run(self, api: Any, follower: Follower) -> None:
        start = time.monotonic()
        try:
            while True:
                follower.state = await asyncio.to_thread(actions.task_state, api, follower.upid)
                follower.polled.set()
                if not follower.state.running:
                    break
                await asyncio.sleep(actions.poll_delay(time.monotonic() - start))
        except Exception as exc:  # noqa: BLE001 - shown on the task page
            follower.error = describe_error(exc)
        follower.ended_at = time.monotonic()
        follower.polled.set()
        follower.done.set()
