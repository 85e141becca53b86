"""Node health endpoints: a node's rrddata, its storages with usage, the firewall macro list.

Values follow pve-manager: `/nodes/{node}/rrddata` rows carry `cpu` (fraction), `loadavg`,
`memused`/`memtotal`, `rootused`/`roottotal` (PVE2::API2Tools rrd columns); `/nodes/{node}/storage`
gives `total`/`used`/`avail` in bytes and `used_fraction` (PVE::API2::Storage::Status index).
A test sets `node.storages` (a list of dicts like the defaults below) to model a full storage.
"""

from __future__ import annotations

import time
from typing import Any

from tests.pvesim.cluster import Node
from tests.pvesim.handlers import Ctx, handles

_GIB = 1024**3


def default_storages(node: Node) -> list[dict[str, Any]]:
    """`local` (dir) and `local-lvm` (lvmthin), as a fresh installation has them."""
    return [
        {"storage": "local", "type": "dir", "content": "iso,vztmpl,backup",
         "total": 100 * _GIB, "used": 12 * _GIB, "shared": 0},
        {"storage": "local-lvm", "type": "lvmthin", "content": "images,rootdir",
         "total": 800 * _GIB, "used": 300 * _GIB, "shared": 0},
    ]  # fmt: skip


def storages(node: Node) -> list[dict[str, Any]]:
    found = getattr(node, "storages", None)
    return list(found) if isinstance(found, list) else default_storages(node)


@handles("GET", "/nodes/{node}/storage")
def node_storage(ctx: Ctx) -> Any:
    node = ctx.node
    wanted = ctx.text("storage")
    out: list[dict[str, Any]] = []
    for s in storages(node):
        if wanted is not None and s["storage"] != wanted:
            continue
        total, used = int(s["total"]), int(s["used"])
        out.append(
            {
                "storage": s["storage"],
                "type": s["type"],
                "content": s["content"],
                "shared": s.get("shared", 0),
                "enabled": 1,
                "active": 1,
                "total": total,
                "used": used,
                "avail": max(0, total - used),
                "used_fraction": used / total if total else 0,
            }
        )
    return out


@handles("GET", "/nodes/{node}/rrddata")
def node_rrddata(ctx: Ctx) -> Any:
    node = ctx.node
    step = {"hour": 60, "day": 1800, "week": 10800, "month": 43200, "year": 604800}.get(
        ctx.text("timeframe") or "hour", 60
    )
    now = int(time.time()) // step * step
    total = node.memory_total
    out: list[dict[str, Any]] = []
    for i in range(70):
        t = now - (69 - i) * step
        wave = (i % 10) / 100.0  # a little movement so a graph has a shape
        out.append(
            {
                "time": t,
                "cpu": 0.03 + wave,
                "maxcpu": node.cpus,
                "iowait": 0.0004,
                "loadavg": 0.12 + wave * 4,
                "memtotal": total,
                "memused": total // 4 + int(total * wave / 2),
                "swaptotal": 8_589_934_592,
                "swapused": 0,
                "roottotal": 101_203_873_792,
                "rootused": 12_884_901_888,
                "netin": 2048.5,
                "netout": 1024.25,
            }
        )
    return out


#: A few of pve-firewall's macros (PVE::Firewall $pve_fw_macros), with their descriptions.
MACROS = (
    ("DNS", "Domain Name System traffic (upd and tcp)"),
    ("HTTP", "Hypertext Transfer Protocol (WWW)"),
    ("HTTPS", "Hypertext Transfer Protocol (WWW) over SSL"),
    ("Ping", "ICMP echo request"),
    ("SSH", "Secure shell traffic"),
    ("SMTP", "Simple Mail Transfer Protocol"),
    ("NTP", "Network Time Protocol (ntpd)"),
    ("Ceph", "Ceph Storage Cluster traffic (Ceph Monitors, OSD & MDS Daemons)"),
)


@handles("GET", "/cluster/firewall/macros")
def firewall_macros(_ctx: Ctx) -> Any:
    return [{"macro": m, "descr": d} for m, d in MACROS]
