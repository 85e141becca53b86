"""A `TargetView` from an API scan of one target (the tree's API collector)."""

from __future__ import annotations

from nestctl.findings import Severity
from nestctl.tree.views import NodeView, TargetView, VmView, node_verdict, smbios_uuid
from nestctl.vm.analyse import node_findings
from nestctl.vm.collect.api import ApiScan
from nestctl.vm.facts import VmOptions


def view_from_scan(
    name: str, parent: tuple[str, int] | None, scan: ApiScan, opts: VmOptions
) -> TargetView:
    from nestctl.vm.remote import analyse_remote  # noqa: PLC0415

    results, _findings = analyse_remote(scan, opts)
    uuids = {v.config.vmid: smbios_uuid(v.config.current().get("smbios1")) for v in scan.vms}
    nodes = []
    for report in scan.node_reports:
        facts = scan.nodes.get(report.node)
        findings = report.findings + (node_findings(facts) if facts is not None else [])
        view = NodeView(report.node, node_verdict(findings), findings)
        view.product_uuid = report.nested.product_uuid  # known with --ssh
        nodes.append(view)
    vms = [
        VmView(
            r.vmid,
            r.name,
            r.node,
            node_verdict([f for f in r.findings if f.severity is not Severity.INFO]),
            r.broken_link,
            uuids.get(r.vmid),
        )
        for r in results
    ]
    return TargetView(name, parent, nodes, vms)
