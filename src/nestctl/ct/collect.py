"""Gather container configs: locally through the `Host` door (`/etc/pve/lxc`, /proc/net/unix,
/dev/kvm), or over the Proxmox API (`/cluster/resources` once, then each CT's config and
pending values). Both end in the same `analyse_ct`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nestctl.ct.config import (
    CtConfig,
    active_containers,
    ct_config_paths,
    read_ct_config,
)
from nestctl.ct.report import CtResult, analyse_ct, build_report
from nestctl.findings import Finding, Report, Verdict, info, unknown
from nestctl.parse import parse_uint
from nestctl.vm.config import config_access_problem, local_node
from nestctl.vm.intent import DEFAULT_TAG

if TYPE_CHECKING:
    from nestctl.api.client import ApiClient
    from nestctl.machine import Host
    from nestctl.vm.facts import VmOptions


@dataclass(frozen=True)
class CtOptions:
    vmids: tuple[int, ...] = ()
    all_nodes: bool = False
    all_cts: bool = False  # judge every CT as if it wanted nesting (--all)
    tag: str = DEFAULT_TAG
    sections: bool = True


@dataclass
class CtScan:
    """What was gathered: configs with their running state, and what went wrong around them."""

    configs: list[tuple[CtConfig, bool | None, str | None]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    node_kvm: dict[str | None, bool | None] = field(default_factory=dict)
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)
    known: set[int] = field(default_factory=set)  # every CTID seen (for "did you mean")


def not_found(vmid: int, known: set[int], where: str = "on this cluster") -> Finding:
    """An unknown CTID: nothing was checked (exit 2), in the VMs' words (nestctl.vm.notfound)."""
    from nestctl.vm.notfound import did_you_mean  # noqa: PLC0415

    guesses = did_you_mean(vmid, known)
    message = f"no CT {vmid} {where}"
    if guesses:
        message += f" (did you mean {' or '.join(str(g) for g in guesses)}?)"
    return unknown("ct.not-found", message)


def ct_options(vm_opts: VmOptions, *, all_nodes: bool = True) -> CtOptions:
    """The containers' options for a run over VMs (doctor, tree, metrics): the same intent tag,
    --all-vms judges every container too."""
    return CtOptions(
        all_nodes=all_nodes,
        all_cts=vm_opts.all_vms,
        tag=vm_opts.intent_tag,
        sections=vm_opts.sections,
    )


def add_cts(report: Report, cts: Report) -> None:
    """Join a container report into a doctor report: `cts`, its findings, the worse verdict."""
    from nestctl.vm.verdict import overall  # noqa: PLC0415

    report.payload["cts"] = cts.payload.get("cts", [])
    report.findings += cts.findings
    report.sections += cts.sections
    if cts.payload["cts"] or cts.findings:
        report.verdict = Verdict(overall([report.final_verdict.value, cts.final_verdict.value]))


def analyse(scan: CtScan, opts: CtOptions) -> tuple[list[CtResult], list[Finding]]:
    results = []
    for conf, running, name in scan.configs:
        result = analyse_ct(
            conf,
            running=running,
            all_cts=opts.all_cts,
            tag=opts.tag,
            node_kvm=scan.node_kvm.get(conf.node, scan.node_kvm.get(None)),
            name=name,
        )
        result.extra = scan.extra.get(conf.vmid, {})
        results.append(result)
    findings = list(scan.findings)
    found = {c.vmid for c, _r, _n in scan.configs}
    findings += [not_found(v, scan.known) for v in opts.vmids if v not in found]
    return results, findings


def ct_report(scan: CtScan, opts: CtOptions) -> Report:
    results, findings = analyse(scan, opts)
    return build_report(results, findings, with_sections=opts.sections)


# -- local --------------------------------------------------------------------------------------


def scan_local(host: Host, opts: CtOptions) -> CtScan:
    scan = CtScan()
    problem = config_access_problem(host)
    if problem is not None:
        scan.findings.append(unknown("ct.configs-unreadable", problem))
        return scan
    if not host.is_dir("/etc/pve"):
        scan.findings.append(
            info("ct.not-proxmox", "not a Proxmox VE node (no /etc/pve): no containers to check")
        )
        return scan
    node = local_node(host)
    paths = ct_config_paths(host, node, all_nodes=opts.all_nodes)
    if not paths:  # no containers: nothing more to read (not even /proc/net/unix)
        return scan
    active = active_containers(host)
    if active is None:
        scan.findings.append(
            unknown(
                "ct.running-unknown",
                "/proc/net/unix could not be read, so whether containers run is unknown",
            )
        )
    scan.node_kvm[node] = host.exists("/dev/kvm").present
    for path in paths:
        conf = read_ct_config(host, path, node)
        scan.known.add(conf.vmid)
        if opts.vmids and conf.vmid not in opts.vmids:
            continue
        here = conf.node in (node, None)
        running = (conf.vmid in active) if (active is not None and here) else None
        scan.configs.append((conf, running, None))
    return scan


