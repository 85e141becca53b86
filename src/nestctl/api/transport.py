"""The API's HTTPS transport: HTTP/1.1 over one TLS policy, with a keep-alive pool per host.

Why not requests (the transport until issue 24), nor `http.client`: a scan is thousands of small
GETs. requests + urllib3 spent about 0.6 ms of CPU on each (header dictionaries, hooks, adapters,
retry objects), `http.client` alone about 0.2 ms, two thirds of it parsing reply headers through
the `email` package; the exchange itself (TLS records, two system calls) costs about 0.07 ms.
So the few lines of HTTP/1.1 a Proxmox API client needs are written and read here (see
`_Connection`), bounded as `http.client` bounds them. What requests did for us stays, exactly:

- TLS: verified against the CA bundle requests used (certifi's, which Debian points at the
  system store; else OpenSSL's compiled-in one), or a `ca_file`; or pinned: no CA check, the
  certificate's SHA-256 must match, compared before a single byte of the request is sent.
- The environment is never read: no proxies, no ~/.netrc, no REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
  SSL_CERT_FILE or SSL_CERT_DIR (the context loads one named bundle, never OpenSSL's env paths).
- Keep-alive: an idle connection is reused when the server has not closed it (checked as
  urllib3 did, with a zero-timeout poll); a failed connection is never reused.
- `Accept-Encoding: gzip, deflate` as before, so pveproxy may compress large lists; chunked
  replies; a request whose target or headers could split it is refused before it is sent.
- Replies larger than `limit` bytes (decoded) are refused.

Errors are this module's `TransportError`s (TLS, timeout, connection) and `ReplyTooLargeError`;
the client turns them into its typed `ApiError`s.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import select
import socket
import ssl
import threading
import zlib
from dataclasses import dataclass

from nestctl.parse import is_ascii_digits

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


class _Connection:
    """One kept-alive HTTPS connection: HTTP/1.1 written and read here, on one TLS socket.

    `http.client` spent two thirds of a request's CPU building header objects through the
    `email` package; Proxmox's replies need none of that. What is read is bounded like
    `http.client` bounds it: a status line and each header line at most 64 KiB, 100 headers.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    def open(cls, pool: HttpsPool) -> _Connection:
        raw = socket.create_connection((pool.host, pool.port), timeout=pool.timeout)
        try:
            # As urllib3 did: a request is one small write, never held back by Nagle.
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = pool.context.wrap_socket(raw, server_hostname=pool.host)
        except BaseException:
            raw.close()
            raise
        if pool.fingerprint is not None:
            der = sock.getpeercert(binary_form=True) or b""
            if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), pool.fingerprint):
                sock.close()
                raise TransportTlsError("certificate fingerprint mismatch", pin_mismatch=True)
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise TransportConnectError("the server closed the connection mid-reply")
        self.buf += data

    def _head(self) -> bytes:
        """Everything up to the blank line after the headers (consumed with it)."""
        start = 0
        while True:
            end = self.buf.find(b"\n\r\n", start)
            bare = self.buf.find(b"\n\n", start)
            if end >= 0 and (bare < 0 or end < bare):
                head, cut = self.buf[:end], end + 3
                break
            if bare >= 0:
                head, cut = self.buf[:bare], bare + 2
                break
            if len(self.buf) > _MAX_HEAD:
                raise TransportConnectError("the reply's headers are too long")
            start = max(0, len(self.buf) - 2)
            self._fill()
        del self.buf[:cut]
        return bytes(head)

    def _exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            if len(self.buf) > _MAX_LINE:
                raise TransportConnectError("a chunk header line is too long")
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return line.rstrip(b"\r")

    def exchange(self, request: bytes, limit: int) -> tuple[Reply, bool]:
        """Send `request` and read its reply; (reply, whether the connection can be reused)."""
        self.sock.sendall(request)
        while True:
            status, reason, version, headers = _parse_head(self._head())
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue) precede the real reply
        close = headers.get("connection", "").lower()
        reusable = "close" not in close and (version != "HTTP/1.0" or "keep-alive" in close)
        if status in (204, 304):
            return Reply(status, reason, b""), reusable and not self.buf
        coding = headers.get("transfer-encoding", "").lower()
        if coding:
            if coding != "chunked":
                raise TransportConnectError(f"unsupported Transfer-Encoding {coding[:40]!r}")
            raw = self._chunked(limit)
        elif "content-length" in headers:
            length = headers["content-length"]
            if not is_ascii_digits(length):
                raise TransportConnectError("a malformed Content-Length")
            if int(length) > limit:
                raise ReplyTooLargeError
            raw = self._exact(int(length))
        else:  # the body runs until the server closes
            raw = self._until_closed(limit)
            reusable = False
        body = _decoded(raw, headers.get("content-encoding", ""), limit)
        return Reply(status, reason, body), reusable and not self.buf

    def _chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            text = self._line().split(b";", 1)[0].strip()
            try:
                length = int(text, 16)
            except ValueError:
                raise TransportConnectError("a malformed chunk size") from None
            if length == 0:
                break
            size += length
            if size > limit:
                raise ReplyTooLargeError
            chunks.append(self._exact(length))
            self._line()
        for _ in range(_MAX_HEADERS):  # trailers, up to the blank line
            if not self._line():
                return b"".join(chunks)
        raise TransportConnectError("too many trailer lines")

    def _until_closed(self, limit: int) -> bytes:
        while True:
            if len(self.buf) > limit:
                raise ReplyTooLargeError
            data = self.sock.recv(65536)
            if not data:
                out = bytes(self.buf)
                self.buf.clear()
                return out
            self.buf += data


