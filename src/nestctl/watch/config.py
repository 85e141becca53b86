"""The `[watch]` table and its `[[watch.route]]`s in the targets config file.

    [watch]
    dashboard_url = "https://pve1.lab:8443"     # links in messages (optional)
    quiet_hours = "22:00-07:00"                 # warnings wait; errors always go through
    [[watch.route]]
    name = "phone"
    urls = ["ntfys://ntfy.sh/my-topic"]         # or urls_file = "/etc/nestctl/apprise"
    min_severity = "warning"                    # or "error"
    targets = ["outer", "inner"]                # default: every target

An Apprise URL often holds a token: `urls_file` keeps it out of the config file (one URL a line).
Every problem is listed with its line, as for the targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nestctl.findings import Severity

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)

#: key -> (type, default, meaning) of the numbers in [watch].
NUMBERS: dict[str, tuple[type, float, str]] = {
    "cheap_every": (float, 30.0, "seconds between cheap checks (resources, node status, tasks)"),
    "full_every": (float, 600.0, "seconds between full checks (every VM's nesting chain)"),
    "hold_down": (float, 60.0, "seconds a condition must last before it fires"),
    "clear_hold": (float, 60.0, "seconds a condition must be gone before it resolves"),
    "flap_window": (float, 3600.0, "seconds over which firings are counted for flapping"),
    "flap_count": (int, 3, "firings within flap_window that make an event flapping"),
    "reminder": (float, 0.0, "seconds between reminders of an unacknowledged event (0: none)"),
    "rate_limit": (int, 10, "messages per target and route per rate_window"),
    "rate_window": (float, 3600.0, "seconds of the rate limit's window"),
    "digest_over": (int, 3, "more messages than this at once become one digest"),
    "storage_percent": (float, 90.0, "a storage fuller than this is an event"),
    "backup_max_age_hours": (float, 36.0, "a VM's newest backup older than this is an event"),
}
TEXTS = {
    "dashboard_url": "the dashboard's address, for links in messages",
    "quiet_hours": "HH:MM-HH:MM: warnings wait until it ends (errors always go through)",
    "timezone": "IANA zone for quiet hours and times in messages (default: the system's)",
    "state_file": "where events and deliveries are kept (default /var/lib/nestctl/watch.json)",
}
ROUTE_KEYS = {
    "name": "a name for the route (in --test output)",
    "urls": "Apprise URLs",
    "urls_file": "a file holding Apprise URLs, one a line (keeps tokens out of this file)",
    "min_severity": "warning or error",
    "targets": "target names this route is for (default: all)",
}
DEFAULT_STATE = "/var/lib/nestctl/watch.json"


@dataclass(frozen=True)
class Route:
    name: str
    urls: tuple[str, ...] = ()
    urls_file: str | None = None
    min_severity: Severity = Severity.WARNING
    targets: tuple[str, ...] = ()  # empty: every target

    def wants(self, target: str, severity: Severity) -> bool:
        from nestctl.watch.events import rank  # noqa: PLC0415

        if self.targets and target not in self.targets:
            return False
        return rank(severity) >= rank(self.min_severity)


@dataclass(frozen=True)
class WatchConfig:
    routes: tuple[Route, ...] = ()
    dashboard_url: str | None = None
    quiet_hours: tuple[int, int] | None = None  # minutes of the day: start, end
    timezone: str | None = None
    state_file: str = DEFAULT_STATE
    numbers: dict[str, float] = field(default_factory=dict)

    def number(self, key: str) -> float:
        return self.numbers.get(key, NUMBERS[key][1])


def parse_watch(table: Any, at: Any, targets: set[str]) -> tuple[WatchConfig, list[str]]:
    """The [watch] table (already read by tomllib) -> config and problems (`at(table, key)`
    gives FILE:LINE)."""
    problems: list[str] = []
    if not isinstance(table, dict):
        return WatchConfig(), [f"{at('watch')}: 'watch' must be a table"]
    numbers: dict[str, float] = {}
    texts: dict[str, str] = {}
    for key, value in table.items():
        where = at("watch", key)
        if key in NUMBERS:
            kind = NUMBERS[key][0]
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or value < 0 or (kind is int and not isinstance(value, int)):
                what = "a whole number" if kind is int else "a number"
                problems.append(f"{where}: {key!r} must be {what} >= 0")
            else:
                numbers[key] = float(value)
        elif key in TEXTS:
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: {key!r} must be a non-empty string")
            else:
                texts[key] = value.strip()
        elif key != "route":
            known = ", ".join(sorted([*NUMBERS, *TEXTS, "route"]))
            problems.append(f"{where}: unknown key {key!r} in [watch] (known: {known})")
    quiet = _quiet(texts.get("quiet_hours"), at("watch", "quiet_hours"), problems)
    _check_zone(texts.get("timezone"), at("watch", "timezone"), problems)
    url = texts.get("dashboard_url")
    if url is not None and not re.match(r"https?://[^\s/?#]+", url, re.ASCII):
        problems.append(f"{at('watch', 'dashboard_url')}: dashboard_url must be http(s)://HOST")
    routes = _routes(table.get("route", []), at, targets, problems)
    return (
        WatchConfig(
            routes=tuple(routes),
            dashboard_url=url.rstrip("/") if url else None,
            quiet_hours=quiet,
            timezone=texts.get("timezone"),
            state_file=texts.get("state_file", DEFAULT_STATE),
            numbers=numbers,
        ),
        problems,
    )


def _quiet(text: str | None, where: str, problems: list[str]) -> tuple[int, int] | None:
    if text is None:
        return None
    start, _, end = text.partition("-")
    a, b = _HHMM.fullmatch(start.strip()), _HHMM.fullmatch(end.strip())
    if a is None or b is None:
        problems.append(f"{where}: quiet_hours must be HH:MM-HH:MM (e.g. 22:00-07:00)")
        return None
    return int(a[1]) * 60 + int(a[2]), int(b[1]) * 60 + int(b[2])


def _check_zone(zone: str | None, where: str, problems: list[str]) -> None:
    if zone is None:
        return
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    try:
        ZoneInfo(zone)
    except (ValueError, OSError, KeyError):
        problems.append(f"{where}: unknown time zone {zone!r} (e.g. Europe/Berlin, UTC)")


def _routes(raw: Any, at: Any, targets: set[str], problems: list[str]) -> list[Route]:
    if not isinstance(raw, list):
        problems.append(f"{at('watch', 'route')}: routes are [[watch.route]] tables")
        return []
    out = []
    for i, table in enumerate(raw, 1):
        if not isinstance(table, dict):
            problems.append(f"{at('watch.route')}: route {i} must be a table")
            continue
        route = _route(i, table, at("watch.route"), targets, problems)
        if route is not None:
            out.append(route)
    names = [r.name for r in out]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{at('watch.route')}: two routes are named {dup!r}")
    return out


def _route(
    i: int, table: dict[str, Any], where: str, targets: set[str], problems: list[str]
) -> Route | None:
    before = len(problems)
    for key in table:
        if key not in ROUTE_KEYS:
            known = ", ".join(sorted(ROUTE_KEYS))
            problems.append(f"{where}: route {i}: unknown key {key!r} (known: {known})")
    name = table.get("name", f"route{i}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{where}: route {i}: name must be letters, digits, .-_")
    urls = table.get("urls", [])
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.strip() for u in urls):
        problems.append(f"{where}: route {i}: urls must be a list of Apprise URLs")
        urls = []
    urls_file = table.get("urls_file")
    if urls_file is not None and (not isinstance(urls_file, str) or not urls_file.strip()):
        problems.append(f"{where}: route {i}: urls_file must be a file name")
    if not urls and urls_file is None:
        problems.append(f"{where}: route {i}: give urls or urls_file")
    severity = table.get("min_severity", "warning")
    if severity not in ("warning", "error"):
        problems.append(f"{where}: route {i}: min_severity must be warning or error")
    wanted = table.get("targets", [])
    if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted):
        problems.append(f"{where}: route {i}: targets must be a list of target names")
        wanted = []
    problems += [
        f"{where}: route {i}: no target {t!r} in this file" for t in wanted if t not in targets
    ]
    if len(problems) > before:
        return None
    return Route(
        name=name,
        urls=tuple(u.strip() for u in urls),
        urls_file=urls_file,
        min_severity=Severity(severity),
        targets=tuple(wanted),
    )


def route_urls(route: Route) -> list[str]:
    """The route's URLs, with those of its urls_file (read through the user-file helper)."""
    urls = list(route.urls)
    if route.urls_file:
        from nestctl.userfile import read_user_file  # noqa: PLC0415

        raw = read_user_file(Path(route.urls_file), 64 * 1024, what="Apprise URL file")
        text = raw.decode("utf-8", errors="replace")
        urls += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return urls


