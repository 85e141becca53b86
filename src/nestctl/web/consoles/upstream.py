"""The dashboard's side towards Proxmox: a console's byte stream, as the logged-in identity.

Remote: a WebSocket client (RFC 6455, asyncio streams, no library) to pveproxy's
`.../vncwebsocket?port=..&vncticket=..`, with the visitor's ticket cookie or token header and the
TLS policy of `ApiClient`: pinned to the SHA-256 of the certificate (checked right after the
handshake, before a byte of the request is sent, as urllib3's `assert_fingerprint` does), or
verified against the system's or the target's CA file. pveproxy answers binary frames; the
subprotocol `binary` is what Proxmox's own clients ask for (pve-xtermjs xterm.js/src/main.js:140).

Local (`serve --local`): `vncproxy`/`termproxy` through pvesh start `qm vncproxy`/`termproxy` on
a localhost port without TLS (qemu-server API2/Qemu.pm vncproxy: `LocalHost => 'localhost'` when
websocket=1); the stream is a plain TCP connection to it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import ssl
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from nestctl.api.transport import TransportTlsError, tls_context
from nestctl.parse import is_ascii_digits

MAX_FRAME = 16 * 1024 * 1024
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class UpstreamError(Exception):
    """Proxmox refused or could not be reached; `str()` is fit to show, `status` the HTTP one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Upstream:
    """A byte stream to a console: `read()` -> bytes (b"" at the end), `write()`, `close()`."""

    async def read(self) -> bytes:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class WsTarget:
    url: str  # https://host:port/api2/json/.../vncwebsocket?port=..&vncticket=..
    headers: tuple[tuple[str, str], ...]  # the identity's cookie or token header
    fingerprint: str | None  # 64 lower-case hex, or None: CA verification
    ca_file: str | None

    def __repr__(self) -> str:  # never the ticket or the secret
        return f"WsTarget({urlsplit(self.url).path!r})"


def fingerprint_ok(der: bytes | None, fingerprint: str) -> bool:
    return der is not None and hashlib.sha256(der).hexdigest() == fingerprint


class WebSocketUpstream(Upstream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closed = False

    @classmethod
    async def connect(cls, target: WsTarget, timeout: float = 15.0) -> WebSocketUpstream:
        parts = urlsplit(target.url)
        host = parts.hostname or ""
        port = parts.port or 443
        try:
            # The API client's one TLS policy: pin or CA bundle, the environment never read.
            ctx = tls_context(fingerprint=target.fingerprint, ca_file=target.ca_file)
        except TransportTlsError as exc:
            raise UpstreamError(str(exc)) from None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), timeout
            )
        except ssl.SSLError:
            raise UpstreamError(
                f"TLS with {host}:{port} failed (certificate not trusted)"
            ) from None
        except (TimeoutError, OSError):
            raise UpstreamError(f"cannot reach {host}:{port}") from None
        if target.fingerprint:
            tls = writer.get_extra_info("ssl_object")
            der = tls.getpeercert(binary_form=True) if tls is not None else None
            if not fingerprint_ok(der, target.fingerprint):
                writer.close()
                raise UpstreamError(
                    f"TLS: the certificate of {host}:{port} does not match the pinned fingerprint"
                )
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: binary",
            *(f"{k}: {v}" for k, v in target.headers),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            raise UpstreamError("Proxmox closed the console connection") from None
        except TimeoutError:
            writer.close()
            raise UpstreamError("Proxmox did not answer the console connection") from None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts3 = status_line.split(" ", 2)
        status = int(parts3[1]) if len(parts3) > 1 and is_ascii_digits(parts3[1]) else 0
        if status != 101:
            writer.close()
            reason = parts3[2].strip() if len(parts3) > 2 else ""
            raise UpstreamError(f"Proxmox refused the console: {status} {reason}".strip(), status)
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in header_lines if ln)
        }
        digest = hashlib.sha1((key + GUID).encode()).digest()  # noqa: S324 - RFC 6455 says SHA-1
        want = base64.b64encode(digest).decode()
        if headers.get("sec-websocket-accept") != want:
            writer.close()
            raise UpstreamError("Proxmox's answer to the console upgrade is not a WebSocket")
        return cls(reader, writer)

    async def read(self) -> bytes:
        """The payload of the next data frame (pings answered, b"" once closed)."""
        while not self.closed:
            try:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                if n > MAX_FRAME:
                    break
                mask = await self.reader.readexactly(4) if b1 & 0x80 else b""
                data = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, OSError):
                break
            if mask:
                data = _mask(data, mask)
            opcode = b0 & 0x0F
            if opcode == 8:
                break
            if opcode == 9:
                await self._send(data, 10)
                continue
            if opcode in (0, 1, 2) and data:
                return data
        self.closed = True
        return b""

    async def write(self, data: bytes) -> None:
        await self._send(data, 2)

    async def _send(self, data: bytes, opcode: int) -> None:
        if self.closed:
            return
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)  # a client masks every frame (RFC 6455 5.3)
        try:
            self.writer.write(head + mask + _mask(data, mask))
            await self.writer.drain()
        except OSError:
            self.closed = True

    async def close(self) -> None:
        if not self.closed:
            await self._send(struct.pack("!H", 1000), 8)
            self.closed = True
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


def _mask(data: bytes, mask: bytes) -> bytes:
    # XOR with the repeated 4-byte key, as one big integer (fast enough for screen updates).
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class TcpUpstream(Upstream):
    """Local mode: the plain localhost port `qm vncproxy` or `termproxy` listens on."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, timeout: float = 15.0) -> TcpUpstream:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout
            )
        except (TimeoutError, OSError):
            raise UpstreamError(f"the console on localhost:{port} did not answer") from None
        return cls(reader, writer)

    async def read(self) -> bytes:
        try:
            return await self.reader.read(65536)
        except OSError:
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        with contextlib.suppress(OSError):
            await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
