"""One VM's page data: status, pending changes, history, agent and firewall state.

Fetched in the background as the visitor's identity (each part on its own: a part Proxmox refuses
is shown as unknown with its reason, and the rest still shows).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nestctl.api import firewall as fw
from nestctl.api.actions import Api, vm_path
from nestctl.web.snapshot import describe_error
from nestctl.web.sparkline import guest_charts, series, svg


@dataclass
class VmDetail:
    node: str
    vmid: int
    taken: float = 0.0
    status: dict[str, Any] | None = None
    config: dict[str, str] | None = None  # with pending values applied, as Proxmox answers
    digest: str | None = None
    pending: list[dict[str, str]] = field(default_factory=list)
    cpu_svg: str = ""
    mem_svg: str = ""
    charts: list[str] = field(default_factory=list)  # the last hour, with axes
    agent: str = "unknown"  # "off", "not running", "responding", "not responding", "unknown"
    firewall: fw.Applies | None = None
    errors: dict[str, str] = field(default_factory=dict)  # part -> why it could not be read

    @property
    def needs_restart(self) -> bool:
        return any(p.get("pending") is not None or p.get("delete") for p in self.pending)


def _get(
    api: Api, detail: VmDetail, part: str, path: str, params: Mapping[str, Any] | None = None
) -> Any:
    try:
        return api.request("GET", path, params)
    except Exception as exc:  # noqa: BLE001 - each part fails on its own, with its reason
        detail.errors[part] = describe_error(exc)
        return None


def _str_map(value: Any) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def fetch(api: Api, node: str, vmid: int) -> VmDetail:
    d = VmDetail(node, vmid)
    base = vm_path(node, vmid)
    status = _get(api, d, "status", f"{base}/status/current")
    d.status = dict(status) if isinstance(status, Mapping) else None
    conf = _str_map(_get(api, d, "config", f"{base}/config"))
    if conf is not None:
        d.digest = conf.pop("digest", None)
        d.config = conf
    pending = _get(api, d, "pending", f"{base}/pending")
    for row in pending if isinstance(pending, list) else []:
        if isinstance(row, Mapping) and ("pending" in row or row.get("delete")):
            d.pending.append({str(k): "" if v is None else str(v) for k, v in row.items()})
    rrd = _get(api, d, "history", f"{base}/rrddata", {"timeframe": "hour", "cf": "AVERAGE"})
    if rrd is not None:
        d.cpu_svg = svg(series(rrd, "cpu"))
        d.mem_svg = svg(series(rrd, "mem", scale_by="maxmem"))
        d.charts = guest_charts(rrd)
    d.agent = _agent_state(api, d, base)
    d.firewall = _applies(api, d, base, conf)
    d.taken = time.time()
    return d


def _applies(api: Api, d: VmDetail, base: str, conf: dict[str, str] | None) -> fw.Applies:
    cluster = _str_map(_get(api, d, "cluster firewall", "/cluster/firewall/options"))
    vmfw = _str_map(_get(api, d, "VM firewall", f"{base}/firewall/options"))
    return fw.applies(
        cluster,
        vmfw,
        conf,
        cluster_why=d.errors.get("cluster firewall", ""),
        vm_why=d.errors.get("VM firewall", ""),
        conf_why=d.errors.get("config", ""),
    )


def fetch_firewall_applies(api: Api, node: str, vmid: int) -> fw.Applies:
    """Only the three switches (for the firewall page)."""
    d = VmDetail(node, vmid)
    base = vm_path(node, vmid)
    conf = _str_map(_get(api, d, "config", f"{base}/config"))
    return _applies(api, d, base, conf)


def _agent_state(api: Api, d: VmDetail, base: str) -> str:
    if d.status is None:
        return "unknown"
    if not d.status.get("agent"):
        return "off"
    if d.status.get("status") != "running":
        return "not running"
    try:
        api.request("POST", f"{base}/agent/ping")
    except Exception as exc:  # noqa: BLE001
        d.errors["agent"] = describe_error(exc)
        return "not responding" if getattr(exc, "status", None) == 500 else "unknown"
    return "responding"
