"""The watch loop: poll every target, judge, advance the events, deliver; on a clock the tests
inject (no sleeps in tests: they call `tick(now)`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import tzinfo
from urllib.parse import urlsplit

from nestctl.watch.collect import Collector
from nestctl.watch.config import WatchConfig, route_urls
from nestctl.watch.delivery import Outcome, Sender, deliver
from nestctl.watch.engine import Timing, active_keys, step
from nestctl.watch.messages import Redactor
from nestctl.watch.rules import Limits, evaluate
from nestctl.watch.snapshot import TargetSnap
from nestctl.watch.state import StateStore

LOG = logging.getLogger(__name__)


def zone_of(config: WatchConfig) -> tzinfo | None:
    if config.timezone is None:
        return None
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    return ZoneInfo(config.timezone)


def url_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL that may be secret: the whole URL, its credentials, host
    part and longer path segments (many services carry their token there)."""
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    out += [p for p in (parts.username, parts.password, parts.netloc) if p]
    out += [seg for seg in parts.path.split("/") if len(seg) >= 8]
    out += [v for pair in parts.query.split("&") for v in pair.split("=")[1:] if len(v) >= 8]
    return out


class Watch:
    def __init__(
        self,
        config: WatchConfig,
        collectors: list[Collector],
        store: StateStore,
        send: Sender,
    ) -> None:
        self.config = config
        self.collectors = collectors
        self.store = store
        self.send = send
        self.zone = zone_of(config)
        self.limits = Limits(
            storage_percent=config.number("storage_percent"),
            backup_max_age=config.number("backup_max_age_hours") * 3600.0,
        )
        self.timing = Timing(
            hold_down=config.number("hold_down"),
            clear_hold=config.number("clear_hold"),
            flap_window=config.number("flap_window"),
            flap_count=int(config.number("flap_count")),
            reminder=config.number("reminder"),
        )
        self.last_full: dict[str, float] = {}
        self.redact = Redactor()
        for route in config.routes:
            try:
                urls = route_urls(route)
            except (OSError, ValueError):
                urls = list(route.urls)
            for url in urls:
                for secret in url_secrets(url):
                    self.redact.add(secret)

    def snapshots(self, now: float) -> dict[str, TargetSnap]:
        snaps = {}
        every = self.config.number("full_every")
        for c in self.collectors:
            name = c.target.name
            full = c.full_facts is None or now - self.last_full.get(name, 0.0) >= every
            snaps[name] = c.snapshot(now, full=full)
            if full and snaps[name].problem is None and snaps[name].tls_problem is None:
                self.last_full[name] = now
            for secret in c.secrets:
                self.redact.add(secret)
        return snaps

    def tick(self, now: float) -> list[Outcome]:
        """One poll: every target's snapshot, the events, their lifecycle, the deliveries.

        A state file that cannot be read is set aside (`.damaged`) and watch starts afresh:
        alerts that keep coming matter more than a message that may come twice."""
        from nestctl.watch.state import StateError  # noqa: PLC0415

        snaps = self.snapshots(now)
        try:
            return self._judge(snaps, now)
        except StateError as exc:
            if not os.path.exists(self.store.path):
                raise
            aside = self.store.set_aside()
            LOG.warning("%s; set aside as %s, starting afresh", exc, aside)
            return self._judge(snaps, now)

    def _judge(self, snaps: dict[str, TargetSnap], now: float) -> list[Outcome]:
        with self.store.edit() as state:
            found = evaluate(snaps, active_keys(state.records), state.memory, self.limits, now)
            step(state.records, found, self.timing, now)
            return deliver(
                state.records,
                self.config,
                state.rate,
                self.send,
                now=now,
                zone=self.zone,
                redact=self.redact,
            )

    def run(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        every = max(1.0, self.config.number("cheap_every"))
        while not stop():
            start = clock()
            try:
                outcomes = self.tick(start)
            except Exception as exc:  # noqa: BLE001 - a service keeps polling; one line, not a traceback
                LOG.error("poll failed: %s: %s", type(exc).__name__, exc)  # noqa: TRY400
                outcomes = []
            for outcome in outcomes:
                if not outcome.ok:
                    LOG.warning("route %s: %s", outcome.route, outcome.detail)
            sleep(max(0.0, every - (clock() - start)))