def load_watch(path: Path) -> tuple[WatchConfig, dict[str, Any]]:
    """The watch config and targets of `path`. Raises TargetConfigError listing every problem."""
    import tomllib  # noqa: PLC0415

    from nestctl.api.targets import MAX_CONFIG_BYTES, TargetConfigError, _Lines, load_targets  # noqa: PLC0415
    from nestctl.userfile import read_user_file  # noqa: PLC0415

    targets = load_targets(path, required=True)
    text = read_user_file(path, MAX_CONFIG_BYTES, what="config file").decode("utf-8")
    doc = tomllib.loads(text)
    if "watch" not in doc:
        raise TargetConfigError([f"{path}: no [watch] table (with [[watch.route]] urls)"])
    lines = _Lines(text, path)
    config, problems = parse_watch(doc["watch"], lines.at, set(targets))
    if problems:
        raise TargetConfigError(problems)
    return config, dict(targets)


def watch_state_of(config_file: str | None) -> str | None:
    """The state file `nestctl watch` keeps for this config file (for the dashboard's events
    page): its [watch] state_file, the default when [watch] names none, None without [watch]."""
    import os  # noqa: PLC0415
    import tomllib  # noqa: PLC0415

    from nestctl.api.targets import MAX_CONFIG_BYTES, config_path  # noqa: PLC0415
    from nestctl.userfile import UserFileError, read_user_file  # noqa: PLC0415

    path = config_path(os.environ, config_file)
    try:
        doc = tomllib.loads(read_user_file(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, UserFileError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    table = doc.get("watch")
    if not isinstance(table, dict):
        return None
    state = table.get("state_file")
    return state if isinstance(state, str) and state.strip() else DEFAULT_STATE