def collect_local(host: Host, opts: CtOptions) -> Report:
    return ct_report(scan_local(host, opts), opts)


# -- over the API ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def config_from_api(
    vmid: int, node: str, current: Mapping[str, Any], pending: Iterable[Any] | None
) -> CtConfig:
    """A `CtConfig` from GET config (current=1) and GET pending: the same record a file gives."""
    conf = CtConfig(vmid=vmid, path=f"/nodes/{node}/lxc/{vmid}/config", node=node)
    conf.digest = str(current.get("digest") or "")
    for key, value in current.items():
        if key in ("digest", "lxc"):
            continue
        if isinstance(value, (str, int, float)):
            conf.main[str(key)] = _text(value)
    raw = current.get("lxc")
    if isinstance(raw, list):
        conf.lxc = [(str(p[0]), str(p[1])) for p in raw if isinstance(p, list) and len(p) == 2]
    for entry in pending or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
            continue
        if "pending" in entry and isinstance(entry["pending"], (str, int, float)):
            conf.pending[entry["key"]] = _text(entry["pending"])
        if entry.get("delete") in (1, 2, "1", "2"):
            conf.pending_delete.append((entry["key"], entry["delete"] in (2, "2")))
    return conf


def lxc_rows(resources: Any, vmids: tuple[int, ...]) -> list[Mapping[str, Any]]:
    rows = []
    for r in resources if isinstance(resources, list) else []:
        if not isinstance(r, Mapping) or r.get("type") != "lxc":
            continue
        vmid = parse_uint(str(r.get("vmid", "")))
        if vmid is None or not isinstance(r.get("node"), str):
            continue
        if vmids and vmid not in vmids:
            continue
        rows.append({**r, "vmid": vmid})
    return sorted(rows, key=lambda r: int(r["vmid"]))


def scan_api(
    client: ApiClient,
    opts: CtOptions,
    *,
    concurrency: int = 8,
    resources: Any = None,
) -> CtScan:
    """Every container the cluster lists (or those asked): one config + one pending per CT."""
    from nestctl.api.errors import (  # noqa: PLC0415
        ApiConnectionError,
        ApiError,
        ApiNodeUnreachableError,
    )

    scan = CtScan()
    if resources is None:
        resources = client.get("/cluster/resources", type="vm")
    rows = lxc_rows(resources, opts.vmids)
    scan.known = {int(r["vmid"]) for r in lxc_rows(resources, ())}

    def fetch(row: Mapping[str, Any]) -> tuple[CtConfig, bool | None, str | None]:
        vmid, node = int(row["vmid"]), str(row["node"])
        base = f"/nodes/{node}/lxc/{vmid}"
        status = row.get("status")
        running = {"running": True, "stopped": False}.get(str(status))
        name = str(row["name"]) if isinstance(row.get("name"), str) else None
        if status == "unknown":  # its node is offline: /cluster/resources knows no more
            conf = CtConfig(vmid=vmid, path=f"{base}/config", node=node, readable=False)
            conf.unreachable = True
            conf.problems.append(f"node {node} is not reachable")
            return conf, None, name
        try:
            current = client.get(f"{base}/config", current=1)
            pending = client.get(f"{base}/pending")
        except ApiError as exc:
            conf = CtConfig(vmid=vmid, path=f"{base}/config", node=node, readable=False)
            conf.unreachable = isinstance(exc, (ApiNodeUnreachableError, ApiConnectionError))
            conf.problems.append(str(exc))
            return conf, running, name
        if not isinstance(current, Mapping):
            conf = CtConfig(vmid=vmid, path=f"{base}/config", node=node, readable=False)
            conf.problems.append("the API's answer is not a config")
            return conf, running, name
        pend = pending if isinstance(pending, list) else None
        return config_from_api(vmid, node, current, pend), running, name

    workers = max(1, min(concurrency, len(rows) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        scan.configs = list(pool.map(fetch, rows))
    for row in rows:
        scan.extra[int(row["vmid"])] = _live(row)
    return scan


def _live(row: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers `/cluster/resources` gives (for the dashboard), under stable keys."""
    out: dict[str, Any] = {"id": f"lxc/{row['vmid']}", "status": row.get("status")}
    for key in ("cpu", "maxcpu", "mem", "maxmem", "uptime"):
        value = row.get(key)
        out[key] = (
            value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        )
    return out


def ct_report_api(client: ApiClient, opts: CtOptions, *, concurrency: int = 8) -> Report:
    return ct_report(scan_api(client, opts, concurrency=concurrency), opts)


def unknown_report(message: str) -> Report:
    """No data at all (the API could not be reached): exit 2 with the one sentence."""
    report = build_report([], [unknown("ct.unreachable", message)])
    report.verdict = Verdict.UNKNOWN
    return report


CollectFn = Callable[[CtOptions], Report]
