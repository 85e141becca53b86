"""The dashboard in-process (Starlette's test client) against the Proxmox API simulator.

Every test's simulator is checked at the end: each request the dashboard sent exists in Proxmox's
schema with valid parameters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from nestctl.web.app import create_app
from nestctl.web.backend import PveConnector
from nestctl.web.engine import tree_builder
from nestctl.web.settings import ServeSettings, TargetSpec
from tests.pvesim import PveSim

LAB = Path(__file__).resolve().parents[1] / "data" / "clusters" / "lab"
BASE = "http://127.0.0.1:8765"
ALICE = ("alice@pve", "alice-password")  # a PVEAuditor: may look, may not act


@pytest.fixture
def sim() -> Iterator[PveSim]:
    with PveSim(LAB) as s:
        s.cluster.task_seconds = 0.2
        s.add_user(ALICE[0], ALICE[1], privs=["PVEAuditor"])
        yield s
        s.assert_conformant()


def token(sim: PveSim) -> tuple[str, str]:
    """(user name field, password field) for the simulator's root token."""
    userid, _, secret = sim.root_token.partition("=")
    return userid, secret


def settings_for(sim: PveSim, **kw: Any) -> ServeSettings:
    return ServeSettings([TargetSpec("lab", sim.url, sim.fingerprint)], **kw)


@pytest.fixture
def make_client(sim: PveSim) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(settings: ServeSettings | None = None) -> TestClient:
        app = create_app(settings or settings_for(sim), PveConnector(timeout=5), tree_builder())
        client = TestClient(app, base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def login(client: TestClient, username: str, password: str, **extra: str) -> Any:
    page = client.get("/login")
    data = {"csrf": csrf_of(page.text), "username": username, "password": password, "target": "lab"}
    data.update(extra)
    return client.post("/login", data=data, follow_redirects=False)


def wait_for(client: TestClient, url: str, text: str, timeout: float = 30.0) -> str:
    """GET `url` until it shows `text` (the background cache fills after login); fails the
    test when it never does (a wait that cannot fail proves nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url).text
        if text in body:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"{url} never showed {text!r}; last page:\n{body[:2000]}")
        time.sleep(0.05)
