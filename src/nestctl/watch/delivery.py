"""From records to messages on each route: what is owed, what waits, what goes as one digest.

Level-triggered: each record remembers, per route, the last kind delivered (`sent`). What is
owed is the difference between that and the record's state, so a message that could not go now
(quiet hours, the rate limit, a failed delivery) simply goes at a later poll, and a restart owes
nothing that was already delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from nestctl.findings import Severity
from nestctl.watch.config import Route, WatchConfig
from nestctl.watch.engine import FIRING, RESOLVED
from nestctl.watch.messages import Message, Redactor, digest, one


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt to one route."""

    route: str
    ok: bool
    detail: str  # "delivered", or why not (never a secret)


#: Sends one message on one route; returns per-URL outcomes.
Sender = Callable[[Route, Message], list[Outcome]]


@dataclass
class Plan:
    """Per route: the (kind, key) owed now, and how many wait for the quiet hours' end (the
    rate limit is applied per message when sending: a digest counts once)."""

    owed: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)


def in_quiet_hours(config: WatchConfig, now: float, zone: tzinfo | None) -> bool:
    if config.quiet_hours is None:
        return False
    start, end = config.quiet_hours
    moment = datetime.fromtimestamp(now, zone or UTC)
    minute = moment.hour * 60 + moment.minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # across midnight


def owed_kind(rec: dict[str, Any], route: str, now: float, reminder: float) -> str | None:
    """What this route still owes for this record, if anything."""
    sent = rec.get("sent", {}).get(route)
    if rec.get("silenced_until") and rec["silenced_until"] > now:
        return None
    if rec.get("flapping"):
        return None if sent == "flapping" else "flapping"  # one note, then calm
    status = rec["status"]
    if status == FIRING:
        if sent not in ("fire", "remind", "flapping"):
            return "fire"
        last = rec.get("sent_at", {}).get(route) or 0.0
        if reminder > 0 and not rec.get("acked") and now - last >= reminder:
            return "remind"
        return None
    if status == RESOLVED and sent in ("fire", "remind", "flapping"):
        return "resolve"
    return None


def plan(
    records: dict[str, dict[str, Any]],
    config: WatchConfig,
    now: float,
    zone: tzinfo | None,
) -> Plan:
    out = Plan()
    quiet = in_quiet_hours(config, now, zone)
    for route in config.routes:
        owed: list[tuple[str, str]] = []
        waiting = 0
        for key, rec in sorted(records.items()):
            ev = rec["event"]
            severity = Severity(ev["severity"])
            if not route.wants(ev["target"], severity):
                continue
            kind = owed_kind(rec, route.name, now, config.number("reminder"))
            if kind is None:
                continue
            if quiet and severity is not Severity.ERROR and not ev.get("security"):
                waiting += 1
                continue
            owed.append((kind, key))
        out.owed[route.name] = owed
        out.waiting[route.name] = waiting
    return out


def deliver(
    records: dict[str, dict[str, Any]],
    config: WatchConfig,
    rate: dict[str, list[float]],
    send: Sender,
    *,
    now: float,
    zone: tzinfo | None,
    redact: Redactor,
) -> list[Outcome]:
    """Send what is owed on every route and mark it delivered (in `records` and `rate`)."""
    owed = plan(records, config, now, zone)
    outcomes: list[Outcome] = []
    window = config.number("rate_window")
    limit = int(config.number("rate_limit"))
    over = int(config.number("digest_over"))
    for route in config.routes:
        items = owed.owed.get(route.name, [])
        if not items:
            continue
        groups: list[list[tuple[str, str]]]
        groups = [items] if len(items) > over else [[item] for item in items]
        for group in groups:
            targets = {records[k]["event"]["target"] for _, k in group}
            spent = limit and any(_used(rate, route.name, t, now, window) >= limit for t in targets)
            if spent and not any(records[k]["event"].get("security") for _, k in group):
                continue  # this target's budget is spent: it waits for the window
            message = _message(group, records, config, now=now, zone=zone, redact=redact)
            results = send(route, message)
            outcomes += results
            if results and all(r.ok for r in results):
                for kind, key in group:
                    rec = records[key]
                    rec.setdefault("sent", {})[route.name] = kind
                    rec.setdefault("sent_at", {})[route.name] = now
                for target in targets:
                    rate.setdefault(f"{route.name}:{target}", []).append(now)
    for name in list(rate):
        rate[name] = [t for t in rate[name] if now - t < window]
        if not rate[name]:
            del rate[name]
    return outcomes


def _used(rate: dict[str, list[float]], route: str, target: str, now: float, window: float) -> int:
    return sum(1 for t in rate.get(f"{route}:{target}", []) if now - t < window)


def _message(
    group: list[tuple[str, str]],
    records: dict[str, dict[str, Any]],
    config: WatchConfig,
    *,
    now: float,
    zone: tzinfo | None,
    redact: Redactor,
) -> Message:
    if len(group) == 1:
        kind, key = group[0]
        return one(
            kind, records[key], now=now, zone=zone, dashboard=config.dashboard_url, redact=redact
        )
    items = [(kind, records[key]) for kind, key in group]
    return digest(items, now=now, zone=zone, dashboard=config.dashboard_url, redact=redact)
