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
    #: the client address that made it (pre-login sessions are capped per client)
    client: str = ""
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


class SessionLimitError(Exception):
    """Every session slot holds a logged-in visitor: a new one must wait."""


class SessionStore:
    """Sessions with an absolute and an idle lifetime. Thread-safe (pages run in a pool).

    Bounded: at most `max_sessions` in all. A session without a login (one made by `/trust`)
    lives `prelogin_ttl` seconds at most, and one client holds at most `prelogin_per_client` of
    them (its oldest goes first), so nobody can fill the store without a password."""

    def __init__(
        self,
        ttl: float,
        idle_ttl: float,
        clock: Callable[[], float] = time.monotonic,
        on_end: Callable[[Session], None] | None = None,
        *,
        max_sessions: int = 1000,
        prelogin_ttl: float = 600.0,
        prelogin_per_client: int = 8,
    ) -> None:
        self.ttl = ttl
        self.idle_ttl = idle_ttl
        self.max_sessions = max_sessions
        self.prelogin_ttl = prelogin_ttl
        self.prelogin_per_client = prelogin_per_client
        self._clock = clock
        self._on_end = on_end
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def _expired(self, s: Session, now: float) -> bool:
        ttl = self.ttl if s.logins else min(self.ttl, self.prelogin_ttl)
        return now - s.created > ttl or now - s.last_seen > self.idle_ttl

    def create(self, client: str = "", *, logged_in: bool = False) -> Session:
        """A new session for `client`; SessionLimitError when every slot holds a login.

        `logged_in`: it is about to carry a login (so it may push out pre-login sessions)."""
        now = self._clock()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now, client=client)
        gone: list[Session] = []
        with self._lock:
            gone += self._drop_expired(now)
            pre = sorted(
                (x for x in self._sessions.values() if not x.logins), key=lambda x: x.last_seen
            )
            if not logged_in:
                mine = [x for x in pre if x.client == client]
                while len(mine) >= self.prelogin_per_client:
                    gone.append(self._sessions.pop(mine.pop(0).id))
                    pre = [x for x in pre if x.id in self._sessions]
            while len(self._sessions) >= self.max_sessions and pre:
                gone.append(self._sessions.pop(pre.pop(0).id))
            full = len(self._sessions) >= self.max_sessions
            if not full:
                self._sessions[s.id] = s
        for old in gone:
            self._ended(old)
        if full:
            raise SessionLimitError
        return s

    def rotate(self, old: Session | None, client: str = "") -> Session:
        """A new session (new id, new CSRF token) carrying `old`'s logins and pins; `old` ends.
        Run at every login, so an id known before it (fixation) is worth nothing after."""
        new = self.create(client, logged_in=True)
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
            if self._expired(s, now):
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

    def _drop_expired(self, now: float) -> list[Session]:
        gone = [s for s in self._sessions.values() if self._expired(s, now)]
        for s in gone:
            del self._sessions[s.id]
        return gone

    def sweep(self) -> None:
        """End every expired session (run now and then, so forgotten logins do not linger)."""
        now = self._clock()
        with self._lock:
            gone = self._drop_expired(now)
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
    """Login attempts, reserved *before* Proxmox is asked, so a burst cannot race past the limit.

    Two budgets per `window` seconds: `attempts` per (client address, user name) — the lockout
    one attacker causes is theirs alone, never another client's and never the owner's elsewhere
    (`root@pam` too) — and `client_attempts` per client across every user name, so one address
    cannot spray passwords over many accounts. Behind an SSH tunnel or a reverse proxy every
    visitor is the same client: they share both budgets (docs/serve.md says so).
    An attempt that failed for a reason other than the credentials (node down, certificate to
    confirm, second factor asked) is given back; a successful login clears its pair's count."""

    def __init__(
        self,
        attempts: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        client_attempts: int | None = None,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.client_attempts = client_attempts if client_attempts is not None else 4 * attempts
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[str, deque[float]] = {}

    def _keys(self, client: str, username: str) -> list[tuple[str, int]]:
        # The user name without a token id: guessing secrets of many tokens of one user counts once.
        user = username.split("!", 1)[0].strip().lower()
        return [
            (f"pair:{client}\n{user}", self.attempts),
            (f"client:{client}", self.client_attempts),
        ]

    def _wait(self, client: str, username: str, now: float) -> float:
        wait = 0.0
        for key, limit in self._keys(client, username):
            q = self._used.get(key)
            if not q:
                continue
            while q and now - q[0] > self.window:
                q.popleft()
            if not q:
                del self._used[key]
            elif len(q) >= limit:
                wait = max(wait, self.window - (now - q[0]))
        return wait

    def sweep(self) -> None:
        """Forget counts older than the window (run now and then: many clients, many names)."""
        with self._lock:
            now = self._clock()
            for key in list(self._used):
                q = self._used[key]
                while q and now - q[0] > self.window:
                    q.popleft()
                if not q:
                    del self._used[key]

    def tracked(self) -> int:
        with self._lock:
            return len(self._used)

    def retry_after(self, client: str, username: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        with self._lock:
            return self._wait(client, username, self._clock())

    def reserve(self, client: str, username: str) -> tuple[float, float | None]:
        """(0, ticket) when an attempt may go to Proxmox now — it is counted already — or
        (seconds to wait, None). Check and count happen under one lock: no burst slips by."""
        with self._lock:
            now = self._clock()
            wait = self._wait(client, username, now)
            if wait > 0:
                return wait, None
            for key, _limit in self._keys(client, username):
                self._used.setdefault(key, deque()).append(now)
            return 0.0, now

    def _take_back(self, key: str, ticket: float) -> None:
        q = self._used.get(key)
        if q is not None and ticket in q:
            q.remove(ticket)

    def release(self, client: str, username: str, ticket: float) -> None:
        """The attempt did not test the credentials: it does not count."""
        with self._lock:
            for key, _limit in self._keys(client, username):
                self._take_back(key, ticket)

    def failed(self, client: str, username: str) -> None:
        """Count a failed attempt that was not reserved (kept for callers without a ticket)."""
        now = self._clock()
        with self._lock:
            for key, _limit in self._keys(client, username):
                self._used.setdefault(key, deque()).append(now)

    def succeeded(self, client: str, username: str, ticket: float | None = None) -> None:
        with self._lock:
            pair, client_key = (k for k, _ in self._keys(client, username))
            self._used.pop(pair, None)
            if ticket is not None:
                self._take_back(client_key, ticket)
