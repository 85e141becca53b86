"""The alert lifecycle and delivery policy on an injected clock: hold-down, resolve, flapping,
reminders and acknowledgement, silence, quiet hours, the per-target rate limit, the digest."""

from __future__ import annotations

from pathlib import Path

from nestctl.findings import Severity
from nestctl.watch.config import Route
from nestctl.watch.delivery import deliver
from nestctl.watch.engine import Timing, step
from nestctl.watch.events import Evaluation, Event, covered
from nestctl.watch.messages import Redactor
from nestctl.watch.paths import SEP
from nestctl.watch.state import StateStore
from tests.watch.helpers import NOON, Recorder, config


def ev(
    key: str = "node.down:outer:pve3", severity: Severity = Severity.ERROR, **kw: object
) -> Event:
    target = key.split(":")[1]
    return Event(
        key=key,
        code=key.split(":", maxsplit=1)[0],
        severity=severity,
        target=target,
        path=kw.pop("path", f"{target}/pve3"),  # type: ignore[arg-type]
        what=kw.pop("what", f"problem {key}"),  # type: ignore[arg-type]
        fix="do the thing",
        **kw,  # type: ignore[arg-type]
    )


class Loop:
    """Records + rate + a recorder, advanced poll by poll."""

    def __init__(self, **numbers: float) -> None:
        self.records: dict[str, dict[str, object]] = {}
        self.rate: dict[str, list[float]] = {}
        self.rec = Recorder()
        self.cfg = config(**numbers)
        self.timing = Timing(
            hold_down=self.cfg.number("hold_down"),
            clear_hold=self.cfg.number("clear_hold"),
            flap_window=self.cfg.number("flap_window"),
            flap_count=int(self.cfg.number("flap_count")),
            reminder=self.cfg.number("reminder"),
        )
        self.now = NOON

    def poll(self, *events: Event, unseen: set[str] | None = None, dt: float = 30.0) -> None:
        self.now += dt
        found = Evaluation(list(events), unseen or set())
        step(self.records, found, self.timing, self.now)  # type: ignore[arg-type]
        deliver(
            self.records,  # type: ignore[arg-type]
            self.cfg,
            self.rate,
            self.rec,
            now=self.now,
            zone=None,
            redact=Redactor(["s3cr3t-token"]),
        )


def test_hold_down_then_one_message_then_one_resolve() -> None:
    loop = Loop()
    loop.poll(ev())
    loop.poll(ev())
    assert loop.rec.sent == []  # held down for 60 s
    loop.poll(ev())
    assert loop.rec.titles() == ["✖ problem node.down:outer:pve3"]
    for _ in range(10):
        loop.poll(ev())
    assert len(loop.rec.sent) == 1
    loop.poll()
    assert len(loop.rec.sent) == 1  # gone for less than clear_hold
    loop.poll()
    loop.poll()
    assert loop.rec.titles()[1:] == ["✔ resolved: problem node.down:outer:pve3"]
    for _ in range(5):
        loop.poll()
    assert len(loop.rec.sent) == 2


def test_a_blip_shorter_than_the_hold_down_sends_nothing() -> None:
    loop = Loop()
    loop.poll(ev())
    loop.poll(ev())
    for _ in range(5):
        loop.poll()
    assert loop.rec.sent == []
    assert loop.records == {}


def test_security_events_fire_at_once() -> None:
    loop = Loop()
    loop.poll(ev("target.tls:outer", security=True))
    assert len(loop.rec.sent) == 1


def test_unseen_keeps_an_event_as_it_was() -> None:
    loop = Loop()
    for _ in range(3):
        loop.poll(ev())
    for _ in range(10):
        loop.poll(unseen={"*:outer"})  # the target did not answer: not resolved
    assert len(loop.rec.sent) == 1
    assert loop.records["node.down:outer:pve3"]["status"] == "firing"


def test_covered_patterns() -> None:
    assert covered("vm.stopped:outer:pve3:301", "*:outer:pve3")
    assert covered("vm.stopped:outer:pve3:301", "*:outer")
    assert not covered("vm.stopped:outer:pve2:201", "*:outer:pve3")
    assert not covered("vm.stopped:inner:pve3:301", "*:outer")
    assert covered("node.nested:outer:pve1:now", "node.nested:outer:pve1:")
    assert not covered("node.down:outer:pve1", "node.nested:outer:pve1:")


def test_flapping_is_damped_to_one_note() -> None:
    loop = Loop(hold_down=0, clear_hold=0, flap_count=3, flap_window=3600)
    for _ in range(10):  # up, down, up, down...
        loop.poll(ev())
        loop.poll()
    titles = loop.rec.titles()
    assert titles[:4] == [
        "✖ problem node.down:outer:pve3",
        "✔ resolved: problem node.down:outer:pve3",
        "✖ problem node.down:outer:pve3",
        "✔ resolved: problem node.down:outer:pve3",
    ]
    assert titles[4:] == ["↯ flapping: problem node.down:outer:pve3"]
    for _ in range(130):  # an hour and more of calm
        loop.poll()
    assert loop.rec.titles()[-1] == "✔ resolved: problem node.down:outer:pve3"
    assert len(loop.rec.sent) == 6


