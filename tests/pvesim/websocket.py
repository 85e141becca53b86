"""The server side of a WebSocket (RFC 6455), as pveproxy speaks it, over a blocking socket.

pve-http-server answers the upgrade of a GET `.../vncwebsocket` (AnyEvent.pm:1018-1031): version
13 only, the accept key from `Sec-WebSocket-Key`, the client's subprotocol echoed back
(AnyEvent.pm:704-714), and every frame it sends is one binary frame (opcode 2, AnyEvent.pm:561).
Frames from the client must be masked and unfragmented (AnyEvent.pm:630-638).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_PAYLOAD = 128 * 1024  # AnyEvent.pm:543


class ClosedError(Exception):
    """The peer closed the WebSocket (or broke the protocol)."""


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake(key: str, protocol: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes, opcode: int = 2) -> bytes:
    """One unmasked frame from the server (FIN set)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def _exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise ClosedError("connection closed")
        data += chunk
    return data


def read_frame(stream: BinaryIO) -> tuple[int, bytes]:
    """(opcode, payload) of the next frame from the client."""
    b0, b1 = _exact(stream, 2)
    if not b0 & 0x80:
        raise ClosedError("received fragmented websocket frame")
    if b0 & 0x70:
        raise ClosedError("received websocket frame with RSV flags")
    if not b1 & 0x80:
        raise ClosedError("received unmasked websocket frame from client")
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _exact(stream, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _exact(stream, 8))[0]
    if n > MAX_PAYLOAD:
        raise ClosedError(f"received too large websocket frame (len = {n})")
    mask = _exact(stream, 4)
    data = _exact(stream, n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))
