"""The alert lifecycle of every event key: pending (held down) -> firing -> resolved.

- Hold-down: a condition must last `hold_down` seconds before it fires (security events fire at
  once), and be gone `clear_hold` seconds before it resolves.
- Flap damping: `flap_count` firings within `flap_window` mark the key flapping; delivery then
  sends one "flapping" note and nothing more until it has been stable for a whole window.
- Acknowledged (from the dashboard) stops reminders; silenced-until stops every message.
- Unseen keys (a target or node that could not be read) keep their state: unknown is never
  "resolved".

The records are plain JSON, kept in the state file (state.py), so a restart continues the
incident where it was: nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nestctl.watch.events import Evaluation, Event

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"


@dataclass(frozen=True)
class Timing:
    hold_down: float = 60.0
    clear_hold: float = 60.0
    flap_window: float = 3600.0
    flap_count: int = 3
    reminder: float = 0.0  # seconds between reminders of an unacknowledged event (0: never)
    keep_resolved: float = 86400.0  # resolved events stay listed this long


def active_keys(records: dict[str, dict[str, Any]]) -> set[str]:
    return {k for k, r in records.items() if r.get("status") in (PENDING, FIRING)}


def step(records: dict[str, dict[str, Any]], found: Evaluation, timing: Timing, now: float) -> None:
    """Advance every record by one poll (in place)."""
    seen = set()
    for event in found.events:
        seen.add(event.key)
        rec = records.get(event.key)
        if rec is None or rec.get("status") == RESOLVED:
            rec = _new(event, now, rec)
            records[event.key] = rec
        rec["event"] = event.to_json()
        rec["gone_since"] = None
        if rec["status"] == PENDING and (event.security or now - rec["since"] >= timing.hold_down):
            rec["status"] = FIRING
            rec["fired_at"] = now
            rec["fires"] = [t for t in rec.get("fires", []) if now - t < timing.flap_window]
            rec["fires"].append(now)
            rec["acked"] = None
    for key in list(records):
        rec = records[key]
        _damp(rec, timing, now)
        if key in seen or found.hides(key):
            continue
        if rec["status"] == PENDING:
            if rec.get("sent"):
                rec["status"] = RESOLVED  # it had fired before: its resolve may be owed
                rec["resolved_at"] = rec.get("resolved_at") or now
            else:
                del records[key]  # never fired: nothing to say
        elif rec["status"] == FIRING:
            rec["gone_since"] = rec.get("gone_since") or now
            if now - rec["gone_since"] >= timing.clear_hold:
                rec["status"] = RESOLVED
                rec["resolved_at"] = now
        elif now - (rec.get("resolved_at") or now) > timing.keep_resolved:
            del records[key]


def _new(event: Event, now: float, old: dict[str, Any] | None) -> dict[str, Any]:
    """A fresh pending record; a resolved one coming back keeps its history (for flapping)."""
    rec: dict[str, Any] = {
        "event": event.to_json(),
        "status": PENDING,
        "since": now,
        "fired_at": None,
        "resolved_at": None,
        "gone_since": None,
        "fires": [],
        "flapping": False,
        "sent": {},
        "sent_at": {},
        "acked": None,
        "silenced_until": None,
    }
    if old is not None:
        for name in ("fires", "flapping", "sent", "sent_at", "silenced_until"):
            rec[name] = old.get(name, rec[name])
    return rec


def _damp(rec: dict[str, Any], timing: Timing, now: float) -> None:
    fires = [t for t in rec.get("fires", []) if now - t < timing.flap_window]
    rec["fires"] = fires
    if len(fires) >= timing.flap_count:
        rec["flapping"] = True
    elif rec.get("flapping") and not fires:
        rec["flapping"] = False  # stable for a whole window: normal delivery again
