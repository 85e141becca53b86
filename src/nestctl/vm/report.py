"""`nestctl vm` on this node: the local collector, the one analysis, the report.

The layers live in their own modules: `facts.py` (what is analysed), `collect/` (local files,
the cluster file system, the API), `analyse.py` (pure), `render.py` (JSON and tables),
`guestview.py` (the guest agent's view) and `enable.py` (`vm enable`). This module wires them
for a local run and keeps the names older callers import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, Report
from nestctl.machine import Host
from nestctl.vm.analyse import (
    RESTART_KEYS,
    VmContext,
    VmResult,
    analyse_vm,
    context_for,
    effective_cpu,
    node_findings,
)
from nestctl.vm.collect.local import collect_local
from nestctl.vm.enable import EnableOptions, enable_report
from nestctl.vm.facts import ScanFacts, VmFacts, VmOptions
from nestctl.vm.render import build_report, report_payload, sections, summary

if TYPE_CHECKING:
    from nestctl.host.probe import HostFacts
    from nestctl.vm.guestview import OpenAgent

#: Opens the guest agent of VM `vmid` on `node` (API runs).
AgentsFor = Callable[[str | None, int], "OpenAgent"]

__all__ = [
    "RESTART_KEYS",
    "EnableOptions",
    "VmContext",
    "VmOptions",
    "VmResult",
    "analyse_scan",
    "analyse_vm",
    "collect",
    "effective_cpu",
    "enable_report",
    "report_payload",
    "sections",
    "summary",
]


def analyse_scan(
    scan: ScanFacts,
    opts: VmOptions,
    *,
    host: Host | None = None,
    agents: AgentsFor | None = None,
) -> tuple[list[VmResult], list[Finding]]:
    """Every VM of a scan through the one analysis; `host` (local runs) adds QEMU and the agent
    socket, `agents` (API runs) opens each VM's agent through the API.

    Returns the results and the top-level findings (scan, node, unreadable configs), in that
    order.
    """
    from nestctl.vm.analyse import finish_vm, unreachable_result  # noqa: PLC0415
    from nestctl.vm.oracle import oracle_for, prefetch  # noqa: PLC0415
    from nestctl.vm.verdict import settle  # noqa: PLC0415

    named = bool(opts.vmids)
    findings = list(scan.findings)
    contexts: dict[str | None, VmContext] = {}
    per_node: dict[str | None, list[Finding]] = {}
    for name, node in scan.nodes.items():
        oracle = None
        if host is not None:
            oracle = oracle_for(host, opts.use_qemu, node.vendor if node.cpuinfo_known else None)
        contexts[name] = context_for(node, opts, named=named, oracle=oracle)
        prefix = f"node {name}: " if len(scan.nodes) > 1 else ""
        per_node[name] = [f.with_message(prefix + f.message) for f in node_findings(node)]
    local = contexts.get(None)
    for each in contexts.values():
        prefetch(each, [v for v in scan.vms if contexts.get(v.config.node, local) is each])
    results: list[VmResult] = []
    views: dict[int, tuple[dict[str, Any] | None, list[Finding]]] = {}

    def one(vm: VmFacts, ctx: VmContext) -> VmResult:
        result = analyse_vm(vm.config, vm.run, ctx)
        if opts.guest and (host is not None or agents is not None):
            from nestctl.vm import guestview  # noqa: PLC0415

            if vm.config.vmid in views:  # asked once; a second analysis reuses the answer
                result.guest, notes = views[vm.config.vmid]
            elif host is not None:
                result.guest, notes = guestview.guest_view(host, result, vm.config, vm.run, ctx)
            else:
                assert agents is not None
                result.guest, notes = remote_guest(agents, result, vm, ctx)
            views[vm.config.vmid] = (result.guest, notes)
            result.findings += notes
            guestview.join_guest_view(result)
        return finish_vm(result, ctx)

    for vm in scan.vms:
        ctx = contexts.get(vm.config.node, local)
        if ctx is None:  # a collector gives every VM's node; a missing one is our bug
            raise KeyError(f"no facts for node {vm.config.node}")
        results.append(one(vm, ctx))
    if agents is not None:
        results = _with_guest_evidence(
            scan, opts, results, contexts=contexts, per_node=per_node, one=one
        )
    # A node's nesting findings matter only where one of its VMs wants nesting.
    wanting = {r.node if r.node in per_node else None for r in results if r.intent.wants_nested}
    for name, notes in per_node.items():
        findings += settle(notes, strict=opts.all_vms or name in wanting)
    findings += scan.config_findings
    if scan.unreachable:
        results += [unreachable_result(u) for u in scan.unreachable]
        results.sort(key=lambda r: r.vmid)
    return results, findings


def _with_guest_evidence(
    scan: ScanFacts,
    opts: VmOptions,
    results: list[VmResult],
    *,
    contexts: dict[str | None, VmContext],
    per_node: dict[str | None, list[Finding]],
    one: Callable[[VmFacts, VmContext], VmResult],
) -> list[VmResult]:
    """A running KVM guest that sees vmx/svm (its agent) shows its node's `nested` is on now:
    where nothing better said so (unknown, or only pvestatd's dated listing), that node's VMs
    are analysed again with it, and `scan.evidence` names the VM that showed it."""
    import dataclasses  # noqa: PLC0415

    from nestctl.vm.analyse import kvm_on  # noqa: PLC0415
    from nestctl.vm.collect.evidence import guest_evidence  # noqa: PLC0415

    by_vmid = {v.config.vmid: v for v in scan.vms}
    seen = guest_evidence(
        results, lambda r: r.vmid in by_vmid and kvm_on(by_vmid[r.vmid].config.current())
    )
    changed: set[str | None] = set()
    for name, why in seen.items():
        node = scan.nodes.get(name)
        dated = node is not None and (node.nested_decided_by or "").startswith("cpu-flags")
        if node is None or not (node.nested_live is None or dated):
            continue
        node = dataclasses.replace(node, nested_live=True, nested_decided_by=why)
        scan.nodes[name] = node
        scan.evidence[name] = why
        contexts[name] = context_for(node, opts, named=bool(opts.vmids))
        prefix = f"node {name}: " if len(scan.nodes) > 1 else ""
        per_node[name] = [f.with_message(prefix + f.message) for f in node_findings(node)]
        changed.add(name)
    if not changed:
        return results
    again = {v.config.vmid: v for v in scan.vms if v.config.node in changed}
    return [one(again[r.vmid], contexts[r.node]) if r.vmid in again else r for r in results]


def remote_guest(
    agents: AgentsFor, r: VmResult, vm: VmFacts, ctx: VmContext
) -> tuple[dict[str, Any] | None, list[Finding]]:
    from nestctl.findings import info  # noqa: PLC0415
    from nestctl.parse import proxmox_bool  # noqa: PLC0415
    from nestctl.vm.guestview import guest_view_through, not_running  # noqa: PLC0415

    if not r.running:
        return None, [not_running(r.vmid)]
    agent = vm.config.current().get("agent", "0").split(",")[0].removeprefix("enabled=")
    if proxmox_bool(agent) is not True:
        return None, [
            info(
                "vm.guest.no-agent",
                f"VM {r.vmid}: the guest agent is not enabled in the config: the guest's own "
                f"view needs agent: 1 and qemu-guest-agent running in the guest.",
                f"qm set {r.vmid} --agent 1",
            )
        ]
    return guest_view_through(agents(r.node, r.vmid), r, vm.config, vm.run, ctx)


def collect(host: Host, opts: VmOptions, *, host_facts: HostFacts | None = None) -> Report:
    """The whole `nestctl vm` report for the VMs asked (default: every VM on this node).

    `host_facts` saves probing the host a second time when the caller (doctor) has them.
    """
    scan = collect_local(host, opts, host_facts)
    results, findings = analyse_scan(scan, opts, host=host)
    return build_report(results, findings, guest=opts.guest, with_sections=opts.sections)
