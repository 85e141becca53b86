"""Consoles: `vncproxy`, `termproxy` and `vncwebsocket`, backed by real parts.

As Proxmox does it (qemu-server src/PVE/API2/Qemu.pm `vncproxy`, `termproxy`, `vncwebsocket`;
pve-manager PVE/API2/Nodes.pm:1367-1500 `termproxy`/`vncwebsocket`):

* `POST .../vncproxy` (websocket=1) picks a port in 5900-5999 and answers a VNC ticket bound to
  the user, `/vms/{vmid}` and that port, prefixed with a fresh 8-character VNC password
  (`"${password}:${ticket}"`), and the `password` itself. When the browser's WebSocket arrives,
  `qm vncproxy` sets that password on the VM's VNC server and lets it expire in 30 s
  (qemu-server src/PVE/CLI/qm.pm:363-365), then the bytes flow to the VNC unix socket. Here the
  VNC server is a real QEMU's (`-vnc unix:PATH,password=on`), registered with `attach_vnc`.
* `POST .../termproxy` answers a ticket; the console is `termproxy` (pve-xtermjs
  termproxy/src/main.rs): the first line the client sends is `USER:TICKET\\n` (main.rs:94-147),
  answered `OK` (main.rs:330); then `0:LEN:DATA` is input, `1:COLS:ROWS:` a resize and anything
  else (`2`, the ping) is skipped (main.rs:57-91). Here the terminal is a real pty running a
  shell.
* `GET .../vncwebsocket` checks the ticket (verify_vnc_ticket) and answers `{"port": ...}`;
  pveproxy then upgrades the connection and relays it (websocket.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tests.pvesim import websocket
from tests.pvesim.api_nodes import new_task
from tests.pvesim.auth import AuthError
from tests.pvesim.cluster import Cluster
from tests.pvesim.handlers import ApiError, Ctx, handles

TICKET_SECONDS = 40.0  # Proxmox's VNC tickets are short-lived (verify_vnc_ticket: 40 s)
SHELL = ["/bin/sh", "-i"]


@dataclass
class Grant:
    kind: str  # "vnc" | "term"
    port: int
    user: str  # who asked (user@realm or user@realm!token)
    authpath: str  # /vms/{vmid} or /nodes/{node}
    ticket: str  # as answered (with the password prefix for a vncproxy websocket)
    password: str | None
    opener: Callable[[], Backend]
    issued: float = field(default_factory=time.monotonic)
    used: bool = False


class Backend:
    """A byte stream behind a console: `read()` (b"" at the end), `write()`, `close()`."""

    def read(self) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SocketBackend(Backend):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class PtyShell(Backend):
    """A shell on a real pty, behind Proxmox's termproxy protocol (see the module docstring)."""

    def __init__(self, user: str, ticket: str, argv: list[str] | None = None) -> None:
        self.user, self.ticket = user, ticket
        self.authenticated = False
        self.buf = b""
        self.pending = 0  # bytes of a `0:LEN:` data message still to pass to the pty
        self.home = tempfile.mkdtemp(prefix="pvesim-shell-")
        master, slave = os.openpty()
        env = {"PATH": "/usr/bin:/bin", "HOME": self.home, "TERM": "xterm", "PS1": "pvesim$ "}
        self.proc = subprocess.Popen(
            argv or SHELL,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=self.home,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # noqa: PLW1509 - one thread forks
        )
        os.close(slave)
        self.master = master
        self._greeted = threading.Event()
        self._ok_sent = False

    def read(self) -> bytes:
        self._greeted.wait()
        if not self.authenticated:
            return b""
        if not self._ok_sent:
            self._ok_sent = True
            return b"OK"  # termproxy main.rs:330, before any output of the shell
        try:
            return os.read(self.master, 65536)
        except OSError:
            return b""  # EIO: the shell exited

    def write(self, data: bytes) -> None:
        self.buf += data
        if not self.authenticated:
            if b"\n" not in self.buf:
                return
            line, _, self.buf = self.buf.partition(b"\n")
            user, sep, ticket = line.partition(b":")
            if not sep or user.decode() != self.user or ticket.decode() != self.ticket:
                self._greeted.set()
                raise websocket.ClosedError("authentication failed")
            self.authenticated = True
            self._greeted.set()
        self._process()

    def _process(self) -> None:
        # termproxy main.rs:57-91 (process_queue), then the data bytes go to the pty.
        while self.buf:
            if self.pending:
                chunk, self.buf = self.buf[: self.pending], self.buf[self.pending :]
                self.pending -= len(chunk)
                os.write(self.master, chunk)
                continue
            if len(self.buf) < 2:
                return
            kind = self.buf[0] - ord("0")
            if kind == 0:
                n, rest = _number(self.buf[2:])
                if n is None:
                    return
                self.buf, self.pending = rest, n
            elif kind == 1:
                cols, rest = _number(self.buf[2:])
                rows, rest = _number(rest) if cols is not None else (None, rest)
                if cols is None or rows is None:
                    return
                self.buf = rest
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                self.resized = (cols, rows)
            else:
                self.buf = self.buf[1:]  # a ping (2) or anything unknown

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self._greeted.set()
        with contextlib.suppress(OSError):
            for p in Path(self.home).iterdir():
                p.unlink()
            os.rmdir(self.home)


