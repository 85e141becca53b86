"""The HTTPS server: `PveSim` owns the cluster, users, faults and the request log.

Each request goes through the steps pve-http-server takes, in its order: find the method in the
schema (501), authenticate (401, CSRF on writes with a ticket), check the schema's permission
(403), proxy to the node (595 when it is down), verify parameters (400), run the handler.
Injected latency and faults apply per request; every request is logged with what the schema
says about it, for the conformance check.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.pvesim import (  # noqa: F401 - register (api_snapshots after api_lxc: its list wins)
    api_agent,
    api_backup,
    api_console,
    api_firewall,
    api_health,
    api_lxc,
    api_nodes,
    api_snapshots,
    api_vms,
)
from tests.pvesim.auth import AuthError, Identity, Users
from tests.pvesim.cluster import Cluster, load_cluster
from tests.pvesim.handlers import HANDLERS, ApiError, Ctx, Extra
from tests.pvesim.schema import Param, Route, Schema, validate
from tests.pvesim.tls import fingerprint, make_certificate

HARNESS_HEADER = "X-PveSim-Harness"  # requests the test harness itself sends (not nestctl's)
ROOT_PASSWORD = "pvesim-root-password"
_SECRETS = frozenset({"password", "otp", "tfa-challenge", "cipassword"})  # kept out of the log


@dataclass
class Fault:
    """An injected failure. `kind`: error (status + message), timeout (no answer for `seconds`,
    then the connection closes), malformed (200 with broken JSON), drop (connection closed),
    delay (`seconds` more latency, then a normal answer)."""

    kind: str = "error"
    status: int = 500
    message: str = "internal error"
    node: str | None = None  # requests whose path names this node
    path: str | None = None  # a regex searched in the path (after /api2/json)
    method: str | None = None
    times: int | None = None  # how many requests it hits; None: until cleared
    seconds: float = 30.0
    hits: int = 0

    def matches(self, method: str, path: str, node: str | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.node is not None and self.node != node:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # after /api2/json, without the query
    params: Mapping[str, Param]  # query and body (not the path's placeholders)
    template: str | None  # the schema path it matched
    identity: str | None
    status: int
    problems: tuple[str, ...]  # what the schema refuses in it
    harness: bool  # sent by the test harness (PveSim.request), not by the code under test


@dataclass
class Response:
    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def data(self) -> Any:
        return self.json["data"]


class PveSim:
    """A Proxmox VE API on loopback. Use as a context manager, or start() / stop()."""

    def __init__(
        self,
        cluster: Cluster | Path | str,
        *,
        schema: Schema | None = None,
        latency_ms: float = 0.0,
        old_server: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.cluster = cluster if isinstance(cluster, Cluster) else load_cluster(Path(cluster))
        self.schema = schema or Schema.load()
        self.latency_ms = latency_ms
        self.old_server = old_server  # before libpve-http-server 5.2: message only in the reason
        self.auth_failure_delay = 0.0  # Proxmox waits 3 s before every 401
        self.users = Users()
        self.users.add_user("root@pam", ROOT_PASSWORD)
        self.root_token = self.users.add_token("root@pam", "pvesim", privsep=False)
        self.add_user = self.users.add_user  # sim.add_user(userid, password, privs=, totp_secret=)
        self.add_token = self.users.add_token  # sim.add_token(userid, tokenid, privs=, privsep=)
        self.faults: list[Fault] = []
        self._exempt = 0  # > 0 inside nonconforming(): requests are logged but not held to it
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests served at the same moment
        self.internal_errors: list[str] = []  # simulator bugs; assert_conformant reports them
        self._clients = threading.local()  # the harness client's kept-alive connections
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._dir: Path | None = None
        self.cert_path = Path()
        self.fingerprint = ""

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> PveSim:
        self._stopping.clear()
        self._dir = Path(tempfile.mkdtemp(prefix="pvesim-"))
        self.cert_path, key = make_certificate(self._dir)
        self.fingerprint = fingerprint(self.cert_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key)
        server = _Server((self._host, self._port), _Handler)
        server.sim = self
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="pvesim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PveSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "PveSim is not started"
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        """`https://127.0.0.1:PORT`, what `nestctl --api` takes."""
        return f"https://{self._host}:{self.port}"

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    # -- users and faults --------------------------------------------------------------------------

    def fail(
        self,
        kind: str = "error",
        *,
        status: int = 500,
        message: str = "internal error",
        node: str | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int | None = None,
        seconds: float = 30.0,
    ) -> Fault:
        """Inject a fault: `sim.fail(node="pve2", status=595, message="No route to host")`."""
        if kind not in ("error", "timeout", "malformed", "drop", "delay"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, status, message, node, path, method, times, seconds)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- the request log ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def log(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)

    @contextmanager
    def nonconforming(self) -> Iterator[None]:
        """Requests sent inside this block may break the schema (a test of refusals)."""
        self._exempt += 1
        try:
            yield
        finally:
            self._exempt -= 1

    def conformance_problems(self) -> list[str]:
        """Every schema violation in requests the code under test sent (not the harness's)."""
        return [p for r in self.requests if not r.harness for p in r.problems]

    def assert_conformant(self) -> None:
        problems = self.conformance_problems() + [
            f"pvesim failed (a simulator bug): {e}" for e in self.internal_errors
        ]
        if problems:
            raise AssertionError(
                "requests that Proxmox's API schema refuses:\n  " + "\n  ".join(problems)
            )

    # -- a small client for tests (marked as the harness's, so exempt from conformance) ----------

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        ticket: str | None = None,
        csrf: str | None = None,
        as_json: bool = False,
        harness: bool = True,
        timeout: float = 10.0,
    ) -> Response:
        """One request to /api2/json`path`, as root's token unless told otherwise.

        Connections are kept per thread; one that failed or was closed is not reused.
        """
        headers = {}
        if harness:
            headers[HARNESS_HEADER] = "1"
        if ticket is not None:
            headers["Cookie"] = "PVEAuthCookie=" + urllib.parse.quote(ticket, safe="")
            if csrf is not None:
                headers["CSRFPreventionToken"] = csrf
        elif token != "":
            headers["Authorization"] = f"PVEAPIToken={token or self.root_token}"
        items = list((params or {}).items())
        url = "/api2/json" + path
        body = None
        if method in ("GET", "DELETE"):
            if items:
                url += "?" + urllib.parse.urlencode(items, doseq=True)
        elif as_json:
            body = json.dumps(dict(items)).encode()
            headers["Content-Type"] = "application/json"
        else:
            body = urllib.parse.urlencode(items, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn: http.client.HTTPSConnection | None = getattr(self._clients, "conn", None)
        if conn is None:
            context = ssl.create_default_context(cafile=str(self.cert_path))
            conn = http.client.HTTPSConnection(self._host, self.port, context=context)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        self._clients.conn = None
        try:
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
            out = Response(resp.status, resp.reason, resp.read(), dict(resp.getheaders()))
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._clients.conn = conn
        return out

    def login(self, username: str = "root@pam", password: str = ROOT_PASSWORD) -> tuple[str, str]:
        """(ticket, CSRF token) for a user, through POST /access/ticket."""
        resp = self.request(
            "POST", "/access/ticket", {"username": username, "password": password}, token=""
        )
        data = resp.data
        return data["ticket"], data["CSRFPreventionToken"]

    def wait_task(self, node: str, upid: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.request(
                "GET", f"/nodes/{node}/tasks/{urllib.parse.quote(upid)}/status"
            ).data
            if status["status"] == "stopped" or time.monotonic() > deadline:
                return status  # type: ignore[no-any-return]
            time.sleep(0.02)

    # -- serving ---------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str, bytes, dict[str, str]] | Fault:
        """One request: (status, reason, body, extra headers), or a Fault the handler acts out."""
        with self._log_lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return self._handle(method, raw_path, headers, body)
        finally:
            with self._log_lock:
                self._in_flight -= 1

    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str, bytes, dict[str, str]] | Fault:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        split = urllib.parse.urlsplit(raw_path)
        if not split.path.startswith("/api2/json/"):
            return self._error(ApiError(501, f"Method '{method} {split.path}' not implemented"))
        path = urllib.parse.unquote(split.path[len("/api2/json") :].rstrip("/") or "/")
        params = _params(split.query, headers, body)
        harness = headers.get(HARNESS_HEADER) == "1" or self._exempt > 0
        route = self.schema.route(method, path)
        record = _Recorder(method, path, params, route, harness)
        if route is None:
            record.problems.append(f"{method} {path}: no such path or method in the schema")
            record.finish(self, 501)
            return self._error(ApiError(501, f"Method '{method} {path}' not implemented"))
        merged: dict[str, Param] = {**params, **route.uri_params}
        schema_errors = {
            **validate(route, merged),
            **{
                k: "duplicate parameter (already defined in URI)"
                for k in params
                if k in route.uri_params and params[k] != route.uri_params[k]
            },
        }
        record.add(schema_errors)
        try:
            result = self._serve(method, path, route, headers, merged, schema_errors, record)
        except AuthError as err:
            record.finish(self, 401)
            if self.auth_failure_delay:
                time.sleep(self.auth_failure_delay)
            body_out = b"" if err.empty_body else self._error_body(err.reason, None)
            return 401, err.reason, body_out, {}
        except ApiError as err:
            if err.status == 400:  # refusals a handler makes (pve-firewall's verify_rule...)
                record.add({k: v for k, v in (err.errors or {}).items() if k not in schema_errors})
            record.finish(self, err.status)
            return self._error(err)
        except Exception as err:  # noqa: BLE001 - a simulator bug: answer, and fail the test
            self.internal_errors.append(f"{method} {path}: {type(err).__name__}: {err}")
            record.finish(self, 500)
            return self._error(ApiError(500, f"pvesim internal error: {err}"))
        if isinstance(result, Fault):
            record.finish(self, 0)
            return result
        record.finish(self, 200)
        if isinstance(result, Extra):
            payload = {"data": result.data, **result.extra}
        else:
            payload = {"data": result}
        return 200, "OK", json.dumps(payload).encode(), {}

    def _serve(
        self,
        method: str,
        path: str,
        route: Route,
        headers: Mapping[str, str],
        params: dict[str, Param],
        schema_errors: Mapping[str, str],
        record: _Recorder,
    ) -> Any:
        """The steps after routing, in pve-http-server's order; raises AuthError or ApiError."""
        who = self._authenticate(method, route, headers)
        record.identity = who.name if who else None
        self._check_permission(route, who, params)
        node_name = route.uri_params.get("node")
        for fault in self.faults:
            if fault.matches(method, path, node_name):
                fault.hits += 1
                if fault.kind == "delay":
                    time.sleep(fault.seconds)
                    continue
                if fault.kind == "error":
                    raise ApiError(fault.status, fault.message)
                return fault
        self.cluster.tick()
        node = self.cluster.nodes.get(node_name or "")
        if route.proxyto == "node" and node is not None and not node.online:
            raise ApiError(595, "No route to host")
        if schema_errors:
            raise ApiError(400, "Parameter verification failed.", schema_errors)
        if route.template == "/access/ticket":
            return self._ticket(method, params)
        handler = HANDLERS.get((method, route.template))
        if handler is None or who is None:
            raise ApiError(501, f"Method '{method} {path}' not implemented (not simulated)")
        ctx = Ctx(route, params, who, self.users, self.cluster, self.schema, self.fingerprint)
        with self.cluster.lock:
            return handler(ctx)

    def _authenticate(
        self, method: str, route: Route, headers: Mapping[str, str]
    ) -> Identity | None:
        if route.permissions.get("user") == "world":
            return None
        auth = headers.get("Authorization", "")
        if auth.startswith("PVEAPIToken"):
            if not route.spec.get("allowtoken", 1):
                raise AuthError("API tokens are not allowed for this method")
            return self.users.from_token_header(auth)
        ticket = _cookie(headers.get("Cookie", ""), "PVEAuthCookie")
        if ticket is None:
            raise AuthError("No ticket")
        who = self.users.from_ticket(ticket)
        if method != "GET" and headers.get("CSRFPreventionToken") != who.csrf:
            raise AuthError("Permission denied - invalid csrf token")
        return who

    def _check_permission(
        self, route: Route, who: Identity | None, params: Mapping[str, Param]
    ) -> None:
        perms = route.permissions
        if who is None or perms.get("user") in ("all", "world"):
            return
        check = perms.get("check")
        if not check:
            if who.userid != "root@pam":
                raise ApiError(403, "Permission check failed (user != root@pam)")
            return
        if check[0] != "perm":
            return
        path = re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), "")), check[1])
        privs = list(check[2])
        node = self.cluster.nodes.get(str(params.get("node", "")))
        if "/agent" in route.template and node is not None and node.major_minor < (9, 0):
            privs = ["VM.Monitor"]  # the VM.GuestAgent.* privileges came with PVE 9
        have = self.users.privileges(who, path)
        if len(check) > 3 and check[3] == "any":
            if not have & set(privs):
                raise ApiError(403, f"Permission check failed ({path}, {'|'.join(privs)})")
            return
        for priv in privs:
            if priv not in have:
                raise ApiError(403, f"Permission check failed ({path}, {priv})")

    def _ticket(self, method: str, params: Mapping[str, Param]) -> Any:
        if method == "GET":
            return None

        def text(name: str) -> str | None:
            value = params.get(name)
            return value[-1] if isinstance(value, list) else value

        username, password = text("username") or "", text("password") or ""
        challenge = text("tfa-challenge")
        if challenge is not None:
            return self.users.finish_tfa(username, challenge, password)
        return self.users.login(username, password, text("realm"), text("otp"))

    def _error_body(self, message: str, errors: Mapping[str, str] | None) -> bytes:
        payload: dict[str, Any] = {"data": None}
        if errors is not None:
            payload["errors"] = dict(errors)
        if not self.old_server:
            payload["message"] = message if message.endswith("\n") else message + "\n"
        return json.dumps(payload).encode()

    def _error(self, err: ApiError) -> tuple[int, str, bytes, dict[str, str]]:
        return err.status, err.message, self._error_body(err.message, err.errors), {}


