"""A finding's fix as a button, where the dashboard can do it; the CLI command stays shown.

The button opens the same confirmation page as the matching action (the plan of "make
nested-ready", or the power confirmation), so a fix is never applied by one tap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nestctl.web.offers import Offer

_ENABLE = re.compile(r"nestctl vm enable (\d+) --profile ([a-z0-9-]+)$", re.ASCII)
_RESTART = re.compile(r"qm (?:reboot|start) (\d+)$", re.ASCII)
_CT_FIX = re.compile(r"(?:nestctl ct (?:enable|fix) |pct set )(\d+)", re.ASCII)


@dataclass(frozen=True)
class FixButton:
    label: str
    href: str


def fix_button(fix: str | None, base: str, offer: Offer, *, kind: str = "qemu") -> FixButton | None:
    """The button for `fix` on the guest page at `base` (`/t/T/vm/NODE/VMID`), or None."""
    if not fix:
        return None
    text = " ".join(fix.split())
    m = _ENABLE.match(text)
    if m and kind == "qemu":
        return FixButton("Make nested-ready", f"{base}/enable?profile={m.group(2)}")
    if _RESTART.match(text):
        return restart_button(base, offer)
    if kind == "lxc" and _CT_FIX.match(text):
        return FixButton("Apply this fix", f"{base}/fix")
    return None


def restart_button(base: str, offer: Offer) -> FixButton | None:
    """ "Restart to apply" for a running guest; "Start" for a stopped one (a stopped guest takes
    its new config when it starts: a restart would fail with "not running")."""
    if "reboot" in offer.actions:
        return FixButton("Restart to apply", f"{base}/power/reboot?why=pending")
    if "start" in offer.actions:
        return FixButton("Start (applies the change)", f"{base}/power/start")
    return None
