"""`/events`: the events `nestctl watch` raised (the same state file), with acknowledge and
silence-for-a-time. Acknowledging stops the reminders; a silence stops every message until it
ends. The page reads and writes only the state file (never the API)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.parse import parse_uint
from nestctl.web.pages.common import form, see_other, session, web
from nestctl.web.templating import render

#: Silences a visitor may choose, in hours.
SILENCES = (1, 8, 24)
_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


def _store(request: Request) -> Any:
    path = web(request).settings.extra.get("watch_state")
    if not path:
        return None
    from nestctl.watch.state import StateStore  # noqa: PLC0415

    return StateStore(path)


def _rows(records: dict[str, dict[str, Any]], now: float) -> list[dict[str, Any]]:
    rows = []
    for key, rec in records.items():
        ev = rec.get("event") or {}
        silenced = rec.get("silenced_until") or 0
        status = str(rec.get("status"))
        rows.append(
            {
                "key": key,
                "status": status,
                "severity": ev.get("severity", "warning"),
                "what": ev.get("what", key),
                "path": ev.get("path", ""),
                "fix": ev.get("fix"),
                "since": rec.get("since") or now,
                "age": now - (rec.get("since") or now),
                "resolved_ago": now - rec["resolved_at"] if rec.get("resolved_at") else None,
                "acked": bool(rec.get("acked")),
                "silenced_for": silenced - now if silenced > now else None,
                "can_ack": status == "firing" and not rec.get("acked"),
                "can_silence": status in ("firing", "pending"),
                "page": ev.get("page"),
            }
        )
    rows.sort(key=lambda r: (_ORDER.get(r["status"], 3), r["severity"] != "error", -r["since"]))
    return rows


async def events_page(request: Request) -> Response:
    session(request)
    store = _store(request)
    if store is None:
        return render(request, "events.html", rows=None, problem=None, silences=SILENCES)
    from nestctl.watch.state import StateError  # noqa: PLC0415

    try:
        state = await asyncio.to_thread(store.load)
    except StateError as exc:
        return render(request, "events.html", rows=None, problem=str(exc), silences=SILENCES)
    rows = _rows(state.records, time.time())
    return render(request, "events.html", rows=rows, problem=None, silences=SILENCES)


def _change(store: Any, key: str, action: str, hours: int) -> bool:
    """Apply one visitor action under the state file's lock; False if the event is gone."""
    now = time.time()
    with store.edit() as state:
        rec = state.records.get(key)
        if rec is None:
            return False
        if action == "ack":
            rec["acked"] = now
        elif action == "silence":
            rec["silenced_until"] = now + hours * 3600
        elif action == "unsilence":
            rec["silenced_until"] = None
        return True


async def events_action(request: Request) -> Response:
    session(request)
    store = _store(request)
    data = form(request)
    action = request.path_params["action"]
    key = data.get("key", "")
    hours = parse_uint(data.get("hours", ""), max_digits=4) or 0
    if store is None or action not in ("ack", "silence", "unsilence"):
        return see_other("/events")
    if action == "silence" and hours not in SILENCES:
        return see_other("/events")
    from nestctl.watch.state import StateError  # noqa: PLC0415

    try:
        await asyncio.to_thread(_change, store, key, action, hours)
    except StateError as exc:
        return render(
            request, "events.html", rows=None, problem=str(exc), silences=SILENCES, status_code=500
        )
    return see_other("/events")


routes = [
    Route("/events", events_page, methods=["GET"]),
    Route("/events/{action}", events_action, methods=["POST"]),
]
