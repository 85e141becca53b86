"""The events page on a phone (390x844) in Debian's Chromium: `nestctl serve` reads the state
file `nestctl watch` keeps (named by the config file's [watch]); acknowledging from the phone is
written to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nestctl.findings import Severity
from nestctl.watch.engine import Timing, step
from nestctl.watch.events import Evaluation, Event
from nestctl.watch.paths import SEP
from nestctl.watch.state import StateStore
from tests.pvesim import PveSim
from tests.web.browser.test_dashboard import log_in, shot, token_login
from tests.web.serve_process import REPO, free_port, stop_serve

KEY = "vm.stopped:inner:pve-inner:1002"


def events() -> list[Event]:
    return [
        Event(KEY, "vm.stopped", Severity.ERROR, "inner",
              f"api/pve1{SEP}VM 101{SEP}pve-inner{SEP}VM 1002",
              "VM 1002 (l2-guest) stopped with no stop, shutdown or migrate task (a crash, the "
              "OOM killer, or a shutdown from inside)",
              "look at `journalctl -u qemu-server@1002` and the node's kernel log, then "
              "`qm start 1002`", page="/t/api/vm/pve1/101"),
        Event("storage.full:api:pve1:local", "storage.full", Severity.WARNING, "api",
              f"api/pve1{SEP}storage local", "storage local is 93% full",
              "free space on local (old backups, unused disks) or grow it",
              page="/t/api/node/pve1"),
    ]  # fmt: skip


@pytest.fixture
def watch_server(sim: PveSim, artifacts: Path, tmp_path: Path) -> Iterator[tuple[str, StateStore]]:
    store = StateStore(str(tmp_path / "watch.json"))
    with store.edit() as state:
        step(state.records, Evaluation(events()), Timing(hold_down=0), time.time() - 1800)
    config = tmp_path / "xdg" / "nestctl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[watch]\nstate_file = "{store.path}"\n[[watch.route]]\nurls = ["json://127.0.0.1:9/"]\n'
    )
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    argv = [sys.executable, "-m", "nestctl", "serve", "--listen", f"127.0.0.1:{port}"]
    argv += ["--api", sim.url, "--fingerprint", sim.fingerprint]
    with (artifacts / "serve-events.log").open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                break
        except OSError:
            assert proc.poll() is None, "serve did not start"
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
    yield url, store
    stop_serve(proc)


def test_acknowledge_an_event_from_the_phone(
    browser: Any, watch_server: tuple[str, StateStore], sim: PveSim, artifacts: Path
) -> None:
    server, store = watch_server
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
        device_scale_factor=2,
    )  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, server, *token_login(sim))
        page.click("a.nav:has-text('Events')")
        page.wait_for_url(f"{server}/events")
        page.wait_for_selector("text=VM 1002 (l2-guest) stopped")
        for button in page.locator(".event button, .event .button, a.nav").all():
            box = button.bounding_box()
            assert box["width"] >= 44, button.inner_text()
            assert box["height"] >= 44, button.inner_text()
        size = page.evaluate("() => getComputedStyle(document.querySelector('.event')).fontSize")
        assert size == "16px"
        shot(page, artifacts, "events", "phone")
        page.locator("li.event", has_text="VM 1002").locator("button:has-text('Acknowledge')").tap()
        page.wait_for_selector("li.event:has-text('VM 1002') >> text=acknowledged")
        assert store.load().records[KEY]["acked"]
        shot(page, artifacts, "events-acked", "phone")
    finally:
        context.close()
