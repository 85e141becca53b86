"""The API's HTTPS transport: `http.client` over one TLS policy, with a keep-alive pool per host.

Why not requests (the transport until issue 24): a scan is thousands of small GETs, and
requests + urllib3 spent about 0.6 ms of CPU on each (header dictionaries, hooks, adapters,
retry objects, a liveness poll), three times the whole exchange over `http.client`. What they did
for us is small and stays here, exactly:

- TLS: verified against the CA bundle requests used (certifi's, which Debian points at the
  system store; else OpenSSL's compiled-in one), or a `ca_file`; or pinned: no CA check, the
  certificate's SHA-256 must match, compared before a single byte of the request is sent.
- The environment is never read: no proxies, no ~/.netrc, no REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
  SSL_CERT_FILE or SSL_CERT_DIR (the context loads one named bundle, never OpenSSL's env paths).
- Keep-alive: an idle connection is reused when the server has not closed it (checked as
  urllib3 did, with a zero-timeout poll); a failed connection is never reused.
- `Accept-Encoding: gzip, deflate` as before, so pveproxy may compress large lists.
- Replies larger than `limit` bytes (decoded) are refused.

Errors are this module's `TransportError`s (TLS, timeout, connection) and `ReplyTooLargeError`;
the client turns them into its typed `ApiError`s.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import select
import socket
import ssl
import threading
import zlib
from dataclasses import dataclass

__all__ = [
    "HttpsPool",
    "Reply",
    "ReplyTooLargeError",
    "TransportConnectError",
    "TransportError",
    "TransportTimeoutError",
    "TransportTlsError",
    "tls_context",
]

USER_AGENT = "nestctl"


class TransportError(Exception):
    """No HTTP answer (the message is one line, never a secret)."""


class TransportTlsError(TransportError):
    """The handshake failed, the certificate is not trusted, or it is not the pinned one."""

    def __init__(self, message: str, *, pin_mismatch: bool = False) -> None:
        super().__init__(message)
        self.pin_mismatch = pin_mismatch


class TransportTimeoutError(TransportError):
    """No answer within the timeout."""


class TransportConnectError(TransportError):
    """Refused, unresolvable, reset, closed mid-answer."""


class ReplyTooLargeError(Exception):
    """A reply over the size limit."""


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    body: bytes


def _default_bundle() -> tuple[str | None, str | None]:
    """The CA store requests verified against: certifi's bundle (Debian's python3-certifi is the
    system store); without certifi, OpenSSL's compiled-in paths (not its environment variables)."""
    try:
        import certifi  # noqa: PLC0415 - optional, as it was behind requests

        return certifi.where(), None
    except ImportError:
        paths = ssl.get_default_verify_paths()
        return paths.openssl_cafile, paths.openssl_capath


def tls_context(*, fingerprint: str | None, ca_file: str | None) -> ssl.SSLContext:
    """One TLS policy for every connection of a client (see the module docstring)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if fingerprint:
        # Pinned: the digest, checked on every new connection, is the whole trust decision.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    cafile, capath = (ca_file, None) if ca_file else _default_bundle()
    try:
        ctx.load_verify_locations(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise TransportTlsError(f"cannot load the CA bundle {cafile or capath}: {exc}") from None
    return ctx


class _Connection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the pinned SHA-256 right after the handshake."""

    pin: str | None = None

    def connect(self) -> None:
        super().connect()
        # As urllib3 did: a request is one small write, never held back by Nagle.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.pin is None:
            return
        der = self.sock.getpeercert(binary_form=True) or b""
        if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), self.pin):
            self.close()
            raise TransportTlsError("certificate fingerprint mismatch", pin_mismatch=True)


class HttpsPool:
    """Keep-alive HTTPS connections to one host:port; thread-safe; `size` idle ones kept."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        fingerprint: str | None,
        timeout: float,
        size: int,
        limit: int,
    ) -> None:
        self.host, self.port = host, port
        self.context = context
        self.fingerprint = fingerprint
        self.timeout = timeout
        self.size = max(1, size)
        self.limit = limit
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> Reply:
        """One request, and the whole reply. Raises a `TransportError` or `ReplyTooLargeError`."""
        conn = self._checkout()
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = _read(resp, self.limit)
        except (TransportError, ReplyTooLargeError):
            conn.close()
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            conn.close()
            raise _failure(exc) from None
        except BaseException:  # an interrupt: never leave a half-read connection in the pool
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._checkin(conn)
        return Reply(resp.status, resp.reason or "", data)

    def _checkout(self) -> _Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = _Connection(self.host, self.port, timeout=self.timeout, context=self.context)
                conn.pin = self.fingerprint
                return conn
            if not _dropped(conn):
                return conn
            conn.close()

    def _checkin(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()


def _dropped(conn: _Connection) -> bool:
    """An idle connection the server closed (or wrote to) is readable: do not reuse it."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _read(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, decoded, at most `limit` bytes."""
    if resp.length is not None:  # Content-Length: read exactly that (short is IncompleteRead)
        if resp.length > limit:
            raise ReplyTooLargeError
        raw = resp.read()
    else:  # chunked, or until the server closes
        chunks: list[bytes] = []
        size = 0
        while chunk := resp.read(65536):
            size += len(chunk)
            if size > limit:
                raise ReplyTooLargeError
            chunks.append(chunk)
        raw = b"".join(chunks)
    encoding = (resp.getheader("Content-Encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise TransportConnectError(f"unsupported Content-Encoding {encoding[:40]!r}")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    try:
        out = zlib.decompressobj(wbits).decompress(raw, limit + 1)
    except zlib.error:
        if encoding != "deflate":
            raise TransportConnectError("a gzip reply that does not decompress") from None
        try:  # servers that send raw deflate, as urllib3 also accepts
            out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, limit + 1)
        except zlib.error:
            raise TransportConnectError("a deflate reply that does not decompress") from None
    if len(out) > limit:
        raise ReplyTooLargeError
    return out


def _failure(exc: Exception) -> TransportError:
    if isinstance(exc, socket.timeout | TimeoutError):
        return TransportTimeoutError(str(exc) or "timed out")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TransportTlsError(_short(exc))
    return TransportConnectError(_short(exc) or type(exc).__name__)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
