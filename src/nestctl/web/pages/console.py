"""Consoles: a VM's screen (noVNC), a VM's serial port, a container's or a node's terminal
(xterm.js), each through Proxmox's console API as the visitor (see `nestctl.web.consoles`).

Flow: the page POSTs `/t/{target}/console/open` (session + CSRF, like every action); the visitor's
identity asks Proxmox for `vncproxy`/`termproxy`; a 403 comes back as one sentence naming the
missing privilege and no socket is opened. Otherwise the page opens the WebSocket
`/console/ws/{grant}`, which checks the Origin and the session before it is accepted, uses the
grant once, and relays bytes to Proxmox's `vncwebsocket`. Each console is logged (who, which
guest, which layer, when opened and closed); the Proxmox ticket never leaves this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from nestctl.parse import is_ascii_digits
from nestctl.web.consoles import links, vendor
from nestctl.web.consoles.broker import ConsoleBroker, ConsoleRef, connect_upstream, request_console
from nestctl.web.consoles.upstream import UpstreamError
from nestctl.web.pages.common import api_for, form, see_other, session, web
from nestctl.web.security import cookie_name, header, read_cookies
from nestctl.web.snapshot import describe_error, privilege_of, status_of
from nestctl.web.state import WebState
from nestctl.web.templating import render

LOG = logging.getLogger("nestctl.web.consoles")

# WebSocket close codes the page explains (4000-4999 are the application's).
CLOSE_IDLE = 4408
CLOSE_UPSTREAM = 4502


def broker(request: Request | WebSocket) -> ConsoleBroker:
    found: ConsoleBroker = request.app.state.consoles
    return found


def _vendor(request: Request | WebSocket) -> vendor.Vendor:
    found: vendor.Vendor | None = getattr(request.app.state, "console_vendor", None)
    if found is None:
        found = vendor.find()
        request.app.state.console_vendor = found
    return found


def _page(request: Request, ref: ConsoleRef) -> Response:
    api_for(request, ref.target)  # logged in to that target, or the log-in link
    found = _vendor(request)
    settings = web(request).settings
    missing = None
    if ref.kind == "vnc" and found.novnc is None:
        missing = f"The screen needs noVNC, which is not installed here: {vendor.NOVNC_HINT}."
    elif ref.terminal and found.xterm is None:
        missing = f"The terminal needs xterm.js, which is not installed here: {vendor.XTERM_HINT}."
    back = (
        f"/t/{ref.target}/node/{ref.node}"
        if ref.kind == "shell"
        else f"/t/{ref.target}/vm/{ref.node}/{ref.vmid}"
    )
    return render(
        request,
        "console.html",
        ref=ref,
        layer=links.layer_label(settings.targets, ref.target, ref.kind, ref.node, ref.vmid),
        missing=missing,
        back=back,
        idle=int(settings_idle(request)),
    )


def settings_idle(request: Request | WebSocket) -> float:
    return float(broker(request).idle_seconds)


async def vm_screen(request: Request) -> Response:
    p = request.path_params
    return _page(request, ConsoleRef(p["target"], "vnc", p["node"], int(p["vmid"])))


async def vm_serial(request: Request) -> Response:
    p = request.path_params
    return _page(request, ConsoleRef(p["target"], "serial", p["node"], int(p["vmid"])))


async def ct_console(request: Request) -> Response:
    p = request.path_params
    return _page(request, ConsoleRef(p["target"], "lxc", p["node"], int(p["vmid"])))


async def node_shell(request: Request) -> Response:
    p = request.path_params
    return _page(request, ConsoleRef(p["target"], "shell", p["node"]))


async def vm_screen_by_id(request: Request) -> Response:
    """The screen of VM `vmid` of a target, wherever it runs (the broken-link view's link to a
    virtual Proxmox's own screen, one layer out)."""
    target = request.path_params["target"]
    vmid = int(request.path_params["vmid"])
    api = api_for(request, target)
    try:
        rows = await run_in_threadpool(api.request, "GET", "/cluster/resources", {"type": "vm"})
    except Exception as exc:  # noqa: BLE001 - an API error becomes one sentence
        return PlainTextResponse(describe_error(exc) + "\n", status_code=502)
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("vmid") == vmid and row.get("type") == "qemu":
            return see_other(links.vm_console_url(target, str(row.get("node")), vmid))
    return render(request, "not_found.html", status_code=404)


async def open_console(request: Request) -> Response:
    """POST: ask Proxmox for the console as the visitor; the grant for the WebSocket, as JSON."""
    target = request.path_params["target"]
    data = form(request)
    kind = data.get("kind", "")
    node = data.get("node", "")
    vmid_text = data.get("vmid", "")
    if kind not in ("vnc", "serial", "lxc", "shell") or not node or len(node) > 64:
        return JSONResponse({"error": "unknown console"}, status_code=400)
    if kind != "shell" and not is_ascii_digits(vmid_text):
        return JSONResponse({"error": "unknown console"}, status_code=400)
    ref = ConsoleRef(target, kind, node, int(vmid_text) if kind != "shell" else None)
    api = api_for(request, target)
    s = session(request)
    identity = s.identity(target) or "?"
    try:
        answer, connect, first = await run_in_threadpool(request_console, api, ref)
    except Exception as exc:  # noqa: BLE001 - Proxmox's refusal, shown as one sentence
        status = status_of(exc) or 502
        privilege = privilege_of(exc)
        message = describe_error(exc)
        if status == 403:
            message = refused_sentence(identity, ref, message, privilege)
        else:  # Proxmox's own words, without the request line the client adds
            said = " ".join(str(getattr(exc, "message", "") or "").split()).rstrip(".")
            message = f"Proxmox could not open the console: {said or message}."
        LOG.info("console refused: %s %s on %s: %s", identity, ref.guest, target, status)
        return JSONResponse(
            {"error": message, "status": status, "privilege": privilege},
            status_code=status if status in (400, 403, 404, 500, 501, 595) else 502,
        )
    grant = broker(request).add(s.id, identity, ref, connect, first)
    out: dict[str, Any] = {"ws": f"/console/ws/{grant.id}"}
    if kind == "vnc" and isinstance(answer.get("password"), str):
        out["password"] = answer["password"]  # the RFB handshake's one-time password (30 s)
    return JSONResponse(out, headers={"cache-control": "no-store"})


def refused_sentence(identity: str, ref: ConsoleRef, message: str, privilege: str | None) -> str:
    """One plain sentence for a 403: who, which privilege on which path (Proxmox's own words
    `Permission check failed (/vms/101, VM.Console)` give both)."""
    m = re.search(r"Permission check failed \((/[^,)]*), ([^)]+)\)", message)
    path = (
        m.group(1) if m else (f"/nodes/{ref.node}" if ref.kind == "shell" else f"/vms/{ref.vmid}")
    )
    needed = privilege or (
        m.group(2) if m else ("Sys.Console" if ref.kind == "shell" else "VM.Console")
    )
    return f"{identity} may not open this console: it needs {needed} on {path}."


def _origin_ok(ws: WebSocket) -> bool:
    origin = header(ws.scope, b"origin")
    host = header(ws.scope, b"host")
    scheme = "https" if ws.scope.get("scheme") == "wss" else "http"
    return bool(origin and host and origin == f"{scheme}://{host}")


def activity(kind: str, data: bytes) -> bool:
    """Whether a message from the browser is the visitor's doing (idle consoles close).

    Terminal: input (`0:`) and resizes (`1:`), not the ping (`2`). Screen: anything but noVNC's
    own FramebufferUpdateRequests (RFB message 3, 10 bytes each), which it sends all the time.
    """
    if kind != "vnc":
        return data[:2] in (b"0:", b"1:")
    if data and len(data) % 10 == 0 and all(data[i] == 3 for i in range(0, len(data), 10)):
        return False
    return bool(data)


async def console_ws(ws: WebSocket) -> None:
    state: WebState = ws.app.state.web
    if not _origin_ok(ws):
        LOG.warning(
            "console refused: WebSocket from a foreign Origin %r", header(ws.scope, b"origin")
        )
        await ws.close(code=1008)
        return
    cookies = read_cookies(ws.scope)
    s = state.sessions.get(cookies.get(cookie_name(state.settings.tls)))
    grant = broker(ws).take(ws.path_params["grant"], s.id) if s is not None else None
    if grant is None:
        LOG.warning("console refused: WebSocket without a session or a valid grant")
        await ws.close(code=1008)
        return
    wanted = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="binary" if "binary" in wanted else None)
    ref = grant.ref
    layer = links.layer_label(state.settings.targets, ref.target, ref.kind, ref.node, ref.vmid)
    try:
        upstream = await connect_upstream(grant)
    except UpstreamError as exc:
        LOG.info("console failed: %s %s on %s: %s", grant.identity, ref.guest, ref.target, exc)
        await ws.close(code=CLOSE_UPSTREAM, reason=str(exc)[:120])
        return
    started = time.monotonic()
    LOG.info("console opened: %s %s on %s (%s)", grant.identity, ref.guest, ref.target, layer)
    why = await _relay(ws, upstream, ref.kind, broker(ws).idle_seconds)
    LOG.info(
        "console closed: %s %s on %s after %.0f s (%s)",
        grant.identity,
        ref.guest,
        ref.target,
        time.monotonic() - started,
        why,
    )


