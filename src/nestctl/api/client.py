"""`ApiClient`: the one door to a Proxmox VE API.

Everything in nestctl that talks to Proxmox over HTTPS goes through this interface:

    client = ApiClient("https://pve1:8006", ApiToken.parse(...), fingerprint="AA:BB:...")
    nodes = client.get("/nodes")                       # the reply's "data", decoded JSON
    upid = client.post("/nodes/pve1/qemu/101/status/reboot")
    task = client.wait_task(upid)                     # TaskStatus(ok, exitstatus, ...)

- Auth: an API token (header) or user + password (a ticket + CSRF token, obtained at the first
  request through the same pinned session).
- TLS: verified, or pinned to a SHA-256 fingerprint; the environment cannot change either
  (see `transport.py`: `http.client` with our own keep-alive pool, no requests). Plain http://
  is refused.
- Errors: every failure is an `ApiError` subclass with the HTTP status and Proxmox's message
  (the `message` field of newer servers, else the HTTP reason phrase that older ones use).
- Reads (GET) are retried on connection errors, timeouts and 502/503/504; writes never are.
- Thread-safe: a collector runs many GETs at once on one client (`pool_size` connections).

Why not proxmoxer's own `ProxmoxAPI`: its ticket login posts through a bare `requests.post`
outside any session, so a pinned fingerprint cannot cover the password; it decodes a malformed
reply to raw bytes without saying so, drops Proxmox's `message`, and disables urllib3's TLS
warnings for the whole process at import. The few lines here keep those guarantees ours.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from nestctl.api.credentials import ApiToken, Credentials, UserPassword
from nestctl.api.errors import (
    ApiAuthError,
    ApiBadReplyError,
    ApiConnectionError,
    ApiError,
    ApiSecondFactorError,
    ApiTimeoutError,
    ApiTlsError,
    error_for_status,
)
from nestctl.api.tls import normalize_fingerprint
from nestctl.api.verbs import ApiVerbs

__all__ = [
    "ApiClient",
    "ApiToken",
    "Credentials",
    "RequestLog",
    "TaskStatus",
    "UserPassword",
    "parse_upid",
]

DEFAULT_PORT = 8006
#: A reply larger than this is not an API reply we want in memory.
MAX_REPLY_BYTES = 64 * 1024 * 1024
#: Statuses worth a retry for a read: a proxy or a busy pveproxy in the way.
_RETRY_STATUSES = frozenset({502, 503, 504})


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: `get_if_changed`'s data when the reply is byte for byte the one given.
UNCHANGED = _Unchanged()

#: Called before every request with (method, path, params): tests check each against the schema.
RequestLog = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class TaskStatus:
    """A finished (or abandoned) task: `ok` is exitstatus == "OK"."""

    upid: str
    node: str
    status: str  # "stopped" | "running"
    exitstatus: str | None

    @property
    def ok(self) -> bool:
        return self.status == "stopped" and self.exitstatus == "OK"


def parse_upid(upid: str) -> str:
    """The node of a task id `UPID:<node>:<pid>:<pstart>:<start>:<type>:<id>:<user>:`."""
    parts = upid.split(":")
    if len(parts) < 9 or parts[0] != "UPID" or not parts[1]:
        raise ApiBadReplyError(f"not a task id (UPID): {upid[:120]!r}")
    return parts[1]


def base_url(url: str) -> str:
    """`https://host[:port][/]` -> `https://host:port/api2/json`. Raises ValueError."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ValueError(f"{url}: the API URL must be https:// (the token would travel in clear)")
    if not parts.hostname:
        raise ValueError(f"{url}: no host name in the API URL")
    if parts.username or parts.password:
        raise ValueError("the API URL must not carry credentials (use a token file)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"{url}: invalid port in the API URL") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"https://{host}:{port}/api2/json"


class ApiClient(ApiVerbs):
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        fingerprint: str | None = None,
        ca_file: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        pool_size: int = 16,
        on_request: RequestLog | None = None,
    ) -> None:
        self.base = base_url(url)
        self.url = self.base.removesuffix("/api2/json")
        self.credentials = credentials
        self.fingerprint = normalize_fingerprint(fingerprint) if fingerprint else None
        self.ca_file = ca_file
        self.timeout = timeout
        self.retries = retries
        self.on_request = on_request
        self.requests_sent = 0
        self._lock = threading.Lock()
        self._ticket: tuple[str, str] | None = None  # (ticket, CSRF token)
        self._userid: str | None = None
        from nestctl.api import transport  # noqa: PLC0415

        parts = urlsplit(self.base)
        self._path = parts.path  # /api2/json
        self._base_headers = {
            "Host": parts.netloc,
            "User-Agent": transport.USER_AGENT,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "*/*",
        }
        try:
            context = transport.tls_context(fingerprint=self.fingerprint, ca_file=ca_file)
        except transport.TransportTlsError as exc:
            raise ApiTlsError(str(exc)) from None
        self._pool = transport.HttpsPool(
            parts.hostname or "",
            parts.port or DEFAULT_PORT,
            context,
            fingerprint=self.fingerprint,
            timeout=timeout,
            size=pool_size,
            limit=MAX_REPLY_BYTES,
        )

    # -- public interface ----------------------------------------------------------------------

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"ApiClient({self.url!r}, user={self.credentials.userid!r})"

    @property
    def userid(self) -> str:
        """Who the server says we are (after login), else who we claim to be."""
        return self._userid or self.credentials.userid

    @property
    def is_root_ticket(self) -> bool:
        """Proxmox lets only root@pam with a ticket (not a token) set `args`."""
        return isinstance(self.credentials, UserPassword) and self.userid == "root@pam"

    def login(self) -> None:
        """Get a ticket now (a token needs none). Raises ApiAuthError when refused."""
        if isinstance(self.credentials, UserPassword):
            with self._lock:
                if self._ticket is None:
                    self._ticket = self._fetch_ticket(self.credentials)

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One API call; the decoded `data` of the reply. Raises an `ApiError` subclass."""
        return self._request(method, path, params, None)[1]

    def get_if_changed(self, path: str, previous: bytes | None) -> tuple[bytes, Any]:
        """GET `path`: (the reply's bytes, its data), or (bytes, `UNCHANGED`) without decoding
        when the bytes equal `previous` (a scan's memo: see nestctl.vm.collect.memo)."""
        return self._request("GET", path, None, previous)

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        previous: bytes | None,
    ) -> tuple[bytes, Any]:
        params = {k: _encode(v) for k, v in (params or {}).items() if v is not None}
        self.login()
        attempts = 1 + (self.retries if method == "GET" else 0)
        for attempt in range(attempts):
            try:
                return self._once(method, path, params, previous=previous)
            except ApiError as exc:
                retry = isinstance(exc, ApiConnectionError) and not isinstance(exc, ApiTlsError)
                retry = retry or exc.status in _RETRY_STATUSES
                if not retry or attempt + 1 >= attempts:
                    raise
                time.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_task(self, upid: str, *, timeout: float = 900.0, interval: float = 1.0) -> TaskStatus:
        """Poll a task until it stops (or `timeout` passes: then status is "running")."""
        node = parse_upid(upid)
        path = f"/nodes/{quote(node, safe='')}/tasks/{quote(upid, safe='')}/status"
        deadline = time.monotonic() + timeout
        while True:
            data = self.get(path)
            if not isinstance(data, dict):
                raise ApiBadReplyError("task status is not an object", method="GET", path=path)
            status = str(data.get("status", ""))
            # A running task has no exitstatus key; a finished one says OK or the error text.
            if status == "stopped" or time.monotonic() >= deadline:
                exitstatus = data.get("exitstatus")
                return TaskStatus(
                    upid, node, status, None if exitstatus is None else str(exitstatus)
                )
            time.sleep(interval)

    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate a GET as this identity (the token, or the ticket
        cookie), for a connection this client does not make itself (a console's WebSocket)."""
        self.login()
        return self._headers("GET")

    # -- transport -----------------------------------------------------------------------------

    def _headers(self, method: str) -> dict[str, str]:
        creds = self.credentials
        if isinstance(creds, ApiToken):
            return {"Authorization": creds.header()}
        if self._ticket is None:
            return {}
        ticket, csrf = self._ticket
        headers = {"Cookie": f"PVEAuthCookie={ticket}"}
        if method != "GET":
            headers["CSRFPreventionToken"] = csrf
        return headers

    def _fetch_ticket(self, creds: UserPassword) -> tuple[str, str]:
        _raw, data = self._once(
            "POST",
            "/access/ticket",
            {"username": creds.user, "password": creds.password},
            auth=False,
        )
        if isinstance(data, dict) and data.get("NeedTFA"):
            # Only a half ticket: Proxmox wants it back with the second factor.
            if not creds.otp:
                raise ApiSecondFactorError(
                    "login needs a second factor (TOTP code) for this user",
                    status=401,
                    method="POST",
                    path="/access/ticket",
                )
            _raw, data = self._once(
                "POST",
                "/access/ticket",
                {
                    "username": creds.user,
                    "tfa-challenge": str(data.get("ticket", "")),
                    "password": f"totp:{creds.otp}",
                },
                auth=False,
            )
        if not isinstance(data, dict) or not isinstance(data.get("ticket"), str):
            raise ApiAuthError(
                "login refused: no ticket in the reply",
                status=200,
                method="POST",
                path="/access/ticket",
            )
        self._userid = str(data.get("username") or creds.user)
        return data["ticket"], str(data.get("CSRFPreventionToken", ""))

    def _once(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        auth: bool = True,
        previous: bytes | None = None,
    ) -> tuple[bytes, Any]:
        from nestctl.api import transport  # noqa: PLC0415

        if self.on_request is not None:
            # The log never sees a password.
            shown = {k: ("***" if k == "password" else v) for k, v in params.items()}
            self.on_request(method, path, shown)
        self.requests_sent += 1
        headers = {**self._base_headers, **(self._headers(method) if auth else {})}
        target = self._path + _quote_path(path)
        body = None
        if method in ("POST", "PUT"):
            body = urlencode(params, doseq=True).encode() if params else None
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif params:
            target += "?" + urlencode(params, doseq=True)
        try:
            resp = self._pool.request(method, target, headers, body)
        except transport.TransportTlsError as exc:
            raise ApiTlsError(
                _tls_message(exc, self.fingerprint), method=method, path=path
            ) from None
        except transport.TransportTimeoutError:
            raise ApiTimeoutError(
                f"no answer within {self.timeout:g} s", method=method, path=path
            ) from None
        except transport.ReplyTooLargeError:
            raise ApiBadReplyError(
                f"reply larger than {MAX_REPLY_BYTES} bytes", method=method, path=path
            ) from None
        except transport.TransportError as exc:
            raise ApiConnectionError(
                f"cannot reach {self.url}: {exc}", method=method, path=path
            ) from None
        if resp.status >= 400:
            raise _http_error(resp.status, resp.reason, resp.body, method=method, path=path)
        if resp.status != 200:
            raise ApiBadReplyError(
                f"unexpected HTTP {resp.status} {resp.reason}", method=method, path=path
            )
        if previous is not None and resp.body == previous:
            return resp.body, UNCHANGED
        return resp.body, decode_data(resp.body, method=method, path=path)


#: What requests' `requote_uri` leaves as it is in a path: callers quote each segment.
_PATH_SAFE = "!#$%&'()*+,/:;=@[]~"


def _quote_path(path: str) -> str:
    return quote(path, safe=_PATH_SAFE)


def _encode(value: Any) -> str | list[str]:
    """Proxmox takes form/query strings; booleans are 1/0; an array is the key repeated."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _BAD


_BAD = object()


def decode_data(raw: bytes, *, method: str, path: str) -> Any:
    """The `data` of a Proxmox API reply's bytes. Raises ApiBadReplyError."""
    body = _loads(raw)
    if not isinstance(body, dict) or "data" not in body:
        raise ApiBadReplyError(
            'the reply is not Proxmox API JSON ({"data": ...}); a proxy or another service '
            "may be answering",
            method=method,
            path=path,
        )
    return body["data"]


def _http_error(status: int, reason: str, raw: bytes, *, method: str, path: str) -> ApiError:
    body = _loads(raw)
    message = ""
    errors: dict[str, str] = {}
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            message = body["message"].strip()
        if isinstance(body.get("errors"), dict):
            errors = {str(k): str(v) for k, v in body["errors"].items()}
    # Servers before libpve-http-server 5.2 put the text only in the reason phrase.
    message = message or (reason or "").strip() or "no message"
    return error_for_status(status, message, method=method, path=path, errors=errors)


def _tls_message(exc: Exception, fingerprint: str | None) -> str:
    if getattr(exc, "pin_mismatch", False):
        return (
            "TLS: the server's certificate does not match the pinned SHA-256 fingerprint "
            "(compare with `pvenode cert info` on the node)"
        )
    if fingerprint:
        return f"TLS handshake failed: {_short(exc)}"
    return (
        "TLS: the server's certificate is not trusted (Proxmox's default certificate is "
        "self-signed: pin it with --fingerprint, from `pvenode cert info`): " + _short(exc)
    )


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
