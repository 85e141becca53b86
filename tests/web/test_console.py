"""Consoles in-process: the dashboard's POST + WebSocket against pvesim's termproxy/vncwebsocket,
backed by a real pty running a shell (tests/pvesim/api_console.py)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.pvesim import PveSim
from tests.pvesim.api_console import consoles
from tests.web.conftest import ALICE, BASE, login, token, wait_for

ORIGIN = BASE  # the dashboard's own origin (the test client's base URL)
WS = BASE.replace("http://", "ws://")


def csrf(client: TestClient, url: str) -> str:
    m = re.search(r'data-csrf="([^"]+)"', client.get(url).text)
    assert m, "no console on the page"
    return m.group(1)


def open_console(client: TestClient, page: str, **form: str) -> Any:
    return client.post(
        "/t/lab/console/open", data=form, headers={"X-CSRF-Token": csrf(client, page)}
    )


def read_until(ws: Any, text: bytes, limit: int = 200) -> bytes:
    seen = b""
    for _ in range(limit):
        seen += ws.receive_bytes()
        if text in seen:
            return seen
    raise AssertionError(f"{text!r} not in {seen[-400:]!r}")


def run_async(coro: Any) -> Any:
    """asyncio.run on a thread of its own (Playwright's sync API may hold this thread's loop)."""
    import asyncio as aio  # noqa: PLC0415
    import concurrent.futures  # noqa: PLC0415

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(aio.run, coro).result()


def close_code(ws: Any) -> int:
    """Read until the dashboard closes the socket; its close code."""
    try:
        for _ in range(1000):
            ws.receive_bytes()
    except WebSocketDisconnect as exc:
        return int(exc.code)
    raise AssertionError("never closed")


def node_of(sim: PveSim) -> str:
    return sim.cluster.entry.name


def test_node_shell_runs_a_command_through_termproxy(
    client: TestClient, sim: PveSim, caplog: pytest.LogCaptureFixture
) -> None:
    login(client, *token(sim))
    node = node_of(sim)
    page = f"/t/lab/node/{node}/shell"
    assert "Layer:" in client.get(page).text
    caplog.set_level(logging.INFO, logger="nestctl.web.consoles")
    reply = open_console(client, page, kind="shell", node=node)
    assert reply.status_code == 200, reply.text
    grant = reply.json()
    assert set(grant) == {"ws"}  # no ticket, no port: those stay in the dashboard
    with client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws:
        assert ws.receive_bytes()[:2] == b"OK"
        cmd = "echo nested-$((40+2))\r"
        ws.send_text(f"0:{len(cmd.encode())}:{cmd}")
        ws.send_text("2")  # a ping is skipped
        assert b"nested-42" in read_until(ws, b"nested-42\r\n")
    assert consoles(sim.cluster).opened == [("term", f"/nodes/{node}", "root@pam!pvesim")]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"console opened: root@pam!pvesim node/{node} shell on lab" in logged
    ticket_like = re.compile(r"PVEVNC:|vncticket|PVEAuthCookie")
    assert not ticket_like.search(logged)
    assert not ticket_like.search(json.dumps(grant))


def test_a_grant_is_used_once_and_only_by_its_session(
    client: TestClient, make_client: Any, sim: PveSim
) -> None:
    login(client, *token(sim))
    node = node_of(sim)
    grant = open_console(client, f"/t/lab/node/{node}/shell", kind="shell", node=node).json()
    other = TestClient(client.app, base_url=BASE)  # the same dashboard, another browser
    login(other, *token(sim))
    with (
        pytest.raises(WebSocketDisconnect),
        other.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws,
    ):
        ws.receive_bytes()
    with client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws:
        assert ws.receive_bytes()[:2] == b"OK"
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws,
    ):
        ws.receive_bytes()


def test_websocket_refused_from_a_foreign_origin(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    node = node_of(sim)
    grant = open_console(client, f"/t/lab/node/{node}/shell", kind="shell", node=node).json()
    for origin in ("https://evil.example", None):
        headers = {"Origin": origin} if origin else {}
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(WS + grant["ws"], headers=headers) as ws,
        ):
            ws.receive_bytes()
    assert consoles(sim.cluster).opened == []


def test_websocket_refused_without_a_session(
    client: TestClient, make_client: Any, sim: PveSim
) -> None:
    login(client, *token(sim))
    node = node_of(sim)
    grant = open_console(client, f"/t/lab/node/{node}/shell", kind="shell", node=node).json()
    stranger = TestClient(client.app, base_url=BASE)  # the same dashboard, no login
    with (
        pytest.raises(WebSocketDisconnect),
        stranger.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws,
    ):
        ws.receive_bytes()
    assert consoles(sim.cluster).opened == []


def test_open_needs_csrf(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    node = node_of(sim)
    reply = client.post("/t/lab/console/open", data={"kind": "shell", "node": node})
    assert reply.status_code == 403
    assert consoles(sim.cluster).grants == {}


def test_auditor_without_console_privileges_is_refused(client: TestClient, sim: PveSim) -> None:
    login(client, *ALICE)
    node = node_of(sim)
    vmid = str(next(iter(sim.cluster.entry.vms)))
    shell = open_console(client, f"/t/lab/node/{node}/shell", kind="shell", node=node)
    assert shell.status_code == 403
    assert "Sys.Console" in shell.json()["error"]
    screen = open_console(
        client, f"/t/lab/vm/{node}/{vmid}/console", kind="vnc", node=node, vmid=vmid
    )
    assert screen.status_code == 403, screen.text
    assert "VM.Console" in screen.json()["error"]
    assert consoles(sim.cluster).grants == {}


def test_idle_console_is_closed(make_client: Any, sim: PveSim) -> None:
    from tests.web.conftest import settings_for  # noqa: PLC0415

    client = make_client(settings_for(sim, console_idle=0.3))
    login(client, *token(sim))
    node = node_of(sim)
    grant = open_console(client, f"/t/lab/node/{node}/shell", kind="shell", node=node).json()
    with client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws:
        assert ws.receive_bytes()[:2] == b"OK"
        ws.send_text("2")  # a ping is not input
        assert close_code(ws) == 4408


def test_a_vm_serial_port_without_serial0_closes_and_with_one_gives_a_shell(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    node = node_of(sim)
    vm = sim.cluster.nodes[node].vms[101]
    page = f"/t/lab/vm/{node}/101/serial"
    grant = open_console(client, page, kind="serial", node=node, vmid="101").json()
    with client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws:
        assert close_code(ws) == 1000  # `qm terminal` found no serial0: termproxy closes
    assert consoles(sim.cluster).refused == ["unable to find a serial interface serial0"]
    vm.conf.main["serial0"] = "socket"
    grant = open_console(client, page, kind="serial", node=node, vmid="101").json()
    with client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws:
        assert ws.receive_bytes()[:2] == b"OK"
    assert 'href="/t/lab/vm/pve1/101/serial"' in wait_for(
        client, f"/t/lab/vm/{node}/101", "/101/serial"
    )


def test_vm_and_node_pages_link_their_consoles(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    vm_page = wait_for(client, "/t/lab/vm/pve1/101", "Rules apply")
    assert 'href="/t/lab/vm/pve1/101/console"' in vm_page
    assert "Layer: L1 VM 101 on pve1 (target lab)" in vm_page
    assert 'href="/t/lab/vm/pve1/101/serial"' not in vm_page  # no serial0
    assert 'href="/t/lab/node/pve1/shell"' in client.get("/t/lab/node/pve1").text


def test_an_inner_proxmox_opens_its_vms_consoles_through_its_own_api(
    make_client: Any, sim: PveSim
) -> None:
    from nestctl.web.settings import ServeSettings, TargetSpec  # noqa: PLC0415
    from tests.web.conftest import LAB  # noqa: PLC0415

    with PveSim(LAB) as inner:
        settings = ServeSettings(
            [
                TargetSpec("lab", sim.url, sim.fingerprint),
                TargetSpec("nested", inner.url, inner.fingerprint, parent="lab/101"),
            ]
        )
        client = make_client(settings)
        login(client, *token(sim))
        page = client.get("/login?next=/").text
        from tests.web.conftest import csrf_of  # noqa: PLC0415

        userid, secret = token(inner)
        client.post(
            "/login",
            data={
                "csrf": csrf_of(page),
                "username": userid,
                "password": secret,
                "target": "nested",
            },
        )
        shell = client.get("/t/nested/node/pve1/shell").text
        assert "L1 node pve1 shell (target nested, inside lab VM 101)" in shell
        grant = open_console(client, "/t/nested/node/pve1/shell", kind="shell", node="pve1")
        # the open went to `nested`'s own route: the POST URL names the target
        assert grant.status_code == 403 or grant.status_code == 200
        reply = client.post(
            "/t/nested/console/open",
            data={"kind": "shell", "node": "pve1"},
            headers={"X-CSRF-Token": csrf(client, "/t/nested/node/pve1/shell")},
        ).json()
        with client.websocket_connect(WS + reply["ws"], headers={"Origin": ORIGIN}) as ws:
            assert ws.receive_bytes()[:2] == b"OK"
        assert consoles(inner.cluster).opened == [("term", "/nodes/pve1", "root@pam!pvesim")]
        assert consoles(sim.cluster).opened == []
        vm_page = client.get("/t/nested/vm/pve1/101/console").text
        assert "L2 VM 101 on pve1 (target nested, inside lab VM 101)" in vm_page
        inner.assert_conformant()


def test_the_first_broken_link_links_the_console_of_its_layer(
    client: TestClient, sim: PveSim
) -> None:
    login(client, *token(sim))
    page = wait_for(client, "/t/lab/vm/pve2/201", "First broken link: config")
    assert "First broken link: config" in page
    shell = 'href="/t/lab/node/pve2/shell"'
    assert re.search(r'class="actions broken-consoles"><a class="button secondary" ' + shell, page)


def test_the_websocket_to_proxmox_is_pinned_like_the_api_client(sim: PveSim) -> None:

    from nestctl.web.consoles.upstream import UpstreamError, WebSocketUpstream, WsTarget  # noqa: PLC0415

    wrong = "0" * 64
    target = WsTarget(f"{sim.url}/api2/json/nodes/pve1/vncwebsocket?port=5900", (), wrong, None)
    with pytest.raises(UpstreamError, match="does not match the pinned fingerprint"):
        run_async(WebSocketUpstream.connect(target))
    unpinned = WsTarget(target.url, (), None, None)  # CA verification: self-signed is refused
    with pytest.raises(UpstreamError, match="TLS"):
        run_async(WebSocketUpstream.connect(unpinned))
    assert sim.requests == []  # nothing was sent to either


def test_a_container_console_and_a_missing_container(client: TestClient, sim: PveSim) -> None:
    login(client, *token(sim))
    page = "/t/lab/ct/pve1/150/console"
    assert "L1 container 150 on pve1" in client.get(page).text
    missing = open_console(client, page, kind="lxc", node="pve1", vmid="999")
    assert missing.status_code == 500
    assert missing.json()["error"] == (
        "Proxmox could not open the console: "
        "Configuration file 'nodes/pve1/lxc/999.conf' does not exist."
    )
    grant = open_console(client, page, kind="lxc", node="pve1", vmid="150").json()
    with client.websocket_connect(WS + grant["ws"], headers={"Origin": ORIGIN}) as ws:
        assert ws.receive_bytes()[:2] == b"OK"
    assert consoles(sim.cluster).opened == [("term", "/vms/150", "root@pam!pvesim")]
    stopped = open_console(client, page, kind="lxc", node="pve1", vmid="151").json()
    with client.websocket_connect(WS + stopped["ws"], headers={"Origin": ORIGIN}) as ws:
        assert close_code(ws) == 1000
    assert consoles(sim.cluster).refused == ["CT 151 not running"]


def test_the_websocket_to_proxmox_reads_no_certificate_from_the_environment(
    sim: PveSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API client's rule: SSL_CERT_FILE/SSL_CERT_DIR never decide whom we trust.
    from nestctl.web.consoles.upstream import UpstreamError, WebSocketUpstream, WsTarget  # noqa: PLC0415

    monkeypatch.setenv("SSL_CERT_FILE", str(sim.cert_path))
    monkeypatch.setenv("SSL_CERT_DIR", str(sim.cert_path.parent))
    unpinned = WsTarget(f"{sim.url}/api2/json/nodes/pve1/vncwebsocket?port=5900", (), None, None)
    with pytest.raises(UpstreamError, match="TLS"):
        run_async(WebSocketUpstream.connect(unpinned))
    assert sim.requests == []