class _Recorder:
    """Collects what the log keeps about one request while it is served."""

    def __init__(
        self,
        method: str,
        path: str,
        params: Mapping[str, Param],
        route: Route | None,
        harness: bool,
    ) -> None:
        self.method, self.path, self.params, self.route, self.harness = (
            method,
            path,
            params,
            route,
            harness,
        )
        self.identity: str | None = None
        self.problems: list[str] = []

    def add(self, errors: Mapping[str, str]) -> None:
        self.problems += [
            f"{self.method} {self.path}: parameter '{k}': {v.strip()}" for k, v in errors.items()
        ]

    def finish(self, sim: PveSim, status: int) -> None:
        template = self.route.template if self.route else None
        params = {k: "<redacted>" if k in _SECRETS else v for k, v in self.params.items()}
        sim.log(
            RequestRecord(
                self.method,
                self.path,
                params,
                template,
                self.identity,
                status,
                tuple(self.problems),
                self.harness,
            )
        )


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return urllib.parse.unquote(value)
    return None


def _params(query: str, headers: Mapping[str, str], body: bytes) -> dict[str, Param]:
    """Query string and body (form-encoded or JSON) as pve-http-server merges them."""
    out: dict[str, Param] = {}
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    ctype = headers.get("Content-Type", "")
    if body and "application/json" in ctype:
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = {}
        for key, value in decoded.items() if isinstance(decoded, dict) else []:
            if isinstance(value, list):
                out[key] = [_scalar(v) for v in value]
            else:
                out[key] = _scalar(value)
    elif body:
        pairs += urllib.parse.parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = [*(prev if isinstance(prev, list) else [prev]), value]
        else:
            out[key] = value
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else json.dumps(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: PveSim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pveproxy: clients reuse connections
    disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is PveSim.requests

    def _serve(self) -> None:
        sim = self.server.sim
        if (
            self.command == "GET"
            and self.headers.get("Upgrade", "").lower() == "websocket"
            and self.path.split("?", 1)[0].endswith("websocket")
        ):
            outcome = api_console.serve_upgrade(self, sim)  # None: upgraded and served
            if outcome is None:
                return
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            outcome = sim.handle(self.command, self.path, dict(self.headers.items()), body)
        if isinstance(outcome, Fault):
            self._act_out(outcome)
            return
        status, reason, payload, extra = outcome
        self.send_response(status, _reason(reason))
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _act_out(self, fault: Fault) -> None:
        self.close_connection = True
        if fault.kind == "timeout":
            self.server.sim.stopping.wait(fault.seconds)
            return
        if fault.kind == "malformed":
            payload = b'{"data": [{"vmid": 100, "status": "runn'
            self.send_response(200, "OK")
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        # drop: close without a word

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's names

    def version_string(self) -> str:
        return "pve-api-daemon/3.0"


def _reason(message: str) -> str:
    """The HTTP reason phrase: one line, as pve-http-server sends the message."""
    line = message.strip().replace("\r", " ").replace("\n", " ") or "Error"
    return line.encode().decode("latin-1")  # UTF-8 bytes on the wire, as Perl sends them


@contextmanager
def running(cluster: Cluster | Path | str, **kwargs: Any) -> Iterator[PveSim]:
    sim = PveSim(cluster, **kwargs)
    with sim:
        yield sim
