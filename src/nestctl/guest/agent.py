"""A client for the QEMU guest agent (qemu-ga), spoken over the VM's agent socket on the host.

The protocol (https://qemu-project.gitlab.io/qemu/interop/qemu-ga-ref.html) is newline-delimited
JSON, one request at a time. The agent may have been started after the socket opened, and replies
to requests sent before it ran arrive late; `sync` therefore sends ``guest-sync-delimited`` with a
fresh id until the answer carries that id, then drains what is left. Every call has a timeout;
failures are typed (`AgentUnavailable`, `AgentTimeout`, `AgentError`, all `GuestAgentError`) so
callers turn them into findings.

The guest controls every byte of the replies. Each loop here ends by a deadline or a count, a reply
is bounded in size and nesting (`JsonLines`), and a reply that does not have the shape qemu-ga
documents (a read that claims bytes and sends none, base64 that does not decode) is
`AgentProtocolError`, never a silently empty or endless answer.
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
#: One reply, at most: qemu-ga keeps up to 16 MiB of a program's output, base64 makes it 4/3.
MAX_REPLY_BYTES = 24 * 1024 * 1024
#: Late replies `_drain` reads away after a sync before it gives up on a chattering agent.
MAX_DRAIN = 64
#: Total time one file read may take across all its guest-file-read calls.
READ_BUDGET = 60.0


class GuestAgentError(Exception):
    """Base of every guest agent failure."""


class AgentUnavailable(GuestAgentError):  # noqa: N818 - name agreed with the guest layer
    """No socket, connection refused or dropped, no agent answering, or not the agent protocol."""


class AgentTimeout(GuestAgentError):  # noqa: N818 - name agreed with the guest layer
    """The agent was there but did not answer one request in time."""


class AgentProtocolError(AgentUnavailable):
    """The agent answered, but not in the shape its protocol documents (malformed reply)."""


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


def _b64(data: object, what: str) -> bytes:
    """Decode a base64 field; absent is empty, anything undecodable is a protocol error."""
    if data is None:
        return b""
    if not isinstance(data, str):
        raise AgentProtocolError(f"{what}: expected base64 text, got {data!r:.80}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AgentProtocolError(f"{what}: not base64 ({exc}): {data!r:.80}") from exc


def file_chunk(reply: object, asked: int) -> tuple[bytes, bool]:
    """(bytes, eof) from one guest-file-read reply, checked against qemu-ga's documented shape:
    ``{"count": n, "buf-b64": <n bytes>, "eof": bool}`` with n no more than asked."""
    if not isinstance(reply, dict):
        raise AgentProtocolError(f"guest-file-read: expected an object, got {reply!r:.80}")
    count = reply.get("count")
    eof = reply.get("eof", False)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= asked:
        raise AgentProtocolError(f"guest-file-read: bad count {count!r:.40} (asked {asked})")
    if not isinstance(eof, bool):
        raise AgentProtocolError(f"guest-file-read: bad eof {eof!r:.40}")
    data = _b64(reply.get("buf-b64"), "guest-file-read")
    if len(data) != count:
        raise AgentProtocolError(f"guest-file-read: count {count} but {len(data)} bytes of data")
    return data, eof


def exec_status(reply: object) -> ExecResult | None:
    """A guest-exec-status reply: the ExecResult once exited, None while it runs."""
    if not isinstance(reply, dict):
        raise AgentProtocolError(f"guest-exec-status: unexpected reply {reply!r:.80}")
    exited = reply.get("exited")
    if not isinstance(exited, bool):
        raise AgentProtocolError(f"guest-exec-status: bad exited {exited!r:.40}")
    if not exited:
        return None
    code = reply.get("exitcode")
    sig = reply.get("signal")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise AgentProtocolError(f"guest-exec-status: bad exitcode {code!r:.40}")
    if sig is not None and (not isinstance(sig, int) or isinstance(sig, bool)):
        raise AgentProtocolError(f"guest-exec-status: bad signal {sig!r:.40}")
    return ExecResult(
        exitcode=code,
        stdout=_b64(reply.get("out-data"), "guest-exec-status out-data"),
        stderr=_b64(reply.get("err-data"), "guest-exec-status err-data"),
        signal=sig,
        truncated=bool(reply.get("out-truncated") or reply.get("err-truncated")),
    )


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
        self._channel = JsonLines(sock, max_line=MAX_REPLY_BYTES)
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
            while time.monotonic() < attempt_end:
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
        """Read away late replies still queued behind the sync answer (a bounded number)."""
        for _ in range(MAX_DRAIN):
            try:
                channel.receive(0.05)
            except (ChannelTimeoutError, ChannelGarbageError):
                return
            except ChannelClosedError as exc:
                self.close()
                raise AgentUnavailable(f"guest agent: {exc}") from exc
        self.close()
        raise AgentProtocolError(
            f"guest agent: still sending unrequested replies after {MAX_DRAIN}"
        )

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
            if time.monotonic() >= deadline:  # a peer flooding stale replies ends here too
                self._synced = False
                raise AgentTimeout(f"{command}: no answer within {wait:g} s")
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
                raise AgentProtocolError(f"{command}: the agent sent garbage ({exc})") from exc
            if "id" in reply and reply["id"] != ident:
                continue  # a late reply to an earlier request
            if "error" in reply:
                err = reply["error"] if isinstance(reply["error"], dict) else {}
                raise AgentError(  # bounded: the text ends up in findings
                    command,
                    str(err.get("class", "GenericError"))[:100],
                    str(err.get("desc", ""))[:500],
                )
            if "return" in reply:
                return reply["return"]
            self.close()
            raise AgentProtocolError(f"{command}: unexpected reply {reply!r:.80}")

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
            raise AgentProtocolError(f"{command}: expected an object, got {value!r:.80}")
        return value

    def read_file(self, path: str, max_bytes: int = 8 * 1024 * 1024) -> bytes:
        """The first `max_bytes` of a guest file (guest-file-open/read/close)."""
        return self.read_file_upto(path, max_bytes)[0]

    def read_file_upto(self, path: str, max_bytes: int) -> tuple[bytes, bool]:
        """(the first `max_bytes` of a guest file, whether that is the whole file).

        Every guest-file-read must bring bytes or end the file, and no new one starts after
        `READ_BUDGET` seconds (so the whole read ends within that plus one call's timeout): a guest
        cannot keep us reading.
        """
        handle = self.call("guest-file-open", {"path": path, "mode": "r"})
        if not isinstance(handle, int) or isinstance(handle, bool):
            raise AgentProtocolError(f"guest-file-open: expected a handle, got {handle!r:.80}")
        deadline = time.monotonic() + READ_BUDGET
        data = bytearray()
        complete = False
        try:
            # One byte past the limit tells a file of exactly max_bytes from a longer one.
            while len(data) <= max_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AgentTimeout(f"reading {path} took longer than {READ_BUDGET:g} s")
                count = min(READ_CHUNK, max_bytes + 1 - len(data))
                reply = self.call("guest-file-read", {"handle": handle, "count": count})
                chunk, eof = file_chunk(reply, count)
                data += chunk
                if eof or not chunk:  # qemu-ga says eof with its last bytes or with none
                    complete = True
                    break
        finally:
            # Skip the close when the connection is gone or out of step (after a timeout).
            if self._channel is not None and self._synced:
                # The read already ended either way; a stale handle is the agent's to forget.
                with contextlib.suppress(AgentError):
                    self.call("guest-file-close", {"handle": handle})
        return bytes(data[:max_bytes]), complete and len(data) <= max_bytes

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
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise AgentProtocolError(f"guest-exec: expected a pid, got {started!r:.80}")
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            done = exec_status(self.call("guest-exec-status", {"pid": pid}))
            if done is not None:
                return done
            if time.monotonic() >= deadline:
                return ExecResult(None, b"", b"", timed_out=True)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.25)
