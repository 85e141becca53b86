"""The state file `watch` and the dashboard share: events, deliveries, acknowledgements.

Small JSON, written atomically through `Host.write_atomic` (a temp file in the same directory,
mode 0600, fsync, rename, fsync of the directory): a reader, or a `watch` killed mid-write, sees
the old file or the new one, never half of one. Read-modify-write happens under an exclusive
lock on a sidecar `.lock` file, so an acknowledgement from the dashboard and a poll of `watch`
never lose each other's change.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nestctl.parse import is_ascii_digits
from nestctl.watch.rules import Memory

VERSION = 1
MODE = 0o600
MAX_BYTES = 16 * 1024 * 1024


class StateError(Exception):
    """The state file cannot be used (one plain sentence)."""


@dataclass
class WatchState:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate: dict[str, list[float]] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    last_full: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "records": self.records,
            "rate": self.rate,
            "memory": {
                "last_status": {
                    t: {str(v): s for v, s in m.items()} for t, m in self.memory.last_status.items()
                },
                "nested_on_seen": sorted(self.memory.nested_on_seen),
                "stop_tasks": self.memory.stop_tasks,
            },
            "last_full": self.last_full,
        }

    @classmethod
    def from_json(cls, body: Any) -> WatchState:
        if not isinstance(body, dict) or body.get("version") != VERSION:
            raise StateError("the state file is not a nestctl watch state (version 1)")
        mem = body.get("memory") or {}
        memory = Memory(
            last_status={
                str(t): {int(v): str(s) for v, s in m.items() if is_ascii_digits(str(v))}
                for t, m in (mem.get("last_status") or {}).items()
                if isinstance(m, dict)
            },
            nested_on_seen={str(x) for x in mem.get("nested_on_seen") or []},
            stop_tasks={
                str(t): {str(u): bool(e) for u, e in m.items()}
                for t, m in (mem.get("stop_tasks") or {}).items()
                if isinstance(m, dict)
            },
        )
        records = body.get("records") or {}
        if not isinstance(records, dict) or not all(
            isinstance(r, dict) and isinstance(r.get("event"), dict) for r in records.values()
        ):
            raise StateError("the state file's records are malformed")
        rate = {
            str(k): [float(t) for t in v]
            for k, v in (body.get("rate") or {}).items()
            if isinstance(v, list)
        }
        last_full = body.get("last_full")
        return cls(
            records=records,
            rate=rate,
            memory=memory,
            last_full=float(last_full) if isinstance(last_full, int | float) else None,
        )


class StateStore:
    """One state file. `with store.edit() as state:` reads it, and writes it back on success."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def load(self) -> WatchState:
        from nestctl.userfile import UserFileError, read_user_file  # noqa: PLC0415

        try:
            raw = read_user_file(self.path, MAX_BYTES, what="watch state file")
        except FileNotFoundError:
            return WatchState()
        except UserFileError as exc:
            raise StateError(str(exc)) from None
        try:
            return WatchState.from_json(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
            raise StateError(
                f"{self.path}: not a readable state file ({type(exc).__name__})"
            ) from None

    @staticmethod
    def text_of(state: WatchState) -> str:
        return json.dumps(state.to_json(), sort_keys=True, allow_nan=False, indent=1) + "\n"

    def save(self, state: WatchState, *, unless: str | None = None) -> None:
        """Write `state` (nothing when its text equals `unless`: a calm poll writes nothing)."""
        from nestctl.machine import Host  # noqa: PLC0415

        text = self.text_of(state)
        if text == unless:
            return
        try:
            Host("/").write_atomic(self.path, text, mode=MODE)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def set_aside(self) -> str:
        """Rename a damaged state file out of the way (kept for a look); returns its new name."""
        from nestctl.machine import Host  # noqa: PLC0415

        aside = f"{self.path}.damaged"
        with self.locked():
            try:
                Host("/").rename(self.path, aside)
            except OSError as exc:
                raise StateError(f"{self.path}: cannot move aside: {exc.strerror or exc}") from None
        return aside

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from nestctl.machine import Host  # noqa: PLC0415

        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(Host("/").lock(self.path + ".lock"))
            except OSError as exc:
                raise StateError(f"{self.path}: cannot lock: {exc.strerror or exc}") from None
            yield

    @contextlib.contextmanager
    def edit(self) -> Iterator[WatchState]:
        with self.locked():
            state = self.load()
            before = self.text_of(state)
            yield state
            self.save(state, unless=before)
