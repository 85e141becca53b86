"""Issue 17: the dashboard as an attacker tried it. Each test reproduces one attack and fails
on the code before the fix (a process-wide pin, a limit counted after Proxmox answered, no
header timeout, unbounded pre-login sessions, refreshes for made-up VMs, any Host, one bad
cookie hiding ours, bare 500s)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from nestctl.web.app import create_app
from nestctl.web.backend import Login, PveConnector
from nestctl.web.engine import tree_builder
from nestctl.web.settings import ServeSettings, TargetSpec
from tests.pvesim import PveSim
from tests.web.conftest import ALICE, BASE, LAB, csrf_of, login, settings_for, token, wait_for
from tests.web.serve_process import start_serve, stop_serve

WRONG_FP = ":".join(["AB"] * 32)


@pytest.fixture
def attacker() -> Iterator[PveSim]:
    """A second simulator with its own certificate: the man in the middle."""
    with PveSim(LAB) as s:
        yield s


def _post_login(client: TestClient, csrf: str, username: str, password: str) -> Any:
    data = {"csrf": csrf, "username": username, "password": password, "target": "lab"}
    return client.post("/login", data=data, follow_redirects=False)


def _ticket_requests(sim: PveSim) -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path == "/access/ticket")


# --- 1. certificate trust per visitor -------------------------------------------------------


def test_one_visitors_certificate_trust_is_never_the_next_visitors(make_client, sim, attacker):
    # The target has no fingerprint in the config; the attacker answers at its address.
    client = make_client(ServeSettings([TargetSpec("lab", attacker.url, None)]))
    r = login(client, *token(attacker))
    assert attacker.fingerprint in r.text
    r = client.post(
        "/trust",
        data={"csrf": csrf_of(r.text), "target": "lab", "fingerprint": attacker.fingerprint},
    )
    r = _post_login(client, csrf_of(r.text), *token(attacker))
    assert r.status_code == 303  # a login to the attacker's own server proves nothing

    # The next visitor, in a fresh browser: asked to compare again, their password stays here.
    client.cookies.clear()
    attacker.clear_requests()
    r = login(client, *ALICE)
    assert r.status_code == 200
    assert attacker.fingerprint in r.text  # the prompt, showing a fingerprint that is not
    assert attacker.fingerprint != sim.fingerprint  # ...the real server's
    assert _ticket_requests(attacker) == 0
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("how", ["pinned", "ca"])
def test_trust_is_refused_where_the_config_decides(make_client, sim, how):
    if how == "pinned":
        spec = TargetSpec("lab", sim.url, sim.fingerprint)
    else:
        spec = TargetSpec("lab", sim.url, None, ca_file=str(sim.cert_path))
    client = make_client(ServeSettings([spec]))
    page = client.get("/login")
    r = client.post(
        "/trust", data={"csrf": csrf_of(page.text), "target": "lab", "fingerprint": WRONG_FP}
    )
    assert r.status_code == 403
    assert "cannot be overridden" in r.text
    assert client.app.state.web.sessions.all() == []  # and no session was made for it


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        ("zz" * 32, False),
        ("AB:" * 31 + "A", False),
        ("AB" * 31, False),
        ("ab" * 32, True),
        (" " + ":".join(["ab"] * 32) + " ", True),
    ],
)
def test_a_confirmed_fingerprint_is_64_hex_digits(make_client, sim, given, ok):
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, None)]))
    page = client.get("/login")
    r = client.post(
        "/trust", data={"csrf": csrf_of(page.text), "target": "lab", "fingerprint": given}
    )
    if not ok:
        assert r.status_code == 400
        assert "64 hex digits" in r.text
        return
    assert r.status_code == 200
    assert ":".join(["AB"] * 32) in r.text
    # The login that follows is refused as a mismatch (never a 500).
    r = _post_login(client, csrf_of(r.text), *token(sim))
    assert r.status_code == 401
    assert "does not match" in r.text


# --- 2. login attempts reserved before Proxmox is asked ---------------------------------------


def test_forty_parallel_wrong_logins_reach_proxmox_at_most_n_times(sim, tmp_path: Path):
    sim.auth_failure_delay = 0.2  # Proxmox is slow to say no: the burst overlaps
    proc, url = start_serve(sim, tmp_path / "serve.log")
    try:
        page = requests.get(f"{url}/login", timeout=10)
        nonce = page.cookies["nestctl_login"]
        target = re.search(r'name="target" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        sim.clear_requests()
        barrier = threading.Barrier(40)

        def attempt(i: int) -> int:
            data = {"csrf": nonce, "username": ALICE[0], "password": f"wrong-{i}", "target": target}
            barrier.wait()
            r = requests.post(
                f"{url}/login",
                data=data,
                cookies={"nestctl_login": nonce},
                allow_redirects=False,
                timeout=60,
            )
            return r.status_code

        with ThreadPoolExecutor(40) as pool:
            statuses = list(pool.map(attempt, range(40)))
        assert _ticket_requests(sim) <= 5  # the default limit, however many came at once
        assert statuses.count(401) <= 5
        assert statuses.count(429) >= 35
    finally:
        stop_serve(proc)


def test_a_locked_out_user_does_not_lock_out_others_from_that_client(make_client, sim):
    client = make_client(settings_for(sim, login_attempts=3))
    for _ in range(3):
        assert login(client, ALICE[0], "wrong").status_code == 401
    assert login(client, *ALICE).status_code == 429
    # Behind a tunnel everyone is this one client: another user still logs in.
    assert login(client, *token(sim)).status_code == 303


# --- 3. bounded resources -------------------------------------------------------------------


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_slow_clients_are_cut_off_and_capped(sim, tmp_path: Path):
    proc, url = start_serve(
        sim, tmp_path / "serve.log", extra=["--max-connections", "20", "--header-timeout", "1"]
    )
    port = int(url.rsplit(":", 1)[1])
    socks: list[socket.socket] = []
    try:
        before = _open_fds(proc.pid)

        def slow(count: int) -> None:
            for _ in range(count):  # headers begun, never finished
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)

        slow(10)
        r = requests.get(f"{url}/login", timeout=10)  # served beside them
        assert r.status_code == 200
        slow(30)
        time.sleep(0.3)
        assert _open_fds(proc.pid) <= before + 20 + 2  # the rest were closed at once
        # Every slow connection is closed by the server (EOF), not held for minutes.
        for s in socks:
            s.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""
        r = requests.get(f"{url}/login", timeout=10)  # a normal visitor is served again
        assert r.status_code == 200
    finally:
        for s in socks:
            s.close()
        stop_serve(proc)


def test_pre_login_sessions_are_capped_per_client(make_client, sim):
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, None)]))
    nonce = client.get("/login").cookies["nestctl_login"]
    for _ in range(60):  # each a fresh "browser" holding only the freely given nonce
        client.cookies.clear()
        client.cookies.set("nestctl_login", nonce)
        r = client.post(
            "/trust", data={"csrf": nonce, "target": "lab", "fingerprint": sim.fingerprint}
        )
        assert r.status_code == 200
    assert len(client.app.state.web.sessions.all()) <= 8


def test_made_up_vms_are_answered_locally_and_never_refreshed(client, sim):
    login(client, *token(sim))
    wait_for(client, "/", "pve1")
    assert client.get("/t/lab/vm/pve1/101").status_code == 200
    sim.clear_requests()
    urls = [f"/t/lab/vm/pve1/{n}" for n in range(9000, 9050)]
    urls += ["/t/lab/vm/pve2/101"]  # a real VM on the wrong node
    urls += ["/t/lab/vm/pve1/99", "/t/lab/vm/pve1/1000000000", "/t/lab/vm/pve1/" + "9" * 5000]
    urls += ["/t/lab/vm/-bad-/101", "/t/lab/vm/a_b/101", "/t/lab/node/" + "n" * 64]
    urls += ["/t/lab/ct/pve1/99", "/t/lab/ct/a_b/200", "/t/lab/vmid/1000000000/console"]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 404, url
        assert "Traceback" not in r.text
    time.sleep(0.5)  # a refresh started for any of them would have asked by now
    asked = [r.path for r in sim.requests if "/qemu/90" in r.path or "/pve2/qemu/101" in r.path]
    assert asked == []


# --- 4. Host allow-list ---------------------------------------------------------------------


def test_a_foreign_host_is_refused_before_any_page(client, sim):
    page = client.get("/login")
    csrf = csrf_of(page.text)
    sim.clear_requests()
    r = client.post(
        "/login",
        data={"csrf": csrf, "username": ALICE[0], "password": ALICE[1], "target": "lab"},
        headers={"host": "evil.example:8765", "origin": "http://evil.example:8765"},
    )
    assert r.status_code == 421
    assert "--allowed-host evil.example" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert sim.requests == []
    assert client.get("/healthz", headers={"host": "evil.example"}).status_code == 421


def test_allowed_hosts():
    from nestctl.web.settings import host_problem  # noqa: PLC0415 - one import per test here

    assert host_problem("127.0.0.1:8765", "127.0.0.1", []) is None
    assert host_problem("localhost:8765", "127.0.0.1", []) is None
    assert host_problem("[::1]:8765", "::1", []) is None
    assert host_problem("dash.example.org", "0.0.0.0", ["Dash.Example.org"]) is None
    assert host_problem("192.0.2.7:8765", "0.0.0.0", []) is None  # an IP cannot be rebound
    assert host_problem("192.0.2.7", "192.0.2.8", []) is not None
    assert host_problem("localhost", "0.0.0.0", []) is not None
    assert host_problem("evil.example", "127.0.0.1", []) is not None
    assert host_problem(None, "127.0.0.1", []) is not None


def test_allowed_host_option_admits_that_name(make_client, sim):
    client = make_client(settings_for(sim, allowed_hosts=["dash.example"]))
    assert client.get("/login", headers={"host": "dash.example:8765"}).status_code == 200


# --- 5. cookies -----------------------------------------------------------------------------


def test_a_malformed_foreign_cookie_never_hides_ours(client, sim):
    login(client, *token(sim))
    sid = client.cookies.get("nestctl_session")
    client.cookies.clear()
    header = f'zz=a b; nestctl_session={sid}; x="unterminated; y=\\q'
    r = client.get("/", headers={"cookie": header}, follow_redirects=False)
    assert r.status_code == 200


# --- 6. headers on errors, no internal text -------------------------------------------------


class BrokenConnector:
    def login(self, *_args: Any) -> Login:
        msg = "secret internal detail /etc/nestctl"
        raise RuntimeError(msg)


def test_an_internal_error_has_the_headers_and_no_text_of_the_exception(sim):
    app = create_app(settings_for(sim), BrokenConnector(), tree_builder())
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        r = login(client, "root@pam", "x")
    assert r.status_code == 500
    assert "secret internal detail" not in r.text
    assert "Traceback" not in r.text
    assert "internal error" in r.text
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert name in r.headers
    assert r.headers["cache-control"] == "no-store"


def test_not_found_pages_have_the_headers(client, sim):
    login(client, *token(sim))
    for url in ("/nope", "/t/lab/vm/pve1/" + "1" * 5000, "/static/nope.js"):
        r = client.get(url)
        assert r.status_code == 404
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_a_bug_in_a_scan_shows_one_sentence_not_its_text(sim, caplog):
    def broken_tree(_api: Any, _target: Any) -> Any:
        raise KeyError("secret-internal-key")

    app = create_app(settings_for(sim), PveConnector(timeout=5), broken_tree)
    with TestClient(app, base_url=BASE) as client:
        login(client, *token(sim))
        html = wait_for(client, "/tree", "Something went wrong inside nestctl")
    assert "secret-internal-key" not in html
    assert "KeyError" not in html
    assert "secret-internal-key" in caplog.text  # the log has it, for the admin


def test_a_ca_verified_target_offers_no_trust_button(make_client, sim, tmp_path):
    other_ca = tmp_path / "ca.pem"
    with PveSim(LAB) as other:  # a CA bundle that does not vouch for sim's certificate
        other_ca.write_bytes(other.cert_path.read_bytes())
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, None, ca_file=str(other_ca))]))
    sim.clear_requests()
    r = login(client, *token(sim))
    assert r.status_code == 401
    assert sim.fingerprint not in r.text
    assert 'action="/trust"' not in r.text
    assert sim.requests == []


def test_a_visitor_keeps_a_bounded_number_of_views_refreshing(make_client, sim):
    client = make_client(settings_for(sim, refresh_per_visitor=2))
    login(client, *token(sim))
    wait_for(client, "/", "epyc-nested")
    for vmid in (101, 102, 103, 104):
        assert client.get(f"/t/lab/vm/pve1/{vmid}").status_code == 200
    vm_keys = [k for k in client.app.state.web.cache.live_keys() if k[1] == "vm"]
    assert sorted(k[-1] for k in vm_keys) == ["103", "104"]  # the two most recent


def _ws_app() -> Any:
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.middleware import Middleware  # noqa: PLC0415
    from starlette.routing import WebSocketRoute  # noqa: PLC0415
    from starlette.websockets import WebSocket  # noqa: PLC0415

    from nestctl.web.security import SecurityMiddleware  # noqa: PLC0415
    from nestctl.web.sessions import SessionStore  # noqa: PLC0415

    async def hello(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hi")
        await ws.close()

    store = SessionStore(60.0, 60.0)
    return Starlette(
        routes=[WebSocketRoute("/ws", hello)],
        middleware=[Middleware(SecurityMiddleware, store=store, tls=False)],
    )


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"origin": "http://127.0.0.1:8765"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"host": "evil.example:8765", "origin": "http://evil.example:8765"}, False),
    ],
)
def test_websockets_pass_the_host_and_origin_checks(headers, ok):
    from starlette.websockets import WebSocketDisconnect  # noqa: PLC0415

    with TestClient(_ws_app(), base_url=BASE) as client:
        if ok:
            with client.websocket_connect("ws://127.0.0.1:8765/ws", headers=headers) as ws:
                assert ws.receive_text() == "hi"
            return
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("ws://127.0.0.1:8765/ws", headers=headers) as ws,
        ):
            ws.receive_text()
        assert refused.value.code == 1008


def test_the_header_deadline_never_cuts_an_upgraded_websocket(tmp_path: Path):
    import asyncio  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import WebSocketRoute  # noqa: PLC0415
    from starlette.websockets import WebSocket  # noqa: PLC0415

    from nestctl.web.server import bounded_protocol  # noqa: PLC0415
    from tests.web.serve_process import free_port  # noqa: PLC0415

    async def late(ws: WebSocket) -> None:
        await ws.accept()
        await asyncio.sleep(1.5)  # three header deadlines
        await ws.send_text("late")
        await ws.close()

    port = free_port()
    app = Starlette(routes=[WebSocketRoute("/ws", late)])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=bounded_protocol(0.5, 10), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            got = b""
            while b"late" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        assert got.startswith(b"HTTP/1.1 101")
        assert b"late" in got
    finally:
        server.should_exit = True
        thread.join(10)


def test_polling_an_unknown_view_is_not_answered_at_once():
    import asyncio  # noqa: PLC0415

    from nestctl.web.cache import Refresher  # noqa: PLC0415

    async def poll() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        version = await Refresher(10.0).wait_change(("sid", "vm", "lab", "pve1", "999"), 0, 0.3)
        return version, loop.time() - start

    # In a thread of its own: Playwright's sync API (browser tests) keeps a loop running here.
    with ThreadPoolExecutor(1) as pool:
        version, waited = pool.submit(asyncio.run, poll()).result()
    assert version == 0
    assert waited >= 0.25  # a page's long poll waits, it does not spin


def test_certificate_and_network_failures_read_as_one_plain_sentence(make_client, sim):
    client = make_client(ServeSettings([TargetSpec("lab", sim.url, None)]))
    r = login(client, *token(sim))
    assert "certificate is not trusted" in r.text
    for library_text in ("HTTPSConnectionPool", "SSLError", "_ssl.c", "Max retries"):
        assert library_text not in r.text
    port = sim.port
    sim.stop()  # nothing listens there now
    client = make_client(ServeSettings([TargetSpec("lab", f"https://127.0.0.1:{port}", WRONG_FP)]))
    r = login(client, *token(sim))
    assert "could not reach the Proxmox API" in r.text
    assert "HTTPSConnectionPool" not in r.text
    assert "Errno" not in r.text


def _post_from(source: str, url: str, nonce: str, target: str, user: str, password: str) -> int:
    """POST /login from loopback address `source` (127.0.0.2 is another client than .1)."""
    import http.client  # noqa: PLC0415
    import urllib.parse  # noqa: PLC0415

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0))
    body = urllib.parse.urlencode(
        {"csrf": nonce, "username": user, "password": password, "target": target}
    )
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "cookie": f"nestctl_login={nonce}",
    }
    try:
        conn.request("POST", "/login", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_nobody_elsewhere_can_lock_the_owner_out(sim, tmp_path: Path):
    from tests.pvesim import ROOT_PASSWORD  # noqa: PLC0415

    proc, url = start_serve(sim, tmp_path / "serve.log")
    try:
        page = requests.get(f"{url}/login", timeout=10)
        nonce = page.cookies["nestctl_login"]
        found = re.search(r'name="target" value="([^"]+)"', page.text)
        assert found
        target = found.group(1)
        # An attacker at 127.0.0.2 spends root@pam's budget there...
        tries = [
            _post_from("127.0.0.2", url, nonce, target, "root@pam", f"guess{i}") for i in range(6)
        ]
        assert tries == [401] * 5 + [429]
        # ...and the owner at 127.0.0.1 still logs in.
        assert _post_from("127.0.0.1", url, nonce, target, "root@pam", ROOT_PASSWORD) == 303
    finally:
        stop_serve(proc)
