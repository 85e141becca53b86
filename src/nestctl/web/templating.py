"""Jinja2 rendering: autoescaped templates over data the engine produced."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from nestctl import __version__
from nestctl.web.consoles.links import console_globals
from nestctl.web.pages import assets


def _bytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"  # pragma: no cover


def _duration(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    s = int(value)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, _ = divmod(s, 60)
    return f"{d}d {h}h" if d else (f"{h}h {m}m" if h else f"{m}m")


def _datetime(value: Any) -> str:
    """A Unix time as UTC date and minute (what Proxmox stores: snapshot and backup times)."""
    import time  # noqa: PLC0415

    if not isinstance(value, int | float) or isinstance(value, bool):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(value))


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("nestctl.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = _bytes
    env.filters["duration"] = _duration
    env.filters["datetime"] = _datetime
    env.filters["u"] = lambda v: quote(str(v), safe="")
    env.filters["svg"] = Markup  # only for SVG our own sparkline module drew from numbers
    env.globals["version"] = __version__
    env.globals["static"] = assets.url
    env.globals.update(console_globals())
    return env


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page; `session` and `csrf` are always there for the layout's forms."""
    session = request.state.session
    context.setdefault("session", session)
    context.setdefault("csrf", session.csrf if session is not None else "")
    context.setdefault("settings", request.app.state.settings)
    context["request_path"] = request.url.path
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code)
