"""Newline-delimited JSON over a unix socket: the framing QMP and the QEMU guest agent share.

Raw ``recv`` into our own buffer, never a socket file object: a file object is unusable after one
timeout, and both protocols need short timeouts (sync, drain) followed by normal reads.

The peer is untrusted (a guest controls its agent's replies): every line is bounded in size and
nesting depth, every wait by a deadline, and anything that is not a JSON object becomes
`ChannelGarbageError` with the reason, never another exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Any

#: A line longer than this is not a reply we asked for (guest-file-read chunks are far smaller).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Deepest nesting a reply may have. Real QMP and qemu-ga replies stay under 8 levels; without a
#: bound, ``[[[[...`` a hundred thousand deep makes json raise RecursionError.
MAX_DEPTH = 32
#: AF_UNIX paths are limited to 108 bytes (including the NUL) on Linux.
_SUN_PATH_MAX = 107


class ChannelClosedError(Exception):
    """The peer closed the connection (or it could not be opened)."""


class ChannelTimeoutError(Exception):
    """No complete line arrived in time."""


class ChannelGarbageError(Exception):
    """A line arrived that is not a JSON object."""


def connect_unix(path: str, timeout: float) -> socket.socket:
    """Connect to a unix socket; long paths (deep test roots) go through /proc/self/fd.

    Raises OSError as `socket.connect` does (FileNotFoundError, ConnectionRefusedError, ...).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            sock.connect(path)
        else:
            # Name the socket relative to an open directory so the address stays short.
            head, name = os.path.split(path)
            dirfd = os.open(head or ".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                sock.connect(f"/proc/self/fd/{dirfd}/{name}")
            finally:
                os.close(dirfd)
    except BaseException:
        sock.close()
        raise
    return sock


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests containers deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_object(line: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """One reply line as a JSON object; ChannelGarbageError (with the reason) for anything else.

    The 0xFF sync delimiter qemu-ga sends before a guest-sync-delimited answer is stripped.
    """
    text = line.lstrip(b"\xff").strip()
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise ChannelGarbageError(f"reply nested more than {max_depth} levels deep") from exc
    except ValueError as exc:  # also UnicodeDecodeError and over-long integers
        raise ChannelGarbageError(f"not JSON: {text[:80]!r}") from exc
    if not isinstance(value, dict):
        raise ChannelGarbageError(f"not a JSON object: {text[:80]!r}")
    if _depth_exceeds(value, max_depth):
        raise ChannelGarbageError(f"reply nested more than {max_depth} levels deep")
    return value


class JsonLines:
    """One connection speaking newline-delimited JSON objects.

    `max_line` bounds one reply: a longer one is skipped up to its newline and reported as garbage,
    so the stream stays usable and memory stays bounded.
    """

    def __init__(self, sock: socket.socket, *, max_line: int = MAX_LINE_BYTES) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for a newline
        self._max_line = max_line
        self._skipping = False  # inside an over-long line: drop bytes up to its newline

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(message, allow_nan=False).encode() + b"\n")
        except TimeoutError as exc:
            raise ChannelTimeoutError("timed out sending a request") from exc
        except OSError as exc:
            raise ChannelClosedError(
                f"connection lost while sending: {exc.strerror or exc}"
            ) from exc

    def send_raw(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ChannelClosedError(
                f"connection lost while sending: {exc.strerror or exc}"
            ) from exc

    def discard_buffer(self) -> None:
        self._buf.clear()
        self._scanned = 0
        self._skipping = False

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next JSON object, skipping blank lines and the 0xFF sync delimiter.

        Raises ChannelTimeoutError at the deadline even when the peer keeps sending blank lines.
        """
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline)
            if line.lstrip(b"\xff").strip():
                return decode_object(line)
            if time.monotonic() >= deadline:
                raise ChannelTimeoutError("no reply in time")

    def _next_line(self, deadline: float) -> bytes:
        while True:
            nl = self._buf.find(b"\n", self._scanned)
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                self._scanned = 0
                if self._skipping:  # the tail of an over-long line, already reported
                    self._skipping = False
                    continue
                if len(line) > self._max_line:
                    raise ChannelGarbageError(f"reply longer than {self._max_line} bytes")
                return line
            self._scanned = len(self._buf)
            if len(self._buf) > self._max_line:
                # Drop it as it arrives (memory stays bounded); the next line is read normally.
                self._buf.clear()
                self._scanned = 0
                if not self._skipping:
                    self._skipping = True
                    raise ChannelGarbageError(f"reply longer than {self._max_line} bytes")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeoutError("no reply in time")
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(65536)
            except TimeoutError as exc:
                raise ChannelTimeoutError("no reply in time") from exc
            except OSError as exc:
                raise ChannelClosedError(f"connection lost: {exc.strerror or exc}") from exc
            if not data:
                raise ChannelClosedError("the other side closed the connection")
            self._buf += data
