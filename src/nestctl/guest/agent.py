"""A client for the QEMU guest agent (qemu-ga), spoken over the VM's agent socket on the host.

The protocol (https://qemu-project.gitlab.io/qemu/interop/qemu-ga-ref.html) is newline-delimited
JSON, one request at a time. The agent may have been started after the socket opened, and replies
to requests sent before it ran arrive late; `sync` therefore sends ``guest-sync-delimited`` with a
fresh id until the answer carries that id, then drains what is left. Every call has a timeout;
failures are typed (`AgentUnavailable`, `AgentTimeout`, `AgentError`, all `GuestAgentError`) so
callers turn them into findings.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from nestctl.qemu.jsonline import (
    ChannelClosedError,
    ChannelGarbageError,
    ChannelTimeoutError,
    JsonLines,
    connect_unix,
)

if TYPE_CHECKING:
    from nestctl.machine import Host

#: guest-file-read chunk; qemu-ga caps a read at 48 MiB, we never need more than this per call.
READ_CHUNK = 64 * 1024
#: How long one guest-sync-delimited attempt waits before trying again with a new id.
SYNC_ATTEMPT = 1.0


class GuestAgentError(Exception):
    """Base of every guest agent failure."""


class AgentUnavailable(GuestAgentError):  # noqa: N818 - name agreed with the guest layer
    """No socket, connection refused or dropped, no agent answering, or not the agent protocol."""


class AgentTimeout(GuestAgentError):  # noqa: N818 - name agreed with the guest layer
    """The agent was there but did not answer one request in time."""


class AgentError(GuestAgentError):
    """The agent answered with an error (e.g. the file does not exist in the guest)."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"{command}: {desc} ({error_class})")
        self.command = command
        self.error_class = error_class
        self.desc = desc


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How a guest-exec ended. `exitcode` is None when it was killed by `signal` or timed out."""

    exitcode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    signal: int | None = None
    truncated: bool = False  # the agent kept only part of the output


def agent_socket_path(host: Host, vmid: int) -> Path:
    """Where Proxmox's QEMU listens for the VM's guest agent, under the host's root."""
    return host.path(f"/var/run/qemu-server/{int(vmid)}.qga")


def _b64(data: object) -> bytes:
    if not isinstance(data, str):
        return b""
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


