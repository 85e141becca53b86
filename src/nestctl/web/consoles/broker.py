"""Opening a console through Proxmox's API, and the one-time grants that connect a browser to it.

A grant is made by a CSRF-checked POST (the visitor's own identity asks Proxmox for `vncproxy` or
`termproxy`) and is bound to the visitor's session; the WebSocket that follows names the grant
and may use it once, within `GRANT_SECONDS` (Proxmox's VNC ticket lives 40 s). The Proxmox ticket
stays in this process: the browser gets only the grant's random id (and, for a VNC screen, the
one-time VNC password that the RFB handshake itself needs, as Proxmox's own noVNC gets it).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from nestctl.web.consoles.upstream import (
    TcpUpstream,
    Upstream,
    UpstreamError,
    WebSocketUpstream,
    WsTarget,
)

LOG = logging.getLogger("nestctl.web.consoles")
GRANT_SECONDS = 30.0
KINDS = ("vnc", "serial", "lxc", "shell")


@dataclass(frozen=True)
class ConsoleRef:
    """Which console: a VM's screen or serial port, a container's terminal, a node's shell."""

    target: str
    kind: str  # one of KINDS
    node: str
    vmid: int | None = None

    @property
    def api_base(self) -> str:
        node = quote(self.node, safe="")
        if self.kind in ("vnc", "serial"):
            return f"/nodes/{node}/qemu/{self.vmid}"
        if self.kind == "lxc":
            return f"/nodes/{node}/lxc/{self.vmid}"
        return f"/nodes/{node}"

    @property
    def guest(self) -> str:
        """For the log and the page: qemu/101 (serial), lxc/200, node/pve1."""
        if self.kind == "vnc":
            return f"qemu/{self.vmid}"
        if self.kind == "serial":
            return f"qemu/{self.vmid} serial0"
        if self.kind == "lxc":
            return f"lxc/{self.vmid}"
        return f"node/{self.node} shell"

    @property
    def terminal(self) -> bool:
        return self.kind != "vnc"


@dataclass
class Grant:
    id: str
    session: str
    identity: str
    ref: ConsoleRef
    connect: Callable[[], Any]  # -> awaitable Upstream
    first_line: bytes  # what the dashboard sends first (termproxy's USER:TICKET\n), or b""
    created: float = field(default_factory=time.monotonic)


def request_console(api: Any, ref: ConsoleRef) -> tuple[dict[str, Any], Callable[[], Any], bytes]:
    """Ask Proxmox (as the visitor) for the console; (answer, connect, first line).

    Raises the API's error (403 names the missing privilege: VM.Console, Sys.Console).
    """
    if ref.kind == "vnc":
        answer = api.request("POST", f"{ref.api_base}/vncproxy", {"websocket": 1})
    elif ref.kind == "serial":
        answer = api.request("POST", f"{ref.api_base}/termproxy", {"serial": "serial0"})
    else:
        answer = api.request("POST", f"{ref.api_base}/termproxy", {})
    if not isinstance(answer, dict) or not isinstance(answer.get("port"), int | str):
        raise UpstreamError("Proxmox's console answer has no port")
    port = int(answer["port"])
    ticket = str(answer.get("ticket", ""))
    user = str(answer.get("user") or getattr(api, "userid", ""))
    # termproxy reads USER:TICKET\n first (pve-xtermjs termproxy/src/main.rs:94-147); Proxmox's
    # own page sends it (xterm.js/src/main.js:272-275), a proxy in front sends it for the page.
    first = f"{user}:{ticket}\n".encode() if ref.terminal else b""
    auth_headers = getattr(api, "auth_headers", None)
    if auth_headers is None:  # local mode (pvesh as root): the worker listens on localhost
        return answer, lambda: TcpUpstream.connect(port), first
    query = urlencode({"port": port, "vncticket": ticket})
    target = WsTarget(
        f"{api.url}/api2/json{ref.api_base}/vncwebsocket?{query}",
        tuple(auth_headers().items()),
        api.fingerprint,
        getattr(api, "ca_file", None),
    )
    return answer, lambda: WebSocketUpstream.connect(target), first


class ConsoleBroker:
    """The grants of every session, and the log of who opened which console."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self.open_count = 0

    def add(
        self,
        session: str,
        identity: str,
        ref: ConsoleRef,
        connect: Callable[[], Any],
        first_line: bytes,
    ) -> Grant:
        grant = Grant(
            secrets.token_urlsafe(24), session, identity, ref, connect, first_line, self._clock()
        )
        with self._lock:
            self._expire()
            self._grants[grant.id] = grant
        return grant

    def take(self, grant_id: str, session: str) -> Grant | None:
        """The grant, once, for the session that asked for it (None otherwise)."""
        with self._lock:
            self._expire()
            grant = self._grants.get(grant_id)
            if grant is None or not secrets.compare_digest(grant.session, session):
                return None
            del self._grants[grant_id]
        return grant

    def drop_session(self, session: str) -> None:
        with self._lock:
            for gid in [g.id for g in self._grants.values() if g.session == session]:
                del self._grants[gid]

    def _expire(self) -> None:
        now = self._clock()
        for gid in [g.id for g in self._grants.values() if now - g.created > GRANT_SECONDS]:
            del self._grants[gid]


async def connect_upstream(grant: Grant) -> Upstream:
    upstream: Upstream = await grant.connect()
    if grant.first_line:
        await upstream.write(grant.first_line)
    return upstream
