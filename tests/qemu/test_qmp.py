"""The QMP client against a scripted QMP server: events skipped, errors typed, waits bounded."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nestctl.qemu.qmp import (
    QmpClient,
    QmpCommandError,
    QmpTimeoutError,
    QmpUnavailableError,
)

GREETING = {
    "QMP": {
        "version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"},
        "capabilities": ["oob"],
    }
}
Handler = Callable[[dict[str, Any]], list[bytes] | None]


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"  # QEMU ends its lines with CRLF


class FakeQmp:
    """One-connection QMP server; `handler(request)` gives the raw replies (None: hang up)."""

    def __init__(self, path: Path, handler: Handler, greeting: bytes = line(GREETING)) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(1)
        self.handler = handler
        self.greeting = greeting
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.server.accept()
            with conn:
                conn.sendall(self.greeting)
                buf = b""
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                    while b"\n" in buf:
                        raw, buf = buf.split(b"\n", 1)
                        req = json.loads(raw)
                        if req["execute"] == "qmp_capabilities":
                            conn.sendall(line({"return": {}, "id": req["id"]}))
                            continue
                        replies = self.handler(req)
                        if replies is None:
                            return
                        for r in replies:
                            conn.sendall(r)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.close()


@pytest.fixture
def sock() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="nq-"))
    yield d / "qmp.sock"
    shutil.rmtree(d, ignore_errors=True)


def serve(sock: Path, handler: Handler, **kw: Any) -> FakeQmp:
    return FakeQmp(sock, handler, **kw)


def test_events_are_skipped_and_the_reply_returned(sock: Path) -> None:
    def handler(req: dict[str, Any]) -> list[bytes]:
        event = {"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}
        return [line(event), line({"return": [{"qom-path": "/machine/cpu0"}], "id": req["id"]})]

    server = serve(sock, handler)
    with QmpClient.connect(str(sock), timeout=2) as qmp:
        assert qmp.version == "7.2.22 (Debian 1:7.2)"
        assert qmp.execute("query-cpus-fast") == [{"qom-path": "/machine/cpu0"}]
    server.close()


def test_error_reply_is_typed_with_qemus_text(sock: Path) -> None:
    def handler(req: dict[str, Any]) -> list[bytes]:
        err = {"class": "GenericError", "desc": "Property 'x.nosuch' not found"}
        return [line({"error": err, "id": req["id"]})]

    server = serve(sock, handler)
    with QmpClient.connect(str(sock), timeout=2) as qmp, pytest.raises(QmpCommandError) as exc:
        qmp.execute("qom-get", {"path": "/x", "property": "nosuch"})
    assert (exc.value.error_class, exc.value.desc) == (
        "GenericError",
        "Property 'x.nosuch' not found",
    )
    server.close()


def test_silence_is_a_timeout(sock: Path) -> None:
    server = serve(sock, lambda _req: [])
    start = time.monotonic()
    with QmpClient.connect(str(sock), timeout=2) as qmp, pytest.raises(QmpTimeoutError):
        qmp.execute("query-status", timeout=0.3)
    assert time.monotonic() - start < 1.5
    server.close()


def test_hang_up_is_unavailable(sock: Path) -> None:
    server = serve(sock, lambda _req: None)
    with QmpClient.connect(str(sock), timeout=2) as qmp, pytest.raises(QmpUnavailableError):
        qmp.execute("query-status")
    server.close()


def test_peer_that_is_not_qmp_is_unavailable(sock: Path) -> None:
    server = serve(sock, lambda _req: [], greeting=b'{"hello": "world"}\n')
    with pytest.raises(QmpUnavailableError, match="does not speak QMP"):
        QmpClient.connect(str(sock), timeout=2)
    server.close()


def test_garbage_greeting_is_unavailable(sock: Path) -> None:
    server = serve(sock, lambda _req: [], greeting=b"SSH-2.0-OpenSSH\n")
    with pytest.raises(QmpUnavailableError, match="not JSON"):
        QmpClient.connect(str(sock), timeout=2)
    server.close()


def test_missing_socket_waits_only_while_the_process_lives(sock: Path) -> None:
    start = time.monotonic()
    with pytest.raises(QmpUnavailableError, match="cannot connect"):
        QmpClient.connect(str(sock), timeout=5, alive=lambda: False)
    assert time.monotonic() - start < 0.5
    start = time.monotonic()
    with pytest.raises(QmpUnavailableError):
        QmpClient.connect(str(sock), timeout=0.3)
    assert time.monotonic() - start < 1.0


def test_an_endless_stream_of_events_ends_at_the_deadline(sock: Path) -> None:
    event = line({"event": "RTC_CHANGE", "data": {"offset": 0}})
    server = serve(sock, lambda _req: [event * 2000] * 50)
    start = time.monotonic()
    with QmpClient.connect(str(sock), timeout=2) as qmp, pytest.raises(QmpTimeoutError):
        qmp.execute("query-status", timeout=0.3)
    assert time.monotonic() - start < 3
    server.close()


@pytest.mark.parametrize(
    "greeting",
    [
        {"QMP": []},
        {"QMP": {"version": []}},
        {"QMP": {"version": {"qemu": "7.2"}}},
        {"QMP": {"version": {"qemu": {"major": "x"}, "package": 5}}},
    ],
)
def test_an_odd_greeting_gives_an_unknown_version_not_a_crash(
    sock: Path, greeting: dict[str, Any]
) -> None:
    server = serve(sock, lambda _req: [], greeting=line(greeting))
    with QmpClient.connect(str(sock), timeout=2) as qmp:
        assert "?" in qmp.version or qmp.version == "unknown"
    server.close()


def test_a_deeply_nested_reply_is_unavailable_not_recursion(sock: Path) -> None:
    deep = b'{"return": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\r\n"
    server = serve(sock, lambda _req: [deep])
    with (
        QmpClient.connect(str(sock), timeout=2) as qmp,
        pytest.raises(QmpUnavailableError, match="nested"),
    ):
        qmp.execute("query-cpus-fast")
    server.close()
