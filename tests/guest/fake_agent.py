"""A fake QEMU guest agent on a unix socket, faithful to qemu-ga's wire protocol.

Used only where the real agent cannot misbehave on demand (timeouts, garbage, dropped connections);
the real qemu-ga is exercised in tests/e2e. What it mimics (qemu-ga 7.2, Linux):
* requests are JSON objects, one per line; a 0xFF byte resets the parser;
* ``guest-sync-delimited`` answers ``0xFF`` + ``{"return": id}``; replies echo a request's ``id``;
* errors are ``{"error": {"class": ..., "desc": ...}}`` with qemu-ga's own texts;
* guest-file-open/read/close over an in-memory file table, guest-exec/guest-exec-status with
  base64 ``out-data``/``err-data``;
* a command in `blocked` answers as qemu-ga does when its config blocks it:
  ``{"class": "CommandNotFound", "desc": "Command guest-exec has been disabled"}``.
`behave` hooks let a test delay, drop, garble or silence replies per command.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FakeProgram:
    exitcode: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    never_exits: bool = False


#: A hook gets the request and returns raw bytes to send instead of the normal reply,
#: b"" to send nothing, or None to answer normally. "DROP" closes the connection.
Behave = Callable[[dict[str, Any]], bytes | str | None]


@dataclass
class FakeAgent:
    path: Path
    files: dict[str, bytes] = field(default_factory=dict)
    #: guest-exec path -> what it does (a callable gets the argument list)
    programs: dict[str, FakeProgram | Callable[[list[str]], FakeProgram]] = field(
        default_factory=dict
    )
    stdin_seen: list[bytes] = field(default_factory=list)
    behave: dict[str, Behave] = field(default_factory=dict)
    ignore_sync: int = 0  # answer nothing to the first N sync requests (agent not started yet)
    #: Commands the agent's configuration blocks (qemu-ga --block-rpcs / block-rpcs=).
    blocked: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    os_id: str = "debian"
    _handles: dict[int, list[Any]] = field(default_factory=dict)
    _execs: dict[int, FakeProgram] = field(default_factory=dict)
    _next: int = 1000

    def __post_init__(self) -> None:
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(4)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        self._thread.join(timeout=5)

    # -- server ----------------------------------------------------------------------------

    def _serve(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buf = b""
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            if b"\xff" in buf:  # qemu-ga resets its JSON parser on 0xFF
                buf = buf.rsplit(b"\xff", 1)[1]
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                if not self._answer(conn, json.loads(line)):
                    conn.close()
                    return

    def _answer(self, conn: socket.socket, req: dict[str, Any]) -> bool:
        cmd = req.get("execute", "")
        self.seen.append(cmd)
        hook = self.behave.get(cmd)
        special = hook(req) if hook else None
        if special == "DROP":
            return False
        if isinstance(special, bytes):
            if special:
                try:
                    conn.sendall(special)
                except OSError:  # the client gave up on a flood: as a real peer would see it
                    return False
            return True
        if cmd == "guest-sync-delimited" and self.ignore_sync > 0:
            self.ignore_sync -= 1
            return True
        try:
            reply: dict[str, Any] = {"return": self._dispatch(cmd, req.get("arguments", {}))}
        except _QgaError as exc:
            reply = {"error": {"class": exc.cls, "desc": exc.desc}}
        if "id" in req:
            reply["id"] = req["id"]
        prefix = b"\xff" if cmd == "guest-sync-delimited" else b""
        conn.sendall(prefix + json.dumps(reply).encode() + b"\n")
        return True

    def _dispatch(self, cmd: str, args: dict[str, Any]) -> Any:
        if cmd in self.blocked:  # qemu-ga 7.2's own words (checked against the real binary)
            raise _QgaError("CommandNotFound", f"Command {cmd} has been disabled")
        if cmd == "guest-sync-delimited":
            return args["id"]
        if cmd == "guest-ping":
            return {}
        if cmd == "guest-info":
            names = ["guest-sync-delimited", "guest-info", "guest-exec", "guest-file-open"]
            return {
                "version": "7.2.22",
                "supported_commands": [{"name": n, "enabled": True} for n in names],
            }
        if cmd == "guest-get-osinfo":
            return {"id": self.os_id, "kernel-release": "6.1.0-56-cloud-amd64"}
        if cmd == "guest-file-open":
            path = args["path"]
            if path not in self.files:
                raise _QgaError(
                    "GenericError",
                    f"failed to open file '{path}' (mode: 'r'): No such file or directory",
                )
            self._next += 1
            self._handles[self._next] = [self.files[path], 0]
            return self._next
        if cmd == "guest-file-read":
            entry = self._handles.get(args["handle"])
            if entry is None:
                raise _QgaError("GenericError", f"handle '{args['handle']}' has not been found")
            data, pos = entry
            chunk = data[pos : pos + args.get("count", 4096)]
            entry[1] = pos + len(chunk)
            return {
                "count": len(chunk),
                "buf-b64": base64.b64encode(chunk).decode(),
                "eof": entry[1] >= len(data),
            }
        if cmd == "guest-file-close":
            self._handles.pop(args["handle"], None)
            return {}
        if cmd == "guest-exec":
            prog = self.programs.get(args["path"])
            if prog is None:
                raise _QgaError(
                    "GenericError",
                    "Guest agent command failed, error was 'Failed to execute child process "
                    f"\u201c{args['path']}\u201d (No such file or directory)'",
                )
            if callable(prog):
                prog = prog(list(args.get("arg", [])))
            if "input-data" in args:
                self.stdin_seen.append(base64.b64decode(args["input-data"]))
            self._next += 1
            self._execs[self._next] = prog
            return {"pid": self._next}
        if cmd == "guest-exec-status":
            prog = self._execs[args["pid"]]
            if prog.never_exits:
                return {"exited": False}
            return {
                "exited": True,
                "exitcode": prog.exitcode,
                "out-data": base64.b64encode(prog.stdout).decode(),
                "err-data": base64.b64encode(prog.stderr).decode(),
            }
        raise _QgaError("CommandNotFound", f"The command {cmd} has not been found")


class _QgaError(Exception):
    def __init__(self, cls: str, desc: str) -> None:
        super().__init__(desc)
        self.cls = cls
        self.desc = desc


@contextlib.contextmanager
def serving(files: dict[str, bytes]) -> Iterator[FakeAgent]:
    """A FakeAgent on a socket in a short temporary directory (unix socket paths are limited to
    107 bytes; pytest's tmp_path can be longer), closed and removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="nq-"))
    server = FakeAgent(d / "qga.sock", files=files)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(d, ignore_errors=True)


def delay(seconds: float) -> Behave:
    """A hook that makes the reply late (then answers normally)."""

    def hook(_req: dict[str, Any]) -> None:
        time.sleep(seconds)

    return hook
