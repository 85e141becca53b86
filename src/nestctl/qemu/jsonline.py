"""Newline-delimited JSON over a unix socket: the framing QMP and the QEMU guest agent share.

Raw ``recv`` into our own buffer, never a socket file object: a file object is unusable after one
timeout, and both protocols need short timeouts (sync, drain) followed by normal reads.
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


class JsonLines:
    """One connection speaking newline-delimited JSON objects."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
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
        self._buf = b""

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next JSON object, skipping blank lines and the 0xFF sync delimiter."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline)
            line = line.lstrip(b"\xff").strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise ChannelGarbageError(f"not JSON: {line[:80]!r}") from exc
            if not isinstance(value, dict):
                raise ChannelGarbageError(f"not a JSON object: {line[:80]!r}")
            return value

    def _next_line(self, deadline: float) -> bytes:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeoutError("no reply in time")
            if len(self._buf) > MAX_LINE_BYTES:
                raise ChannelGarbageError(
                    f"reply longer than {MAX_LINE_BYTES} bytes without a newline"
                )
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
        line, self._buf = self._buf.split(b"\n", 1)
        return line
