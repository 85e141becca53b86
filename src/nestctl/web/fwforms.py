"""What the firewall forms offer as pickers: Proxmox's macros (`/cluster/firewall/macros`) and
the protocols a rule takes (`pve-fw-protocol-spec`: a name from /etc/protocols or a number)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The protocols people pick (names as /etc/protocols spells them, as Proxmox accepts them).
PROTOCOLS = (
    "tcp", "udp", "icmp", "ipv6-icmp", "igmp", "gre", "esp", "ah", "sctp", "udplite", "vrrp",
    "ospf", "pim",
)  # fmt: skip


def macros(api: Any) -> list[tuple[str, str]] | None:
    """(name, description) of every macro, or None when they cannot be read (then the form
    takes the macro as typed text)."""
    try:
        rows = api.request("GET", "/cluster/firewall/macros")
    except Exception:  # noqa: BLE001 - the form falls back to a text field
        return None
    items = rows if isinstance(rows, list) else []
    out = [
        (str(r["macro"]), str(r.get("descr", "")))
        for r in items
        if isinstance(r, Mapping) and isinstance(r.get("macro"), str)
    ]
    return sorted(out, key=lambda m: m[0].lower())
