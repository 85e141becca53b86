"""The one middleware every request passes: headers, session, cross-origin and CSRF checks.

Unsafe methods pass only when the browser says the request is same-origin (`Sec-Fetch-Site`) or
its `Origin` matches `Host` (the approach of Datasette and Go 1.25's CrossOriginProtection), *and*
they carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`). The login form,
which has no session yet, carries a one-time login nonce bound to a cookie instead.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote

from nestctl.web.paths import path_problem
from nestctl.web.sessions import Session, SessionStore
from nestctl.web.settings import host_problem

log = logging.getLogger("nestctl.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths a visitor without a session may use.
PUBLIC_PREFIXES = ("/login", "/static/", "/icon-", "/manifest.webmanifest", "/healthz", "/trust")
MAX_FORM_BYTES = 64 * 1024

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def cookie_name(tls: bool) -> str:
    # __Host- binds the cookie to this origin (no Domain, Path=/), but browsers demand Secure.
    return "__Host-nestctl_session" if tls else "nestctl_session"


LOGIN_NONCE_COOKIE = "nestctl_login"


def security_headers(tls: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if tls:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


def parse_cookie_header(text: str) -> dict[str, str]:
    """Cookies of one `Cookie` header, each on its own (as Starlette's cookie_parser does).

    SimpleCookie gives up on the whole header at the first cookie it dislikes, so one odd
    cookie set by another page on this host (`zz=a b`) would hide ours and log the visitor
    out. Here a malformed pair is skipped and the rest kept; the first of two same names wins,
    as browsers send the most specific path first."""
    jar: dict[str, str] = {}
    for chunk in text.split(";"):
        name, sep, value = chunk.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        jar.setdefault(name, value)
    return jar


def cookie_values(scope: Scope, wanted: str) -> list[str]:
    """Every value sent for cookie `wanted` (a page elsewhere on this host may set its own)."""
    values: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for chunk in value.decode("latin-1").split(";"):
                key, sep, val = chunk.partition("=")
                if sep and key.strip() == wanted:
                    values.append(val.strip().strip('"'))
    return values


def read_cookies(scope: Scope) -> dict[str, str]:
    jar: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for k, v in parse_cookie_header(value.decode("latin-1")).items():
                jar.setdefault(k, v)
    return jar


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cross_origin_problem(scope: Scope) -> str | None:
    """Why an unsafe request looks cross-origin, or None when it is same-origin."""
    site = header(scope, b"sec-fetch-site")
    if site is not None:
        return None if site in ("same-origin", "none") else f"Sec-Fetch-Site is {site}"
    origin = header(scope, b"origin")
    if origin is None or origin == "null":
        # No browser signal at all (curl, old browsers): the CSRF token alone decides.
        return None if origin is None else "Origin is null"
    host = header(scope, b"host") or ""
    want = f"{scope.get('scheme', 'http')}://{host}"
    return None if origin == want else f"Origin {origin} is not {want}"


def _login_required(path: str) -> bool:
    return not any(path == p or path.startswith(p) for p in PUBLIC_PREFIXES)


class SecurityMiddleware:
    """Headers on every response (errors too); Host allow-list; session lookup; object names
    checked; cross-origin + CSRF on unsafe methods; no internal error's text on a page."""

    def __init__(
        self,
        app: App,
        store: SessionStore,
        *,
        tls: bool,
        listen: str = "127.0.0.1",
        allowed_hosts: list[str] | None = None,
        body_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.store = store
        self.tls = tls
        self.cookie = cookie_name(tls)
        self.headers = security_headers(tls)
        self.listen = listen
        self.allowed_hosts = list(allowed_hosts or [])
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in names]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self._checked(scope, receive, send_with_headers)
        except Exception:
            # The traceback goes to the server's log; the page says one plain sentence.
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _reply(send_with_headers, 500, "internal error: the server log says more")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket passes the same Host allow-list, and its `Origin` (browsers always send
        one) must be this dashboard: another site's page cannot open one with our cookie."""
        problem = host_problem(header(scope, b"host"), self.listen, self.allowed_hosts)
        if problem is None:
            origin = header(scope, b"origin")
            want = ("https" if self.tls else "http") + "://" + (header(scope, b"host") or "")
            if origin is not None and origin != want:
                problem = f"Origin {origin} is not {want}"
        if problem is not None:
            log.warning("websocket refused: %s", problem)
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008})
            return
        session = next(
            filter(None, (self.store.get(v) for v in cookie_values(scope, self.cookie))), None
        )
        state = scope.setdefault("state", {})
        state["session"] = session
        state["cookies"] = read_cookies(scope)
        await self.app(scope, receive, send)

    async def _checked(self, scope: Scope, receive: Receive, send_with_headers: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        problem = host_problem(header(scope, b"host"), self.listen, self.allowed_hosts)
        if problem is not None:
            await _reply(send_with_headers, 421, problem)
            return
        cookies = read_cookies(scope)
        # Of several cookies by our name (one may be planted by another page), the live one.
        session = next(
            filter(None, (self.store.get(v) for v in cookie_values(scope, self.cookie))), None
        )
        state = scope.setdefault("state", {})
        state["session"] = session
        state["cookies"] = cookies

        if (session is None or not session.logins) and _login_required(path):
            accept = header(scope, b"accept") or "*/*"
            if method in SAFE_METHODS and ("text/html" in accept or "*/*" in accept):
                target = path + (
                    "?" + scope["query_string"].decode() if scope["query_string"] else ""
                )
                await _redirect(send_with_headers, "/login?next=" + quote(target, safe="/"))
            else:
                await _reply(send_with_headers, 401, "log in first")
            return

        bad_name = path_problem(path)
        if bad_name is not None:
            await _reply(send_with_headers, 404, bad_name)
            return

        if method in SAFE_METHODS:
            await self.app(scope, receive, send_with_headers)
            return

        problem = cross_origin_problem(scope)
        if problem is not None:
            await _reply(send_with_headers, 403, f"cross-origin request refused ({problem})")
            return
        try:
            body, too_big = await asyncio.wait_for(_read_body(receive), self.body_timeout)
        except TimeoutError:
            await _reply(send_with_headers, 408, "request body too slow")
            return
        if too_big:
            await _reply(send_with_headers, 413, "request too large")
            return
        form = _parse_form(scope, body)
        state["form"] = form
        if not _token_ok(session, cookies, form, scope, path):
            await _reply(send_with_headers, 403, "CSRF token missing or wrong: reload the page")
            return
        await self.app(scope, _replay(body), send_with_headers)


def _token_ok(
    session: Session | None,
    cookies: dict[str, str],
    form: dict[str, str],
    scope: Scope,
    path: str,
) -> bool:
    sent = form.get("csrf") or header(scope, b"x-csrf-token")
    if session is not None and session.csrf_ok(sent):
        return True
    if path in ("/login", "/trust"):
        nonce = cookies.get(LOGIN_NONCE_COOKIE)
        return bool(nonce and sent and hmac.compare_digest(nonce.encode(), sent.encode()))
    return False


def _parse_form(scope: Scope, body: bytes) -> dict[str, str]:
    ctype = (header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int)}
    return {}


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _reply(send: Send, status: int, text: str) -> None:
    body = text.encode() + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