def _number(buf: bytes) -> tuple[int | None, bytes]:
    head, sep, rest = buf.partition(b":")
    if not sep or not head.isdigit():
        return None, buf
    return int(head), rest


@dataclass
class VncTarget:
    socket: Path  # QEMU's `-vnc unix:PATH,password=on`
    qmp: Path | None  # QEMU's QMP socket, to set the one-time VNC password


class Consoles:
    """What backs the consoles of one simulated cluster (see `consoles()`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.grants: dict[int, Grant] = {}
        self.vnc: dict[int, VncTarget] = {}
        self.containers: set[int] = set()  # vmids whose termproxy gives a shell
        self.opened: list[tuple[str, str, str]] = []  # (kind, authpath, user): sockets opened
        self.refused: list[str] = []  # why a console's worker could not start
        self.live: list[Backend] = []
        self.shell_argv: list[str] = list(SHELL)

    def attach_vnc(self, vmid: int, sock: Path, qmp: Path | None = None) -> None:
        self.vnc[vmid] = VncTarget(sock, qmp)

    def grant(self, grant: Grant) -> None:
        with self.lock:
            self.grants[grant.port] = grant

    def port(self) -> int:
        with self.lock:
            for port in range(5900, 6000):
                if port not in self.grants:
                    return port
        raise ApiError(500, "unable to find free port (5900-5999)")

    def close_all(self) -> None:
        for backend in list(self.live):
            backend.close()
        self.live.clear()


def consoles(cluster: Cluster) -> Consoles:
    """The console registry of a cluster (made on first use; tests attach backends to it)."""
    found: Consoles | None = cluster.__dict__.get("_consoles")
    if found is None:
        found = Consoles()
        cluster.__dict__["_consoles"] = found
    return found


def _vnc_password() -> str:
    # PVE::Ticket::generate_vnc_password: 8 printable ASCII characters ('!' .. '~').
    return "".join(chr(33 + secrets.randbelow(94)) for _ in range(8))


def _ticket(user: str, authpath: str, port: int) -> str:
    return f"PVEVNC:{int(time.time()):08X}::{secrets.token_urlsafe(48)}"


def _issue(ctx: Ctx, kind: str, authpath: str, task: str, ident: str, opener: Any) -> Any:
    reg = consoles(ctx.cluster)
    port = reg.port()
    user = ctx.who.name
    ticket = _ticket(user, authpath, port)
    password = None
    if kind == "vnc":
        password = _vnc_password()
        ticket = f"{password}:{ticket}"
    grant = Grant(kind, port, user, authpath, ticket, password, lambda: opener(ticket, password))
    reg.grant(grant)
    upid = new_task(ctx.cluster, ctx.node, task, ident, user, None, seconds=0).upid
    out: dict[str, Any] = {"user": user, "ticket": ticket, "port": port, "upid": upid}
    if kind == "vnc":
        out["cert"] = "-----BEGIN CERTIFICATE-----\npvesim\n-----END CERTIFICATE-----\n"
        out["password"] = password
    return out


@handles("POST", "/nodes/{node}/qemu/{vmid}/vncproxy")
def qemu_vncproxy(ctx: Ctx) -> Any:
    vm = ctx.vm
    reg = consoles(ctx.cluster)

    def opener(_ticket: str, password: str | None) -> Backend:
        target = reg.vnc.get(vm.vmid)
        if vm.status != "running" or target is None:
            raise websocket.ClosedError(f"VM {vm.vmid} not running")
        if target.qmp is not None and password is not None:
            _qmp(target.qmp, "set_password", protocol="vnc", password=password)
            _qmp(target.qmp, "expire_password", protocol="vnc", time="+30")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(target.socket))
        return SocketBackend(sock)

    return _issue(ctx, "vnc", f"/vms/{vm.vmid}", "vncproxy", str(vm.vmid), opener)


def _shell(ctx: Ctx) -> Callable[[str, str | None], Backend]:
    reg = consoles(ctx.cluster)
    user = ctx.who.name
    return lambda ticket, _password: PtyShell(user, ticket, reg.shell_argv)


@handles("POST", "/nodes/{node}/termproxy")
def node_termproxy(ctx: Ctx) -> Any:
    node = ctx.node
    return _issue(ctx, "term", f"/nodes/{node.name}", "vncshell", "", _shell(ctx))


@handles("POST", "/nodes/{node}/lxc/{vmid}/termproxy")
def lxc_termproxy(ctx: Ctx) -> Any:
    node = ctx.node
    vmid = int(ctx.route.uri_params["vmid"])
    ct = getattr(node, "cts", {}).get(vmid)
    if ct is None and vmid not in consoles(ctx.cluster).containers:
        raise ApiError(
            500, f"Configuration file 'nodes/{node.name}/lxc/{vmid}.conf' does not exist"
        )
    shell = _shell(ctx)

    def opener(ticket: str, password: str | None) -> Backend:
        if ct is not None and ct.status != "running":
            # `lxc-console` has nothing to attach to: termproxy closes.
            raise websocket.ClosedError(f"CT {vmid} not running")
        return shell(ticket, password)

    return _issue(ctx, "term", f"/vms/{vmid}", "vncproxy", str(vmid), opener)


@handles("POST", "/nodes/{node}/qemu/{vmid}/termproxy")
def qemu_termproxy(ctx: Ctx) -> Any:
    vm = ctx.vm
    serial = ctx.text("serial") or "serial0"
    has_serial = serial in vm.conf.main
    shell = _shell(ctx)

    def opener(ticket: str, password: str | None) -> Backend:
        if vm.status != "running":
            raise websocket.ClosedError(f"VM {vm.vmid} not running")
        if not has_serial:
            # `qm terminal` dies and termproxy closes the connection.
            raise websocket.ClosedError(f"unable to find a serial interface {serial}")
        return shell(ticket, password)

    return _issue(ctx, "term", f"/vms/{vm.vmid}", "vncproxy", str(vm.vmid), opener)


def _verify(ctx: Ctx, authpath: str) -> Any:
    port = ctx.integer("port") or 0
    ticket = ctx.text("vncticket") or ""
    reg = consoles(ctx.cluster)
    with reg.lock:
        grant = reg.grants.get(port)
    fresh = grant is not None and time.monotonic() - grant.issued < TICKET_SECONDS
    if (
        grant is None
        or not fresh
        or grant.ticket != ticket
        or grant.user != ctx.who.name
        or grant.authpath != authpath
    ):
        raise AuthError("permission denied - invalid vnc ticket")
    return {"port": str(port)}


@handles("GET", "/nodes/{node}/qemu/{vmid}/vncwebsocket")
def qemu_vncwebsocket(ctx: Ctx) -> Any:
    vm = ctx.vm
    return _verify(ctx, f"/vms/{vm.vmid}")


@handles("GET", "/nodes/{node}/lxc/{vmid}/vncwebsocket")
def lxc_vncwebsocket(ctx: Ctx) -> Any:
    return _verify(ctx, f"/vms/{int(ctx.route.uri_params['vmid'])}")


@handles("GET", "/nodes/{node}/vncwebsocket")
def node_vncwebsocket(ctx: Ctx) -> Any:
    return _verify(ctx, f"/nodes/{ctx.node.name}")


def _qmp(path: Path, command: str, **arguments: Any) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        stream = sock.makefile("rwb")
        stream.readline()  # the greeting
        for cmd, args in (("qmp_capabilities", {}), (command, arguments)):
            stream.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
            stream.flush()
            while True:
                reply = json.loads(stream.readline())
                if "return" in reply or "error" in reply:
                    break
        if "error" in reply:
            raise websocket.ClosedError(f"QMP {command}: {reply['error']}")
        return reply["return"]


# -- the upgrade (called by server._Handler for `GET ...websocket` with `Upgrade: websocket`) ----


def serve_upgrade(handler: Any, sim: Any) -> Any:
    """Serve one WebSocket upgrade; None once served, else the API's answer for the caller to
    send (a refused ticket, a missing privilege...)."""
    headers = dict(handler.headers.items())
    if headers.get("Sec-WebSocket-Version") != "13" or not headers.get("Sec-WebSocket-Key"):
        return 400, "unsupported websocket-version", b"", {}
    outcome = sim.handle("GET", handler.path, headers, b"")
    if not isinstance(outcome, tuple) or outcome[0] != 200:
        return outcome
    port = int(json.loads(outcome[2])["data"]["port"])
    reg = consoles(sim.cluster)
    with reg.lock:
        grant = reg.grants.pop(port, None)  # a ticket opens one connection (--verify-port)
    if grant is None:
        return 401, "permission denied - invalid vnc ticket", b"", {}
    handler.close_connection = True
    reply = websocket.handshake(
        headers["Sec-WebSocket-Key"], headers.get("Sec-WebSocket-Protocol", "")
    )
    try:
        backend = grant.opener()
    except (websocket.ClosedError, OSError) as exc:
        reg.refused.append(str(exc))
        handler.wfile.write(reply)  # upgraded, then closed at once: the worker died
        handler.wfile.flush()
        return None
    reg.opened.append((grant.kind, grant.authpath, grant.user))
    reg.live.append(backend)
    handler.wfile.write(reply)
    handler.wfile.flush()
    _relay(handler.rfile, handler.wfile, backend, sim.stopping, handler.connection)
    return None


def _relay(
    rfile: BinaryIO, wfile: Any, backend: Backend, stopping: threading.Event, conn: Any
) -> None:
    lock = threading.Lock()

    def send(data: bytes, opcode: int = 2) -> None:
        with lock, contextlib.suppress(OSError, ValueError):
            wfile.write(websocket.frame(data, opcode))
            wfile.flush()

    def outward() -> None:
        while not stopping.is_set():
            data = backend.read()
            if not data:
                break
            send(data)
        send(struct.pack("!H", 1000), opcode=8)
        with contextlib.suppress(OSError, ValueError):
            conn.shutdown(socket.SHUT_RD)  # ends the reading loop; http.server closes the rest

    thread = threading.Thread(target=outward, name="pvesim-console", daemon=True)
    thread.start()
    try:
        while True:
            opcode, payload = websocket.read_frame(rfile)
            if opcode == 8:
                break
            if opcode == 9:
                send(payload, opcode=10)
                continue
            if opcode in (1, 2):
                backend.write(payload)
    except (websocket.ClosedError, OSError, ValueError):
        pass
    finally:
        backend.close()
        thread.join(timeout=5)
