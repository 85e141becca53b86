"""A small QMP client (QEMU Machine Protocol) over a unix socket.

Only what nestctl asks: the greeting, ``qmp_capabilities``, then commands one at a time. Events
(``{"event": ...}``) may arrive between replies and are skipped. Every wait has a timeout; every
failure is one of the typed errors below, so callers turn them into findings.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, Self

from nestctl.qemu.jsonline import (
    ChannelClosedError,
    ChannelGarbageError,
    ChannelTimeoutError,
    JsonLines,
    connect_unix,
)


class QmpError(Exception):
    """Base of every QMP failure."""


class QmpUnavailableError(QmpError):
    """No socket, connection refused or dropped, or the peer does not speak QMP."""


class QmpTimeoutError(QmpError):
    """QEMU did not answer in time."""


class QmpCommandError(QmpError):
    """QEMU answered a command with an error."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"{command}: {desc} ({error_class})")
        self.command = command
        self.error_class = error_class
        self.desc = desc


def _version_text(greeting: dict[str, Any]) -> str:
    """'7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)' from the greeting (or query-version)."""
    outer = greeting.get("QMP", greeting)
    info = outer.get("version") if isinstance(outer, dict) else None
    q = info.get("qemu") if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(q, dict):
        return "unknown"
    parts = [q.get(k) for k in ("major", "minor", "micro")]
    text = ".".join(str(v) if isinstance(v, int) else "?" for v in parts)
    package = info.get("package")
    package = package.strip()[:100] if isinstance(package, str) else ""
    return f"{text} ({package})" if package else text


def _check_greeting(path: str, greeting: dict[str, Any]) -> None:
    if "QMP" not in greeting:
        raise QmpUnavailableError(f"{path} does not speak QMP (greeting {greeting!r:.80})")


class QmpClient:
    """One QMP session. Use `QmpClient.connect`; close it (or use it as a context manager)."""

    def __init__(self, channel: JsonLines, greeting: dict[str, Any], timeout: float) -> None:
        self._channel = channel
        self.greeting = greeting
        self.timeout = timeout
        self._ids = itertools.count(1)

    @property
    def version(self) -> str:
        return _version_text(self.greeting)

    @classmethod
    def connect(
        cls,
        path: str,
        *,
        timeout: float = 5.0,
        alive: Callable[[], bool] | None = None,
    ) -> QmpClient:
        """Connect, read the greeting and leave capabilities negotiation mode.

        The socket may not exist yet when QEMU was just started: retry until `timeout`, and stop
        early when `alive()` says the process has gone (it refused its command line).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = connect_unix(path, timeout)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if (alive is not None and not alive()) or time.monotonic() >= deadline:
                    raise QmpUnavailableError(f"cannot connect to {path}: {exc.strerror}") from exc
                time.sleep(0.005)
            except OSError as exc:
                raise QmpUnavailableError(
                    f"cannot connect to {path}: {exc.strerror or exc}"
                ) from exc
        channel = JsonLines(sock)
        try:
            greeting = cls._receive(channel, max(deadline - time.monotonic(), 0.1))
            _check_greeting(path, greeting)
            client = cls(channel, greeting, timeout)
            client.execute("qmp_capabilities")
        except BaseException:
            channel.close()
            raise
        return client

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(
        self, command: str, arguments: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run one command; its ``return`` value, or QmpCommandError with QEMU's own text."""
        ident = f"nestctl-{next(self._ids)}"
        message: dict[str, Any] = {"execute": command, "id": ident}
        if arguments:
            message["arguments"] = arguments
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        try:
            self._channel.send(message)
        except ChannelClosedError as exc:
            raise QmpUnavailableError(str(exc)) from exc
        except ChannelTimeoutError as exc:
            raise QmpTimeoutError(f"{command}: {exc}") from exc
        while True:
            if time.monotonic() >= deadline:  # a stream of events cannot hold us past it
                raise QmpTimeoutError(f"{command}: QEMU did not answer in time")
            reply = self._receive(self._channel, deadline - time.monotonic(), command)
            if "event" in reply or reply.get("id", ident) != ident:
                continue  # asynchronous events and late replies to earlier commands
            if "error" in reply:
                err = reply["error"] if isinstance(reply["error"], dict) else {}
                raise QmpCommandError(
                    command,
                    str(err.get("class", "GenericError"))[:100],
                    str(err.get("desc", ""))[:500],
                )
            if "return" in reply:
                return reply["return"]
            raise QmpUnavailableError(f"{command}: unexpected reply {reply!r:.80}")

    @staticmethod
    def _receive(channel: JsonLines, timeout: float, command: str = "greeting") -> dict[str, Any]:
        try:
            return channel.receive(max(timeout, 0.0))
        except ChannelTimeoutError as exc:
            raise QmpTimeoutError(f"{command}: QEMU did not answer in time") from exc
        except ChannelClosedError as exc:
            raise QmpUnavailableError(f"{command}: {exc}") from exc
        except ChannelGarbageError as exc:
            raise QmpUnavailableError(f"{command}: {exc}") from exc