def test_reminders_stop_when_acknowledged() -> None:
    loop = Loop(reminder=600)
    for _ in range(3):
        loop.poll(ev())
    for _ in range(40):  # 20 minutes
        loop.poll(ev())
    assert loop.rec.titles() == [
        "✖ problem node.down:outer:pve3",
        "✖ still: problem node.down:outer:pve3",
        "✖ still: problem node.down:outer:pve3",
    ]
    loop.records["node.down:outer:pve3"]["acked"] = loop.now
    for _ in range(60):
        loop.poll(ev())
    assert len(loop.rec.sent) == 3


def test_silenced_events_wait_until_the_silence_ends() -> None:
    loop = Loop()
    loop.poll(ev())
    loop.records["node.down:outer:pve3"]["silenced_until"] = loop.now + 3600
    for _ in range(100):
        loop.poll(ev())
    assert loop.rec.sent == []
    for _ in range(30):
        loop.poll(ev())
    assert len(loop.rec.sent) == 1


def test_quiet_hours_hold_warnings_but_not_errors() -> None:
    loop = Loop()
    # Noon UTC: quiet from 11:00 to 13:00.
    loop.cfg = config(quiet=(11 * 60, 13 * 60))  # type: ignore[arg-type]
    warn = ev("storage.full:outer:pve1:local", Severity.WARNING)
    for _ in range(4):
        loop.poll(ev(), warn)
    assert loop.rec.titles() == ["✖ problem node.down:outer:pve3"]
    for _ in range(120):  # past 13:00
        loop.poll(ev(), warn)
    assert loop.rec.titles()[1:] == ["⚠ problem storage.full:outer:pve1:local"]


def test_rate_limit_per_target() -> None:
    loop = Loop(rate_limit=2, digest_over=100, hold_down=0, clear_hold=0)
    events = [ev(f"vm.stopped:outer:pve1:{100 + i}") for i in range(3)]
    loop.poll(*events)
    assert len(loop.rec.sent) == 2  # the third waits for the window
    other = ev("node.down:inner:pve-inner")
    loop.poll(*events, other)
    assert len(loop.rec.sent) == 3  # another target has its own budget
    for _ in range(125):
        loop.poll(*events, other)
    assert len(loop.rec.sent) == 4  # the third, once the hour passed


def test_many_at_once_is_one_digest() -> None:
    loop = Loop(digest_over=3)
    events = [
        ev(f"vm.stopped:outer:pve1:{100 + i}", path=f"outer/pve1{SEP}VM {100 + i}")
        for i in range(12)
    ]
    for _ in range(3):
        loop.poll(*events)
    assert len(loop.rec.sent) == 1
    message = loop.rec.sent[0][1]
    assert message.title == "✖ nestctl: 12 alerts"
    assert f"✖ outer/pve1{SEP}VM 100: problem vm.stopped:outer:pve1:100" in message.body
    assert "+4 more" in message.body
    assert message.body.endswith("https://dash.example:8443/events")


def test_a_failed_delivery_is_retried_at_the_next_poll() -> None:
    loop = Loop()
    loop.rec.failing = True
    for _ in range(4):
        loop.poll(ev())
    loop.rec.failing = False
    loop.poll(ev())
    assert loop.rec.titles() == ["✖ problem node.down:outer:pve3"]


def test_routes_by_severity_and_target() -> None:
    loop = Loop()
    loop.cfg = config(
        routes=(
            Route("errors", urls=("json://127.0.0.1:9",), min_severity=Severity.ERROR),
            Route("inner", urls=("json://127.0.0.1:9",), targets=("inner",)),
        )
    )
    warn = ev("storage.full:outer:pve1:local", Severity.WARNING)
    inner = ev("node.down:inner:pve-inner")
    for _ in range(3):
        loop.poll(ev(), warn, inner)
    sent = sorted((route, m.title) for route, m in loop.rec.sent)
    assert sent == [
        ("errors", "✖ problem node.down:inner:pve-inner"),
        ("errors", "✖ problem node.down:outer:pve3"),
        ("inner", "✖ problem node.down:inner:pve-inner"),
    ]


def test_messages_never_carry_a_secret() -> None:
    loop = Loop()
    leaky = ev(
        what="task failed: PVEAPIToken=root@pam!w=s3cr3t-token password=hunter22",
        details=("url https://admin:pw1234@10.0.0.1/ s3cr3t-token",),
    )
    for _ in range(3):
        loop.poll(leaky)
    text = loop.rec.sent[0][1].title + loop.rec.sent[0][1].body
    for secret in ("s3cr3t-token", "hunter22", "pw1234"):
        assert secret not in text
    assert "***" in text


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "state.json"))
    loop = Loop()
    for _ in range(3):
        loop.poll(ev())
    with store.edit() as state:
        state.records = loop.records  # type: ignore[assignment]
        state.rate = loop.rate
    again = Loop()
    again.now = loop.now
    again.records = store.load().records  # type: ignore[assignment]
    again.rate = store.load().rate
    for _ in range(5):
        again.poll(ev())
    assert again.rec.sent == []
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600


def test_the_loop_polls_on_the_injected_clock(tmp_path: Path) -> None:
    from nestctl.watch.service import Watch  # noqa: PLC0415

    now = [NOON]
    naps: list[float] = []
    watch = Watch(config(cheap_every=30), [], StateStore(str(tmp_path / "s.json")), Recorder())
    ticks: list[float] = []
    watch.tick = lambda t: ticks.append(t) or []  # type: ignore[method-assign, func-returns-value]

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    watch.run(lambda: now[0], sleep, stop=lambda: len(ticks) >= 3)
    assert ticks == [NOON, NOON + 30, NOON + 60]
    assert naps == [30.0, 30.0, 30.0]
