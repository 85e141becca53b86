"""Node health endpoints: a node's rrddata and the firewall macro list.

Values follow pve-manager: `/nodes/{node}/rrddata` rows carry `cpu` (fraction), `loadavg`,
`memused`/`memtotal`, `rootused`/`roottotal` (PVE2::API2Tools rrd columns). A node's storages
(`/nodes/{node}/storage`) are api_backup.py's, from the cluster's storage model (storage.py).
"""

from __future__ import annotations

import time
from typing import Any

from tests.pvesim.handlers import Ctx, handles


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