class GuestAgent:
    """One connection to a guest agent socket. Connects (and syncs) on first use."""

    def __init__(self, socket_path: str | Path, *, timeout: float = 5.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self._channel: JsonLines | None = None
        self._synced = False
        self._ids = itertools.count(random.randrange(1, 1 << 30))  # noqa: S311 - not security

    # -- connection ------------------------------------------------------------------------

    def connect(self) -> None:
        if self._channel is not None:
            return
        try:
            sock = connect_unix(self.socket_path, self.timeout)
        except FileNotFoundError as exc:
            raise AgentUnavailable(f"no agent socket at {self.socket_path}") from exc
        except ConnectionRefusedError as exc:
            raise AgentUnavailable(
                f"{self.socket_path}: connection refused (is the VM running?)"
            ) from exc
        except TimeoutError as exc:
            raise AgentUnavailable(f"{self.socket_path}: connecting timed out") from exc
        except OSError as exc:
            raise AgentUnavailable(f"{self.socket_path}: {exc.strerror or exc}") from exc
        self._channel = JsonLines(sock)
        self._synced = False

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self._synced = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> JsonLines:
        self.connect()
        assert self._channel is not None
        return self._channel

    # -- protocol --------------------------------------------------------------------------

    def sync(self, timeout: float | None = None) -> None:
        """Resynchronise the stream: guest-sync-delimited with fresh ids until one is answered.

        Raises AgentUnavailable when no agent answers within `timeout` (default: the client's).
        """
        channel = self._require()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        last = "no answer"
        while time.monotonic() < deadline:
            ident = next(self._ids)
            channel.discard_buffer()
            # 0xFF makes the agent drop a partial request a previous client may have left.
            channel.send_raw(b"\xff")
            self._send({"execute": "guest-sync-delimited", "arguments": {"id": ident}})
            attempt_end = min(deadline, time.monotonic() + SYNC_ATTEMPT)
            while True:
                try:
                    reply = channel.receive(max(attempt_end - time.monotonic(), 0.0))
                except ChannelTimeoutError:
                    break
                except ChannelGarbageError as exc:
                    last = str(exc)
                    continue  # the start of a stale reply: the sync answer may follow
                except ChannelClosedError as exc:
                    self.close()
                    raise AgentUnavailable(f"guest agent: {exc}") from exc
                if reply.get("return") == ident:
                    self._drain(channel)
                    self._synced = True
                    return
                last = f"unexpected reply {reply!r:.80}"
        self.close()
        wait = self.timeout if timeout is None else timeout
        raise AgentUnavailable(f"guest agent not answering within {wait:.0f} s ({last})")

    def _drain(self, channel: JsonLines) -> None:
        """Read away late replies still queued behind the sync answer."""
        while True:
            try:
                channel.receive(0.05)
            except (ChannelTimeoutError, ChannelGarbageError):
                return
            except ChannelClosedError as exc:
                self.close()
                raise AgentUnavailable(f"guest agent: {exc}") from exc

    def _send(self, message: dict[str, Any]) -> None:
        channel = self._require()
        try:
            channel.send(message)
        except ChannelClosedError as exc:
            self.close()
            raise AgentUnavailable(f"guest agent: {exc}") from exc
        except ChannelTimeoutError as exc:
            raise AgentTimeout(f"guest agent: {exc}") from exc

    def call(
        self, command: str, arguments: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run one agent command and return its ``return`` value."""
        if not self._synced:
            self.sync()
        channel = self._require()
        ident = next(self._ids)
        message: dict[str, Any] = {"execute": command, "id": ident}
        if arguments:
            message["arguments"] = arguments
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        self._send(message)
        while True:
            try:
                reply = channel.receive(max(deadline - time.monotonic(), 0.0))
            except ChannelTimeoutError as exc:
                self._synced = False  # a late reply may still come: sync before the next call
                raise AgentTimeout(f"{command}: no answer within {wait:g} s") from exc
            except ChannelClosedError as exc:
                self.close()
                raise AgentUnavailable(f"{command}: {exc}") from exc
            except ChannelGarbageError as exc:
                self.close()
                raise AgentUnavailable(f"{command}: the agent sent garbage ({exc})") from exc
            if "id" in reply and reply["id"] != ident:
                continue  # a late reply to an earlier request
            if "error" in reply:
                err = reply["error"] if isinstance(reply["error"], dict) else {}
                raise AgentError(
                    command, str(err.get("class", "GenericError")), str(err.get("desc", ""))
                )
            if "return" in reply:
                return reply["return"]
            self.close()
            raise AgentUnavailable(f"{command}: unexpected reply {reply!r:.80}")

    # -- commands --------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """guest-info: the agent's version and supported commands."""
        return self._dict(self.call("guest-info"), "guest-info")

    def osinfo(self) -> dict[str, Any]:
        """guest-get-osinfo: id ("debian", "mswindows"), kernel-release, pretty-name, ..."""
        return self._dict(self.call("guest-get-osinfo"), "guest-get-osinfo")

    def ping(self) -> None:
        self.call("guest-ping")

    def _dict(self, value: Any, command: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise AgentUnavailable(f"{command}: expected an object, got {value!r:.80}")
        return value

    def read_file(self, path: str, max_bytes: int = 8 * 1024 * 1024) -> bytes:
        """The first `max_bytes` of a guest file (guest-file-open/read/close)."""
        handle = self.call("guest-file-open", {"path": path, "mode": "r"})
        if not isinstance(handle, int):
            raise AgentUnavailable(f"guest-file-open: expected a handle, got {handle!r:.80}")
        data = bytearray()
        try:
            while len(data) < max_bytes:
                count = min(READ_CHUNK, max_bytes - len(data))
                chunk = self.call("guest-file-read", {"handle": handle, "count": count})
                if not isinstance(chunk, dict):
                    raise AgentUnavailable(f"guest-file-read: unexpected reply {chunk!r:.80}")
                data += _b64(chunk.get("buf-b64"))
                if chunk.get("eof") or not chunk.get("count"):
                    break
        finally:
            # Skip the close when the connection is gone or out of step (after a timeout).
            if self._channel is not None and self._synced:
                # The read already ended either way; a stale handle is the agent's to forget.
                with contextlib.suppress(AgentError):
                    self.call("guest-file-close", {"handle": handle})
        return bytes(data[:max_bytes])

    def exec(
        self,
        path: str,
        args: Sequence[str] = (),
        timeout: float = 30.0,
        *,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run a program in the guest, capture its output, poll until it exits or `timeout`.

        qemu-ga cannot kill a program it started: on timeout it is left running in the guest.
        """
        arguments: dict[str, Any] = {"path": path, "arg": list(args), "capture-output": True}
        if stdin is not None:
            arguments["input-data"] = base64.b64encode(stdin).decode()
        started = self.call("guest-exec", arguments)
        pid = started.get("pid") if isinstance(started, dict) else None
        if not isinstance(pid, int):
            raise AgentUnavailable(f"guest-exec: expected a pid, got {started!r:.80}")
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            status = self.call("guest-exec-status", {"pid": pid})
            if not isinstance(status, dict):
                raise AgentUnavailable(f"guest-exec-status: unexpected reply {status!r:.80}")
            if status.get("exited"):
                code = status.get("exitcode")
                sig = status.get("signal")
                return ExecResult(
                    exitcode=code if isinstance(code, int) else None,
                    stdout=_b64(status.get("out-data")),
                    stderr=_b64(status.get("err-data")),
                    signal=sig if isinstance(sig, int) else None,
                    truncated=bool(status.get("out-truncated") or status.get("err-truncated")),
                )
            if time.monotonic() >= deadline:
                return ExecResult(None, b"", b"", timed_out=True)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.25)
