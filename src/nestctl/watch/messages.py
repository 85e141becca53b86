"""Messages short enough for a lock screen: what, where (the layer path), since when, the fix,
and a link to the dashboard when one is configured. Never a secret: every text passes through a
`Redactor` that knows the secrets in use (API token, passwords, Apprise URLs)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

from nestctl.findings import Severity

TITLE_MAX = 90
LINE_MAX = 160
DIGEST_LINES = 8
_ICON = {"error": "✖", "warning": "⚠", "info": "ℹ"}  # noqa: RUF001 - the signs are the point
# Credentials in the usual shapes, whatever secret list we hold.
_PATTERNS = (
    re.compile(r"(PVEAPIToken=[^=\s]+=)\S+", re.ASCII),
    re.compile(r"((?:password|passwd|secret|token|apikey|api_key)[=:]\s*)\S+", re.ASCII | re.I),
    re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]*@", re.ASCII | re.I),
)


class Redactor:
    """Replaces every known secret (and credential-shaped text) with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets = sorted([*self.secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + "***" if m.lastindex else "***", text)
        return text


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: Severity


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clock_text(when: float, zone: tzinfo | None) -> str:
    moment = datetime.fromtimestamp(when, zone or UTC)
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def one(
    kind: str,
    rec: dict[str, Any],
    *,
    now: float,
    zone: tzinfo | None,
    dashboard: str | None,
    redact: Redactor,
) -> Message:
    """The message for one record: kind is fire, resolve, remind or flapping."""
    ev = rec["event"]
    severity = Severity(ev["severity"])
    what = ev["what"]
    since = rec.get("since") or rec.get("fired_at") or now  # first seen, not fired
    lines = [f"where: {ev['path']}"]
    if kind == "resolve":
        title = f"✔ resolved: {what}"
        end = rec.get("resolved_at") or now
        lines.append(f"was: {clock_text(since, zone)} for {_span(end - since)}")
    elif kind == "flapping":
        title = f"↯ flapping: {what}"
        lines.append(f"fired {len(rec.get('fires', []))} times lately; quiet until it settles")
    else:
        prefix = "still: " if kind == "remind" else ""
        title = f"{_ICON[severity.value]} {prefix}{what}"
        lines.append(f"since: {clock_text(since, zone)} ({_span(now - since)} ago)")
        if ev.get("fix"):
            lines.append(f"fix: {ev['fix']}")
        lines += [f"> {d}" for d in list(ev.get("details") or [])[-3:]]
    if dashboard:
        lines.append(dashboard + quote(ev.get("page") or "/events", safe="/"))
    body = "\n".join(_clip(redact(line), LINE_MAX) for line in lines)
    return Message(_clip(redact(title), TITLE_MAX), body, severity)


def digest(
    items: list[tuple[str, dict[str, Any]]],
    *,
    now: float,
    zone: tzinfo | None,
    dashboard: str | None,
    redact: Redactor,
) -> Message:
    """Many at once: one message listing them (the worst first)."""
    from nestctl.watch.events import rank  # noqa: PLC0415

    def order(item: tuple[str, dict[str, Any]]) -> tuple[int, str]:
        return (-rank(Severity(item[1]["event"]["severity"])), item[1]["event"]["path"])

    items = sorted(items, key=order)
    fired = sum(1 for k, _ in items if k != "resolve")
    resolved = len(items) - fired
    parts = [f"{fired} alert{'s' * (fired != 1)}"] if fired else []
    if resolved:
        parts.append(f"{resolved} resolved")
    worst = max((Severity(r["event"]["severity"]) for _, r in items), key=rank)
    title = f"{_ICON[worst.value]} nestctl: " + ", ".join(parts)
    lines = []
    for kind, rec in items[:DIGEST_LINES]:
        sign = "✔" if kind == "resolve" else _ICON[rec["event"]["severity"]]
        lines.append(f"{sign} {rec['event']['path']}: {rec['event']['what']}")
    if len(items) > DIGEST_LINES:
        lines.append(f"+{len(items) - DIGEST_LINES} more")
    lines.append(f"at: {clock_text(now, zone)}")
    if dashboard:
        lines.append(dashboard + "/events")
    body = "\n".join(_clip(redact(line), LINE_MAX) for line in lines)
    return Message(_clip(redact(title), TITLE_MAX), body, worst)