async def _relay(ws: WebSocket, upstream: Any, kind: str, idle: float) -> str:
    last = time.monotonic()

    async def inward() -> str:
        nonlocal last
        while True:
            try:
                msg = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return "the browser left"
            if msg["type"] == "websocket.disconnect":
                return "the browser left"
            data = msg.get("bytes") or (msg.get("text") or "").encode()
            if activity(kind, data):
                last = time.monotonic()
            await upstream.write(data)

    async def outward() -> str:
        while True:
            data = await upstream.read()
            if not data:
                return "Proxmox closed it"
            try:
                await ws.send_bytes(data)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return "the browser left"

    async def watch() -> str:
        while True:
            await asyncio.sleep(max(0.05, min(idle / 4, 5.0)))
            if time.monotonic() - last > idle:
                return "idle"

    tasks = [asyncio.ensure_future(c) for c in (inward(), outward(), watch())]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()
    why: str = next(iter(done)).result()
    await upstream.close()
    await _close_browser(ws, why, idle)
    return why


async def _close_browser(ws: WebSocket, why: str, idle: float) -> None:
    code, reason = 1000, why
    if why == "idle":
        code, reason = CLOSE_IDLE, f"closed after {int(idle)} s without input"
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await ws.close(code=code, reason=reason)  # unless the browser is already gone


