"""Delivery through the real Apprise to loopback receivers: json://, ntfy:// and e-mail. The
receivers check what a phone would show: the layer path, the fix, and no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.findings import Severity
from nestctl.watch.apprise_send import send_apprise
from nestctl.watch.config import Route
from nestctl.watch.delivery import Outcome, deliver
from nestctl.watch.engine import Timing, step
from nestctl.watch.events import Evaluation, Event
from nestctl.watch.messages import Message, Redactor
from nestctl.watch.paths import SEP
from tests.watch.helpers import NOON, config
from tests.watch.receivers import free_port, http_receiver, smtp_receiver

pytest.importorskip("apprise")

TOKEN_SECRET = "4f6c8a55-1d2e-4b7a-9c3d-5e6f7a8b9c0d"
PATH = f"outer/pve1{SEP}VM 101{SEP}pve-inner{SEP}VM 1002"


def event() -> Event:
    return Event(
        key="vm.stopped:inner:pve-inner:1002",
        code="vm.stopped",
        severity=Severity.ERROR,
        target="inner",
        path=PATH,
        what="VM 1002 (l2) stopped with no stop, shutdown or migrate task",
        fix="look at `journalctl -u qemu-server@1002`, then `qm start 1002`",
        # A log line that carries the token (a misbehaving hook script): it must not get out.
        details=(
            f"hook: PVEAPIToken=root@pam!watch={TOKEN_SECRET} refused",
            f"hook: key {TOKEN_SECRET} refused",
        ),
        page="/vm/pve-inner/1002",
        node="pve-inner",
        vmid=1002,
    )


def fire_and_resolve(route: Route) -> list[Outcome]:
    cfg = config(routes=(route,), hold_down=0, clear_hold=0)
    records: dict[str, dict[str, object]] = {}
    rate: dict[str, list[float]] = {}
    redact = Redactor([TOKEN_SECRET, *route.urls])
    outcomes = []
    for now, events in ((NOON, [event()]), (NOON + 30, [])):
        step(records, Evaluation(events), Timing(hold_down=0, clear_hold=0), now)  # type: ignore[arg-type]
        outcomes += deliver(
            records,
            cfg,
            rate,
            send_apprise,
            now=now,
            zone=None,
            redact=redact,  # type: ignore[arg-type]
        )
    return outcomes


def check(got: list[tuple[str, str]], raw: list[bytes], secrets: list[str]) -> None:
    assert len(got) == 2
    (title, body), (rtitle, rbody) = got
    assert title.startswith("✖ VM 1002 (l2) stopped")
    assert f"where: {PATH}" in body
    assert "fix: look at `journalctl -u qemu-server@1002`, then `qm start 1002`" in body
    assert "https://dash.example:8443/vm/pve-inner/1002" in body
    assert rtitle.startswith("✔ resolved: VM 1002 (l2) stopped")
    assert f"where: {PATH}" in rbody
    for secret in secrets:
        assert all(secret.encode() not in r for r in raw), secret


def test_json_webhook() -> None:
    with http_receiver("json") as server:
        url = f"json://watcher:hookpass99@127.0.0.1:{server.server_port}/hook"
        outcomes = fire_and_resolve(Route("hook", urls=(url,)))
        assert [o.ok for o in outcomes] == [True, True]
        assert "hookpass99" not in repr(outcomes)
        check(server.got, server.raw, [TOKEN_SECRET, "hookpass99"])


def test_ntfy() -> None:
    with http_receiver("ntfy") as server:
        url = f"ntfy://127.0.0.1:{server.server_port}/nestctl-alerts"
        outcomes = fire_and_resolve(Route("phone", urls=(url,)))
        assert [o.ok for o in outcomes] == [True, True]
        check(server.got, server.raw, [TOKEN_SECRET])


def test_email() -> None:
    with smtp_receiver() as (box, port):
        url = f"mailto://127.0.0.1:{port}?from=watch@example.org&to=admin@example.org"
        outcomes = fire_and_resolve(Route("mail", urls=(url,)))
        assert [o.ok for o in outcomes] == [True, True]
        check(box.got, box.raw, [TOKEN_SECRET])


def test_a_refused_delivery_is_reported_in_one_sentence() -> None:
    with http_receiver("ntfy") as server:
        server.status = 500
        url = f"ntfy://user:pw12345678@127.0.0.1:{server.server_port}/topic"
        [outcome] = send_apprise(Route("phone", urls=(url,)), Message("t", "b", Severity.ERROR))
        assert not outcome.ok
        assert outcome.detail.endswith("not delivered (the service refused it or did not answer)")
        assert "pw12345678" not in outcome.detail


def test_nobody_listening_and_a_bad_url() -> None:
    port = free_port()
    route = Route("x", urls=(f"json://127.0.0.1:{port}/", "nosuchservice://abc"))
    outcomes = send_apprise(route, Message("t", "b", Severity.WARNING))
    assert [o.ok for o in outcomes] == [False, False]
    assert outcomes[1].detail == "nosuchservice://…: not an Apprise URL this version knows"


def test_urls_file_keeps_tokens_out_of_the_config(tmp_path: Path) -> None:
    with http_receiver("json") as server:
        urls = tmp_path / "apprise"
        urls.write_text(f"# the phone\njson://127.0.0.1:{server.server_port}/\n")
        outcomes = send_apprise(
            Route("f", urls_file=str(urls)), Message("title", "body", Severity.ERROR)
        )
        assert [o.ok for o in outcomes] == [True]
        assert server.got == [("title", "body")]
