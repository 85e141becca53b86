"""A node's health for its page: CPU, load, RAM, root disk, uptime, PVE version, each storage's
usage, and history graphs (hour, day or week from rrddata).

Fetched in the background as the visitor's identity; each part fails on its own (shown as not
read, with the reason), so a refused storage list does not hide the node's numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nestctl.api.actions import Api
from nestctl.web.snapshot import _num, describe_error
from nestctl.web.sparkline import TIMEFRAMES, chart, series

WARN_AT = 0.80  # a storage fuller than this is a warning
ERROR_AT = 0.90  # and this an error


def usage_level(fraction: float | None) -> str:
    """ "ok", "warning" (> 80%), "error" (> 90%), or "unknown"."""
    if fraction is None:
        return "unknown"
    if fraction > ERROR_AT:
        return "error"
    if fraction > WARN_AT:
        return "warning"
    return "ok"


@dataclass(frozen=True)
class Usage:
    used: float | None
    total: float | None

    @property
    def fraction(self) -> float | None:
        if self.used is None or not self.total:
            return None
        return self.used / self.total

    @property
    def pct(self) -> float | None:
        f = self.fraction
        return None if f is None else round(f * 100.0, 1)

    @property
    def level(self) -> str:
        return usage_level(self.fraction)


@dataclass(frozen=True)
class Storage:
    name: str
    type: str
    content: str
    shared: bool
    active: bool
    usage: Usage


@dataclass
class NodeHealth:
    node: str
    timeframe: str = "hour"
    taken: float = 0.0
    cpu: float | None = None  # fraction of all CPUs
    cpus: int | None = None
    load: list[str] = field(default_factory=list)  # 1, 5, 15 minutes
    memory: Usage = field(default_factory=lambda: Usage(None, None))
    rootfs: Usage = field(default_factory=lambda: Usage(None, None))
    uptime: float | None = None
    pveversion: str | None = None
    kernel: str | None = None
    storages: list[Storage] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # SVG, drawn from numbers only
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def worst_storage(self) -> str:
        levels = [s.usage.level for s in self.storages]
        for level in ("error", "warning"):
            if level in levels:
                return level
        return "ok"


def _get(api: Api, h: NodeHealth, part: str, path: str, params: Any = None) -> Any:
    try:
        return api.request("GET", path, params)
    except Exception as exc:  # noqa: BLE001 - each part fails on its own, with its reason
        h.errors[part] = describe_error(exc)
        return None


def _usage(value: Any) -> Usage:
    if not isinstance(value, Mapping):
        return Usage(None, None)
    return Usage(_num(value.get("used")), _num(value.get("total")))


def parse_storages(rows: Any) -> list[Storage]:
    out: list[Storage] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping) or not isinstance(row.get("storage"), str):
            continue
        out.append(
            Storage(
                row["storage"],
                str(row.get("type", "")),
                str(row.get("content", "")),
                bool(_num(row.get("shared"))),
                _num(row.get("active")) != 0,
                Usage(_num(row.get("used")), _num(row.get("total"))),
            )
        )
    return sorted(out, key=lambda s: s.name)


def fetch(api: Api, node: str, timeframe: str = "hour") -> NodeHealth:
    tf = timeframe if timeframe in TIMEFRAMES else "hour"
    h = NodeHealth(node, tf)
    base = f"/nodes/{quote(node, safe='')}"
    status = _get(api, h, "status", f"{base}/status")
    if isinstance(status, Mapping):
        h.cpu = _num(status.get("cpu"))
        info = status.get("cpuinfo")
        cpus = _num(info.get("cpus")) if isinstance(info, Mapping) else None
        h.cpus = int(cpus) if cpus else None
        load = status.get("loadavg")
        h.load = [str(x) for x in load] if isinstance(load, list) else []
        h.memory = _usage(status.get("memory"))
        h.rootfs = _usage(status.get("rootfs"))
        h.uptime = _num(status.get("uptime"))
        pve = status.get("pveversion")
        h.pveversion = pve if isinstance(pve, str) else None
        kernel = status.get("kversion")
        h.kernel = kernel if isinstance(kernel, str) else None
    h.storages = parse_storages(_get(api, h, "storage", f"{base}/storage"))
    rrd = _get(api, h, "history", f"{base}/rrddata", {"timeframe": tf, "cf": "AVERAGE"})
    if rrd is not None:
        load_points = series(rrd, "loadavg")
        h.charts = [
            chart(series(rrd, "cpu"), title="CPU", timeframe=tf),
            chart(
                load_points,
                title="Load",
                unit="",
                top=1.0,  # scaled to the peak: a load line flat at the bottom says nothing
                timeframe=tf,
            ),
            chart(series(rrd, "memused", scale_by="memtotal"), title="Memory", timeframe=tf),
            chart(series(rrd, "rootused", scale_by="roottotal"), title="Root disk", timeframe=tf),
        ]
    h.taken = time.time()
    return h