# -- the packaged clients --------------------------------------------------------------------

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


async def novnc_file(request: Request) -> Response:
    found = _vendor(request)
    rel = request.path_params["path"]
    path = vendor.safe_file(found.novnc, rel) if found.novnc else None
    if path is None or path.suffix not in _TYPES:
        return PlainTextResponse("not found\n", status_code=404)
    data = await run_in_threadpool(path.read_bytes)
    return Response(data, media_type=_TYPES[path.suffix], headers={"cache-control": "max-age=3600"})


async def xterm_file(request: Request) -> Response:
    found = _vendor(request)
    name = request.path_params["name"]
    if found.xterm is None or name not in ("xterm.js", "xterm.css"):
        return PlainTextResponse("not found\n", status_code=404)
    if found.xterm_kind == "debian" and name == "xterm.js":
        text = await run_in_threadpool(vendor.commonjs_bundle, found.xterm / "lib")
        data = text.encode()
    else:
        base = found.xterm / "lib" if found.xterm_kind == "debian" else found.xterm
        data = await run_in_threadpool((base / name).read_bytes)
    suffix = "." + name.rsplit(".", 1)[1]
    return Response(data, media_type=_TYPES[suffix], headers={"cache-control": "max-age=3600"})


routes = [
    Route("/t/{target}/vm/{node}/{vmid:int}/console", vm_screen, methods=["GET"]),
    Route("/t/{target}/vm/{node}/{vmid:int}/serial", vm_serial, methods=["GET"]),
    Route("/t/{target}/ct/{node}/{vmid:int}/console", ct_console, methods=["GET"]),
    Route("/t/{target}/node/{node}/shell", node_shell, methods=["GET"]),
    Route("/t/{target}/vmid/{vmid:int}/console", vm_screen_by_id, methods=["GET"]),
    Route("/t/{target}/console/open", open_console, methods=["POST"]),
    WebSocketRoute("/console/ws/{grant}", console_ws),
    Route("/vendor/novnc/{path:path}", novnc_file, methods=["GET"]),
    Route("/vendor/xterm/{name}", xterm_file, methods=["GET"]),
]
