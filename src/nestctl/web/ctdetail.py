"""One container's page data: status, its nesting analysis (the `nestctl ct` engine: the same
parser, rules, fix and one verdict), history graphs and whether its firewall rules apply.

Fetched in the background as the visitor's identity; each part fails on its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nestctl.api import firewall as fw
from nestctl.api.actions import Api
from nestctl.web.snapshot import describe_error
from nestctl.web.sparkline import guest_charts


def ct_path(node: str, vmid: int) -> str:
    return f"/nodes/{quote(node, safe='')}/lxc/{int(vmid)}"


@dataclass
class CtDetail:
    node: str
    vmid: int
    taken: float = 0.0
    status: dict[str, Any] | None = None
    result: Any = None  # nestctl.ct.report.CtResult
    json: dict[str, Any] | None = None  # nestctl.ct.report.ct_json: what `nestctl ct --json` says
    charts: list[str] = field(default_factory=list)
    firewall: fw.Applies | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def fix_label(self) -> str | None:
        """The fix button's words ("Allow Docker"), or None when there is nothing to fix."""
        body = self.json or {}
        fix = body.get("fix")
        if not fix:
            return None
        text = str(fix.get("pct", ""))
        workloads = body.get("workloads") or {}
        if workloads.get("docker") is False and ("nesting" in text or "keyctl" in text):
            return "Allow Docker"
        if "/dev/kvm" in text:
            return "Pass /dev/kvm in"
        if "fuse=1" in text:
            return "Allow FUSE"
        if "nesting" in text:
            return "Allow nesting (systemd)"
        return "Apply the fix"

    @property
    def pending(self) -> bool:
        """Features changed but not yet in force (the CT runs with the old ones)."""
        return bool((self.json or {}).get("pending_features"))


def _get(api: Api, d: CtDetail, part: str, path: str, params: Any = None) -> Any:
    try:
        return api.request("GET", path, params)
    except Exception as exc:  # noqa: BLE001 - each part fails on its own, with its reason
        d.errors[part] = describe_error(exc)
        return None


def analyse(
    node: str, vmid: int, current: Any, pending: Any, status: Mapping[str, Any] | None
) -> tuple[Any, dict[str, Any]]:
    """The `nestctl ct` engine on this container's config (pure)."""
    from nestctl.ct.collect import config_from_api  # noqa: PLC0415 - the engine, lazily
    from nestctl.ct.report import analyse_ct, ct_json  # noqa: PLC0415

    conf = config_from_api(vmid, node, current, pending if isinstance(pending, list) else None)
    state = status.get("status") if status else None
    running = {"running": True, "stopped": False}.get(str(state))
    name = status.get("name") if status and isinstance(status.get("name"), str) else None
    result = analyse_ct(conf, running=running, name=name)
    return result, ct_json(result)


def fetch(api: Api, node: str, vmid: int) -> CtDetail:
    d = CtDetail(node, vmid)
    base = ct_path(node, vmid)
    status = _get(api, d, "status", f"{base}/status/current")
    d.status = dict(status) if isinstance(status, Mapping) else None
    current = _get(api, d, "config", f"{base}/config", {"current": 1})
    pending = _get(api, d, "pending", f"{base}/pending")
    if isinstance(current, Mapping):
        d.result, d.json = analyse(node, vmid, current, pending, d.status)
    rrd = _get(api, d, "history", f"{base}/rrddata", {"timeframe": "hour", "cf": "AVERAGE"})
    if rrd is not None:
        d.charts = guest_charts(rrd)
    conf = {str(k): str(v) for k, v in current.items()} if isinstance(current, Mapping) else None
    cluster = _get(api, d, "cluster firewall", "/cluster/firewall/options")
    own = _get(api, d, "CT firewall", f"{base}/firewall/options")
    d.firewall = fw.applies(
        {str(k): str(v) for k, v in cluster.items()} if isinstance(cluster, Mapping) else None,
        {str(k): str(v) for k, v in own.items()} if isinstance(own, Mapping) else None,
        conf,
        cluster_why=d.errors.get("cluster firewall", ""),
        vm_why=d.errors.get("CT firewall", ""),
        conf_why=d.errors.get("config", ""),
    )
    d.taken = time.time()
    return d
