"""Consoles in Debian's Chromium at 390x844: a real QEMU's screen through noVNC, a node's shell
through xterm.js, and the refusals. `nestctl serve` runs as its own process in front of pvesim,
whose vncwebsocket relays to the QEMU's VNC socket and whose termproxy runs a real shell."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nestctl.web.consoles import vendor
from tests.e2e.console_guest import (
    ScreenGuest,
    build_console_guest,
    screendump,
    start_console_guest,
)
from tests.e2e.guest_image import GuestUnavailableError
from tests.e2e.guest_vm import BootFailedError, wait_ready
from tests.e2e.required import give_up
from tests.pvesim import PveSim
from tests.pvesim.api_console import consoles
from tests.web.browser.conftest import VIEWPORTS
from tests.web.browser.test_dashboard import log_in, no_horizontal_scroll, token_login
from tests.web.conftest import ALICE, LAB
from tests.web.serve_process import ServeFailedError, start_serve, stop_serve

VMID = 101  # running on pve1 in the lab cluster
NODE = "pve1"


@pytest.fixture(scope="module")
def screen_guest() -> Iterator[ScreenGuest]:
    try:
        image = build_console_guest()
    except GuestUnavailableError as exc:
        give_up(f"cannot build the e2e guest: {exc}")
        raise
    guest = start_console_guest(image)
    try:
        wait_ready([guest])
    except BootFailedError as exc:
        guest.stop()
        pytest.fail(str(exc))
    yield guest
    guest.stop()


@pytest.fixture(scope="module")
def sim(screen_guest: ScreenGuest) -> Iterator[PveSim]:
    with PveSim(LAB) as s:
        s.add_user(ALICE[0], ALICE[1], privs=["PVEAuditor"])
        consoles(s.cluster).attach_vnc(VMID, screen_guest.vnc_socket, screen_guest.qmp_socket)
        yield s
        consoles(s.cluster).close_all()
        s.assert_conformant()


@pytest.fixture(scope="module")
def server(sim: PveSim, artifacts: Path) -> Iterator[str]:
    if vendor.find().novnc is None or vendor.find().xterm is None:
        give_up("noVNC or xterm.js not installed (apt-get install novnc node-xterm)")
    try:
        proc, url = start_serve(sim, artifacts / "serve-console.log")
    except ServeFailedError as exc:
        pytest.fail(str(exc))
    yield url
    stop_serve(proc)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(**VIEWPORTS["phone"])
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    sockets: list[str] = []
    pg.on("websocket", lambda ws: sockets.append(ws.url))
    pg.sockets = sockets
    yield pg
    context.close()


def wait_js(page: Any, expression: str, timeout: float = 60.0) -> None:
    """Poll a JS expression (page.wait_for_function would eval a string, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        status = page.inner_text("#console-status")
        assert time.monotonic() < deadline, f"never true: {expression} (status: {status})"
        time.sleep(0.1)


def key_bar_fits(page: Any) -> None:
    no_horizontal_scroll(page)
    sizes = page.eval_on_selector_all(
        "#keybar button, #console-paste button",
        "bs => bs.map(b => [b.textContent, b.getBoundingClientRect().width,"
        " b.getBoundingClientRect().height])",
    )
    assert sizes
    small = [s for s in sizes if s[1] < 44 or s[2] < 44]
    assert not small, f"key bar buttons under 44 px: {small}"
    width = page.eval_on_selector("#console", "e => e.getBoundingClientRect().width")
    assert width <= 390


CANVAS_RGB = """() => {
  const c = document.querySelector('#console canvas');
  if (!c || !c.width) { return null; }
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const rgb = new Uint8Array(c.width * c.height * 3);
  for (let i = 0, j = 0; i < d.length; i += 4, j += 3) {
    rgb[j] = d[i]; rgb[j + 1] = d[i + 1]; rgb[j + 2] = d[i + 2];
  }
  let s = '';
  for (let i = 0; i < rgb.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, rgb.subarray(i, i + 0x8000));
  }
  return [c.width, c.height, btoa(s)];
}"""


def same_pixels(a: bytes, b: bytes) -> float:
    px = len(a) // 3
    same = sum(1 for i in range(0, len(a), 3) if a[i : i + 3] == b[i : i + 3])
    return same / px if px else 0.0


def lit(rgb: bytes) -> float:
    px = len(rgb) // 3
    return sum(1 for i in range(0, len(rgb), 3) if any(rgb[i : i + 3])) / px if px else 0.0


def test_vm_screen_shows_the_boot_text_and_takes_keys(
    phone: Any, server: str, sim: PveSim, screen_guest: ScreenGuest, artifacts: Path
) -> None:
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/vm/{NODE}/{VMID}/console")
    assert "L1 VM 101 on pve1" in phone.inner_text("#console-layer")
    wait_js(phone, "window.nestctlConsole && window.nestctlConsole.state === 'connected'")
    # The canvas shows what QEMU's own screendump shows (the boot text, then the shell).
    best = 0.0
    for _ in range(120):
        got = phone.evaluate(CANVAS_RGB)
        w, h, truth = screendump(screen_guest)
        if got and (got[0], got[1]) == (w, h):
            best = same_pixels(base64.b64decode(got[2]), truth)
            if best >= 0.995 and lit(truth) > 0.01:
                break
        time.sleep(0.5)
    assert best >= 0.995, f"the canvas matches QEMU's screendump in only {best:.1%} of pixels"
    key_bar_fits(phone)
    phone.screenshot(path=str(artifacts / "console-vnc-phone.png"))
    # Type a command as keystrokes, finish it with the key bar's Enter: the guest runs it.
    phone.fill("#paste-text", "echo nested-$((40+2)) >/dev/ttyS0")
    phone.click("#console-paste button")
    phone.click('#keybar button[data-key="enter"]')
    deadline = time.monotonic() + 30
    while "nested-42" not in screen_guest.console.read_text(errors="replace"):
        if time.monotonic() > deadline:
            phone.screenshot(path=str(artifacts / "console-vnc-typed-phone.png"))
            pytest.fail("the guest never ran the typed command")
        time.sleep(0.2)
    phone.screenshot(path=str(artifacts / "console-vnc-typed-phone.png"))
    assert consoles(sim.cluster).opened[-1] == ("vnc", f"/vms/{VMID}", "root@pam!pvesim")
    # What a VM reboot does to the screen: Proxmox's vncproxy worker ends, the socket closes.
    # The page asks for a new console by itself and is back on the screen.
    assert phone.evaluate("() => window.nestctlConsole.sockets") == 1
    consoles(sim.cluster).close_all()
    wait_js(phone, "window.nestctlConsole.sockets === 2")
    wait_js(phone, "window.nestctlConsole.state === 'connected'")
    assert len(consoles(sim.cluster).opened) == 2
    # Pinch with two fingers: the screen grows beyond the page (and scrolls); Fit undoes it.
    box = phone.eval_on_selector(
        "#console", "e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width]; }"
    )
    x, y = box[0] + box[2] / 2, box[1] + 100
    cdp = phone.context.new_cdp_session(phone)

    def touch(kind: str, spread: float) -> None:
        points = [{"x": x - spread, "y": y}, {"x": x + spread, "y": y}] if spread else []
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 40)
    touch("touchMove", 80)
    touch("touchMove", 120)
    touch("touchEnd", 0)
    zoomed = phone.eval_on_selector("#console-screen", "e => e.style.width")
    assert zoomed.endswith("%"), zoomed
    assert float(zoomed[:-1]) > 250, zoomed
    phone.screenshot(path=str(artifacts / "console-vnc-zoomed-phone.png"))
    phone.click('#keybar button[data-key="fit"]')
    assert phone.eval_on_selector("#console-screen", "e => e.style.width") == "100%"


