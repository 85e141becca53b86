"""The dashboard's events page: the events `nestctl watch` keeps, acknowledged or silenced from
the phone in the same state file (acknowledging stops the reminders)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from nestctl.findings import Severity
from nestctl.watch.engine import Timing, step
from nestctl.watch.events import Evaluation, Event
from nestctl.watch.paths import SEP
from nestctl.watch.state import StateStore
from tests.pvesim import PveSim
from tests.web.conftest import csrf_of, login, settings_for, token

PATH = f"lab/pve1{SEP}VM 101{SEP}pve-inner{SEP}VM 1002"


def state_with_an_event(path: Path) -> StateStore:
    store = StateStore(str(path))
    event = Event(
        key="vm.stopped:inner:pve-inner:1002",
        code="vm.stopped",
        severity=Severity.ERROR,
        target="inner",
        path=PATH,
        what="VM 1002 stopped with no stop, shutdown or migrate task",
        fix="qm start 1002",
        page="/t/lab/vm/pve1/101",
    )
    with store.edit() as state:
        step(state.records, Evaluation([event]), Timing(hold_down=0), time.time())
    return store


def test_events_acknowledge_and_silence(
    sim: PveSim, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    store = state_with_an_event(tmp_path / "watch.json")
    settings = settings_for(sim)
    settings.extra["watch_state"] = store.path
    client = make_client(settings)
    assert client.get("/events", follow_redirects=False).status_code in (302, 303, 403)
    login(client, *token(sim))
    page = client.get("/events")
    assert page.status_code == 200
    html = page.text
    assert "VM 1002 stopped with no stop" in html
    assert PATH in html
    assert "<code>qm start 1002</code>" in html
    assert 'href="/events"' in html  # the nav link
    assert ">Acknowledge</button>" in html
    csrf = csrf_of(html)
    key = "vm.stopped:inner:pve-inner:1002"
    refused = client.post("/events/ack", data={"key": key}, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token: refused, nothing written
    assert not store.load().records[key].get("acked")
    done = client.post("/events/ack", data={"csrf": csrf, "key": key}, follow_redirects=False)
    assert done.status_code == 303
    assert store.load().records[key]["acked"]
    html = client.get("/events").text
    assert "acknowledged" in html
    assert ">Acknowledge</button>" not in html  # only the actions valid now
    client.post("/events/silence", data={"csrf": csrf, "key": key, "hours": "8"})
    until = store.load().records[key]["silenced_until"]
    assert 8 * 3600 - 60 < until - time.time() <= 8 * 3600
    assert "Unsilence" in client.get("/events").text
    client.post("/events/silence", data={"csrf": csrf, "key": key, "hours": "9999"})
    assert store.load().records[key]["silenced_until"] == until  # not a choice offered
    client.post("/events/unsilence", data={"csrf": csrf, "key": key})
    assert store.load().records[key]["silenced_until"] is None


def test_events_without_watch_and_with_a_broken_state(
    sim: PveSim, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client()
    login(client, *token(sim))
    assert "Alerts are not set up" in client.get("/events").text
    bad = tmp_path / "watch.json"
    bad.write_text("{")
    settings = settings_for(sim)
    settings.extra["watch_state"] = str(bad)
    other = make_client(settings)
    login(other, *token(sim))
    html = other.get("/events").text
    assert "not a readable state file" in html
    assert "Traceback" not in html