_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_HEAD = _MAX_LINE * 4


def _parse_head(head: bytes) -> tuple[int, str, str, dict[str, str]]:
    """(status, reason, version, lower-case headers) of a reply head; repeated headers joined."""
    lines = head.decode("iso-8859-1").split("\n")
    if len(lines) > _MAX_HEADERS + 1:  # (their total length is bounded by `_head`)
        raise TransportConnectError("the reply has too many headers")
    version, _, rest = lines[0].rstrip("\r").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not is_ascii_digits(code):
        raise TransportConnectError(f"not an HTTP reply: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    name = ""
    for each in lines[1:]:
        line = each.rstrip("\r")
        if line[:1] in (" ", "\t") and name:  # an obsolete folded continuation
            headers[name] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise TransportConnectError("a malformed header line in the reply")
        name = key.lower()
        value = value.strip()
        if name in headers:
            if name == "content-length" and headers[name] != value:
                raise TransportConnectError("conflicting Content-Length headers")
            if name != "content-length":
                headers[name] += ", " + value
            continue
        headers[name] = value
    return int(code), reason.strip(), version, headers


def _decoded(raw: bytes, coding: str, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip, deflate), at most `limit` bytes."""
    encoding = coding.strip().lower()
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


#: What may not appear in a request target or a header (a split request, a smuggled header).
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def build_request(method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request's bytes. Raises ValueError for a target or header that could split it."""
    if _UNSAFE.search(method) or _UNSAFE.search(target):
        raise ValueError("a request target with spaces or control characters")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        if _UNSAFE.search(name) or ":" in name or _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name[:40]!r}: a name or value that could split the request")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
    return head + body if body else head


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
        """One request, and the whole reply. Raises a `TransportError` or `ReplyTooLargeError`;
        ValueError for a request that could not be sent safely (nothing was sent)."""
        conn = None
        try:
            request = build_request(method, target, headers, body)
            conn = self._checkout()
            reply, reusable = conn.exchange(request, self.limit)
        except (TransportError, ReplyTooLargeError):
            if conn is not None:
                conn.close()
            raise
        except (OSError, ValueError, UnicodeError) as exc:
            if conn is not None:
                conn.close()
            raise _failure(exc) from None
        except BaseException:  # an interrupt: never leave a half-read connection in the pool
            if conn is not None:
                conn.close()
            raise
        if reusable:
            self._checkin(conn)
        else:
            conn.close()
        return reply

    def _checkout(self) -> _Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return _Connection.open(self)
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
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable) or conn.sock.pending() > 0


def _failure(exc: Exception) -> TransportError:
    if isinstance(exc, socket.timeout | TimeoutError):
        return TransportTimeoutError(str(exc) or "timed out")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TransportTlsError(_short(exc))
    return TransportConnectError(_short(exc) or type(exc).__name__)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
