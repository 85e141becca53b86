"""Pure parts of the consoles: layers, the broken link's consoles, idle input, vendor files,
the grant store, local mode's plain TCP stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from nestctl.web.consoles import links, vendor
from nestctl.web.consoles.broker import ConsoleBroker, ConsoleRef, connect_upstream, request_console
from nestctl.web.pages.console import activity, refused_sentence
from nestctl.web.settings import TargetSpec


def run_async(coro: Any) -> Any:
    """asyncio.run on a thread of its own (Playwright's sync API may hold this thread's loop)."""
    import asyncio as aio  # noqa: PLC0415
    import concurrent.futures  # noqa: PLC0415

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(aio.run, coro).result()


TARGETS = [
    TargetSpec("lab", "https://l0:8006"),
    TargetSpec("l1", "https://l1:8006", parent="lab/100"),
    TargetSpec("l2", "https://l2:8006", parent="l1/200"),
]


def test_layers_count_from_the_physical_proxmox() -> None:
    assert [links.depth(TARGETS, t.name) for t in TARGETS] == [0, 1, 2]
    assert links.layer_label(TARGETS, "l2", "vnc", "n", 300).startswith("L3 VM 300 on n")
    assert links.layer_label(TARGETS, "l1", "shell", "pve", None).startswith("L1 node pve shell")
    loop = [TargetSpec("a", "https://a", parent="b/1"), TargetSpec("b", "https://b", parent="a/2")]
    assert links.depth(loop, "a") is None
    assert links.layer_label(loop, "a", "lxc", "n", 5).startswith("container 5 on n")


@pytest.mark.parametrize(
    ("link", "urls"),
    [
        (None, []),
        ("guest", ["/t/l1/vm/n1/200/console"]),
        ("config", ["/t/l1/node/n1/shell"]),
        ("process", ["/t/l1/node/n1/shell"]),
        ("host", ["/t/l1/node/n1/shell", "/t/lab/vmid/100/console"]),
    ],
)
def test_the_broken_link_names_the_console_of_its_layer(link: str | None, urls: list[str]) -> None:
    assert [c.url for c in links.for_broken_link(TARGETS, "l1", "n1", 200, link)] == urls


def test_idle_counts_only_the_visitors_input() -> None:
    assert activity("shell", b"0:1:a")
    assert activity("shell", b"1:80:24:")
    assert not activity("shell", b"2")
    fbur = bytes([3, 1, 0, 0, 0, 0, 2, 208, 1, 144])
    assert not activity("vnc", fbur)
    assert not activity("vnc", fbur * 2)
    assert activity("vnc", bytes([4, 1, 0, 0, 0, 0, 0, 0x61]))  # a key
    assert activity("vnc", fbur + bytes([5, 0, 0, 1, 0, 1]))  # and a pointer move


def test_a_403_becomes_one_sentence() -> None:
    ref = ConsoleRef("lab", "vnc", "pve1", 101)
    text = "POST /x/vncproxy: HTTP 403: Permission check failed (/vms/101, VM.Console)"
    assert refused_sentence("alice@pve", ref, text, None) == (
        "alice@pve may not open this console: it needs VM.Console on /vms/101."
    )
    shell = ConsoleRef("lab", "shell", "pve1")
    assert refused_sentence("bob@pve", shell, "HTTP 403", None) == (
        "bob@pve may not open this console: it needs Sys.Console on /nodes/pve1."
    )


def test_vendor_files_stay_inside_their_package(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "rfb.js").write_text("export default 1;")
    (tmp_path / "secret").write_text("no")
    assert vendor.safe_file(tmp_path / "core", "rfb.js") == (tmp_path / "core" / "rfb.js").resolve()
    for bad in ("../secret", "/etc/passwd", "", ".hidden", "core/../../secret"):
        assert vendor.safe_file(tmp_path / "core", bad) is None
    (tmp_path / "core" / "link.js").symlink_to(tmp_path / "secret")
    assert vendor.safe_file(tmp_path / "core", "link.js") is None


def test_vendor_prefers_proxmox_copies_then_debian(tmp_path: Path) -> None:
    assert vendor.find(tmp_path) == vendor.Vendor(None, None, None)
    deb = tmp_path / "usr/share/novnc/core"
    deb.mkdir(parents=True)
    (deb / "rfb.js").write_text("")
    assert vendor.find(tmp_path).novnc == tmp_path / "usr/share/novnc"
    pve = tmp_path / "usr/share/novnc-pve/core"
    pve.mkdir(parents=True)
    (pve / "rfb.js").write_text("")
    (tmp_path / "usr/share/pve-xtermjs").mkdir(parents=True)
    (tmp_path / "usr/share/pve-xtermjs/xterm.js").write_text("")
    found = vendor.find(tmp_path)
    assert found.novnc == tmp_path / "usr/share/novnc-pve"
    assert found.xterm_kind == "pve"


def test_a_grant_expires_and_belongs_to_one_session() -> None:
    now = [0.0]
    broker = ConsoleBroker(60, clock=lambda: now[0])
    ref = ConsoleRef("lab", "shell", "pve1")
    g = broker.add("s1", "root@pam", ref, lambda: None, b"")
    assert broker.take(g.id, "s2") is None
    now[0] = 31.0
    assert broker.take(g.id, "s1") is None  # expired
    g = broker.add("s1", "root@pam", ref, lambda: None, b"")
    broker.drop_session("s1")
    assert broker.take(g.id, "s1") is None


class FakePvesh:
    """Local mode's API: pvesh as root answers like the API, with no `auth_headers`."""

    userid = "root@pam"

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, params: Any = None) -> Any:
        self.calls.append((method, path, params))
        return {"port": self.port, "ticket": "PVEVNC:T", "user": "root@pam", "upid": "UPID:x"}


def test_local_mode_streams_the_localhost_port_of_the_worker() -> None:
    async def run() -> tuple[bytes, list[tuple[str, str, Any]]]:
        got: list[bytes] = []

        async def termproxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.append(await reader.readline())
            writer.write(b"OK")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(termproxy, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        api = FakePvesh(port)
        ref = ConsoleRef("local", "shell", "pve1")
        _answer, connect, first = await asyncio.to_thread(request_console, api, ref)
        broker = ConsoleBroker(60)
        upstream = await connect_upstream(broker.add("s", "root@pam", ref, connect, first))
        reply = await upstream.read()
        await upstream.close()
        server.close()
        return got[0] + reply, api.calls

    data, calls = run_async(run())
    assert data == b"root@pam:PVEVNC:T\nOK"
    assert calls == [("POST", "/nodes/pve1/termproxy", {})]