def test_node_shell_echoes_through_termproxy(
    phone: Any, server: str, sim: PveSim, artifacts: Path
) -> None:
    log_in(phone, server, *token_login(sim))
    phone.goto(f"{server}/t/api/node/{NODE}/shell")
    wait_js(phone, "window.nestctlConsole && window.nestctlConsole.state === 'connected'")
    phone.click("#console .terminal, #console-screen")
    phone.keyboard.type("echo nested-$((40+2))")
    phone.click('#keybar button[data-key="enter"]')
    wait_js(phone, "window.nestctlConsole.text.includes('nested-42\\r\\n')")
    key_bar_fits(phone)
    phone.screenshot(path=str(artifacts / "console-shell-phone.png"))
    log = (artifacts / "serve-console.log").read_text()
    assert f"console opened: root@pam!pvesim node/{NODE} shell on api (L0 node {NODE}" in log
    assert "PVEVNC" not in log
    assert "vncticket" not in log


@pytest.mark.parametrize(
    ("url", "privilege"),
    [
        (f"/t/api/vm/{NODE}/{VMID}/console", "VM.Console"),
        (f"/t/api/node/{NODE}/shell", "Sys.Console"),
    ],
)
def test_a_visitor_without_the_privilege_sees_403_and_opens_no_socket(
    phone: Any, server: str, sim: PveSim, artifacts: Path, url: str, privilege: str
) -> None:
    log_in(phone, server, *ALICE)
    phone.goto(server + url)
    phone.wait_for_selector(f"#console-status:has-text('{privilege}')")
    assert phone.sockets == []
    assert "may not open this console" in phone.inner_text("#console-status")
    assert not phone.is_visible("#keybar")  # nothing here can work: only the message stays
    phone.screenshot(path=str(artifacts / f"console-refused-{privilege}-phone.png"))


