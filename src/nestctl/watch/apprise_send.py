"""Delivery through Apprise (Debian's `apprise`, 1.2.0 in Debian 12): one Apprise object per URL,
so each URL's result is known. Outcomes name the URL as Apprise prints it with privacy on
(passwords and tokens masked), never Apprise's own error text."""

from __future__ import annotations

import logging

from nestctl.findings import Severity
from nestctl.watch.config import Route, route_urls
from nestctl.watch.delivery import Outcome
from nestctl.watch.messages import Message

#: What to install when Apprise is missing.
INSTALL_HINT = "apprise is not installed: apt install apprise (or: pip install 'nestctl[watch]')"


class AppriseMissingError(Exception):
    pass


def require_apprise() -> None:
    try:
        import apprise  # noqa: F401, PLC0415
    except ImportError:
        raise AppriseMissingError(INSTALL_HINT) from None


def masked(url: str) -> str:
    """The URL as Apprise shows it with privacy on, or only its scheme."""
    import apprise  # noqa: PLC0415

    obj = apprise.Apprise()
    if obj.add(url):
        return str(obj[0].url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]
    return url.split("://", 1)[0] + "://…"


def send_apprise(route: Route, message: Message, *, kind: str | None = None) -> list[Outcome]:
    import apprise  # noqa: PLC0415

    notify_type = {
        Severity.ERROR: apprise.NotifyType.FAILURE,
        Severity.WARNING: apprise.NotifyType.WARNING,
    }.get(message.severity, apprise.NotifyType.INFO)
    if kind == "test" or message.title.startswith("✔"):
        notify_type = apprise.NotifyType.SUCCESS if kind != "test" else apprise.NotifyType.INFO
    try:
        urls = route_urls(route)
    except (OSError, ValueError) as exc:
        return [Outcome(route.name, ok=False, detail=f"cannot read urls_file: {exc}")]
    if not urls:
        return [Outcome(route.name, ok=False, detail="no Apprise URL")]
    out = []
    for url in urls:
        obj = apprise.Apprise()
        if not obj.add(url):
            shown = url.split("://", 1)[0] + "://…"
            out.append(
                Outcome(route.name, False, f"{shown}: not an Apprise URL this version knows")
            )
            continue
        shown = str(obj[0].url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]
        # Apprise logs each failure with its own words (and sometimes the URL): keep them out of
        # our output; the outcome says what happened in one sentence.
        logger = logging.getLogger("apprise")
        level, logger.level = logger.level, logging.CRITICAL + 1
        try:
            ok = bool(
                obj.notify(
                    title=message.title,
                    body=message.body,
                    notify_type=notify_type,
                    body_format=apprise.NotifyFormat.TEXT,
                )
            )
        except Exception:  # noqa: BLE001 - a plugin's bug is a failed delivery, not a crash
            ok = False
        finally:
            logger.level = level
        out.append(
            Outcome(
                route.name,
                ok,
                f"{shown}: delivered"
                if ok
                else f"{shown}: not delivered (the service refused it or did not answer)",
            )
        )
    return out
