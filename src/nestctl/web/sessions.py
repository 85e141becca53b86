"""Server-side sessions and the login rate limit.

The browser holds only a random session id; the Proxmox ticket or token secret stays in this
process, so no secret ever reaches a page, a URL or a log line.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    id: str
    csrf: str
    created: float
    last_seen: float
    #: target name -> (identity shown, API as that identity)
    logins: dict[str, tuple[str, Any]] = field(default_factory=dict)
    #: fingerprints this browser confirmed on first use, per target, not yet proven by a login
    pins: dict[str, str] = field(default_factory=dict)
    #: judge every VM as if it wanted nesting (the dashboard's --all-vms; web/pages/prefs.py)
    all_vms: bool = False

    def identity(self, target: str) -> str | None:
        login = self.logins.get(target)
        return login[0] if login else None

    def api(self, target: str) -> Any:
        login = self.logins.get(target)
        return login[1] if login else None

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """Sessions with an absolute and an idle lifetime. Thread-safe (pages run in a pool)."""

    def __init__(
        self,
        ttl: float,
        idle_ttl: float,
        clock: Callable[[], float] = time.monotonic,
        on_end: Callable[[Session], None] | None = None,
    ) -> None:
        self.ttl = ttl
        self.idle_ttl = idle_ttl
        self._clock = clock
        self._on_end = on_end
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self) -> Session:
        now = self._clock()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[s.id] = s
        return s

    def rotate(self, old: Session | None) -> Session:
        """A new session (new id, new CSRF token) carrying `old`'s logins and pins; `old` ends.
        Run at every login, so an id known before it (fixation) is worth nothing after."""
        new = self.create()
        if old is not None:
            new.logins = dict(old.logins)
            new.pins = dict(old.pins)
            self.end(old.id)
        return new

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if now - s.created > self.ttl or now - s.last_seen > self.idle_ttl:
                del self._sessions[sid]
                expired = s
            else:
                s.last_seen = now
                return s
        self._ended(expired)
        return None

    def end(self, sid: str) -> None:
        with self._lock:
            s = self._sessions.pop(sid, None)
        if s is not None:
            self._ended(s)

    def sweep(self) -> None:
        """End every expired session (run now and then, so forgotten logins do not linger)."""
        now = self._clock()
        with self._lock:
            gone = [
                s
                for s in self._sessions.values()
                if now - s.created > self.ttl or now - s.last_seen > self.idle_ttl
            ]
            for s in gone:
                del self._sessions[s.id]
        for s in gone:
            self._ended(s)

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def _ended(self, s: Session) -> None:
        s.logins.clear()
        if self._on_end is not None:
            self._on_end(s)


class LoginLimiter:
    """At most `attempts` failed logins per `window` seconds, per client address and per user."""

    def __init__(
        self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _keys(self, client: str, username: str) -> list[str]:
        # The user name without a token id: guessing secrets of many tokens of one user counts once.
        user = username.split("!", 1)[0].strip().lower()
        return [f"client:{client}", f"user:{user}"]

    def retry_after(self, client: str, username: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(client, username):
                q = self._failures.get(key)
                if not q:
                    continue
                while q and now - q[0] > self.window:
                    q.popleft()
                if len(q) >= self.attempts:
                    wait = max(wait, self.window - (now - q[0]))
        return wait

    def failed(self, client: str, username: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(client, username):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, client: str, username: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(client, username)[1], None)