def test_console_pages_need_a_session(phone: Any, server: str) -> None:
    phone.goto(f"{server}/t/api/node/{NODE}/shell")
    assert "/login" in phone.url
    assert phone.sockets == []


def test_an_l2_vm_screen_is_opened_through_the_inner_proxmox(
    sim: PveSim, screen_guest: ScreenGuest
) -> None:
    """Two layers: the dashboard shows `lab` and `nested` (a Proxmox inside lab VM 101). The L2
    VM's screen is asked of `nested`'s own API, and the RFB greeting of the real QEMU comes back
    through it; `lab` is never asked."""
    from starlette.testclient import TestClient  # noqa: PLC0415

    from nestctl.web.app import create_app  # noqa: PLC0415
    from nestctl.web.backend import PveConnector  # noqa: PLC0415
    from nestctl.web.engine import tree_builder  # noqa: PLC0415
    from nestctl.web.settings import ServeSettings, TargetSpec  # noqa: PLC0415
    from tests.web.conftest import BASE, csrf_of  # noqa: PLC0415

    with PveSim(LAB) as inner:
        consoles(inner.cluster).attach_vnc(102, screen_guest.vnc_socket, screen_guest.qmp_socket)
        settings = ServeSettings(
            [
                TargetSpec("lab", sim.url, sim.fingerprint),
                TargetSpec("nested", inner.url, inner.fingerprint, parent=f"lab/{VMID}"),
            ]
        )
        with TestClient(create_app(settings, PveConnector(), tree_builder()), base_url=BASE) as c:
            for target, s in (("lab", sim), ("nested", inner)):
                userid, _, secret = s.root_token.partition("=")
                form = {"username": userid, "password": secret, "target": target}
                c.post("/login", data={"csrf": csrf_of(c.get("/login").text), **form})
            page = c.get("/t/nested/vm/pve1/102/console").text
            assert "L2 VM 102 on pve1 (target nested, inside lab VM 101)" in page
            token = re.search(r'data-csrf="([^"]+)"', page)
            assert token
            before = len(consoles(sim.cluster).opened)
            grant = c.post(
                "/t/nested/console/open",
                data={"kind": "vnc", "node": "pve1", "vmid": "102"},
                headers={"X-CSRF-Token": token.group(1)},
            ).json()
            ws_url = BASE.replace("http", "ws") + grant["ws"]
            with c.websocket_connect(ws_url, headers={"Origin": BASE}) as ws:
                assert ws.receive_bytes().startswith(b"RFB 003.008")
        assert consoles(inner.cluster).opened == [("vnc", "/vms/102", "root@pam!pvesim")]
        assert len(consoles(sim.cluster).opened) == before
        inner.assert_conformant()
