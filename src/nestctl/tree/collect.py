"""A `TargetView` from an API scan of one target (the tree's API collector)."""

from __future__ import annotations

from typing import Any

from nestctl.tree.views import NodeView, TargetView, node_verdict, smbios_uuid, vm_view
from nestctl.vm.analyse import VmResult, node_findings
from nestctl.vm.collect.api import ApiScan
from nestctl.vm.facts import VmOptions
from nestctl.vm.verdict import settle


def _vm_body(r: VmResult) -> dict[str, Any]:
    body = r.to_json()
    body["guest"] = r.guest
    return body


def view_from_scan(
    name: str, parent: tuple[str, int] | None, scan: ApiScan, opts: VmOptions
) -> TargetView:
    from nestctl.vm.remote import analyse_remote  # noqa: PLC0415

    results, _findings = analyse_remote(scan, opts)
    uuids = {v.config.vmid: smbios_uuid(v.config.current().get("smbios1")) for v in scan.vms}
    nodes = []
    wanting = {r.node for r in results if r.intent.wants_nested or opts.all_vms}
    for report in scan.node_reports:
        facts = scan.nodes.get(report.node)
        findings = report.findings + (node_findings(facts) if facts is not None else [])
        # A node's nesting findings matter only where one of its VMs wants nesting.
        findings = settle(findings, strict=report.node in wanting)
        view = NodeView(report.node, node_verdict(findings), findings)
        view.product_uuid = report.nested.product_uuid  # known with --ssh
        view.nested = report.nested.to_json()
        nodes.append(view)
    vms = [vm_view(_vm_body(r), uuids.get(r.vmid), all_vms=opts.all_vms) for r in results]
    target = TargetView(name, parent, nodes, vms)
    if scan.ct_scan is not None:
        from nestctl.ct.collect import ct_options, ct_report  # noqa: PLC0415

        target.cts = ct_report(scan.ct_scan, ct_options(opts)).payload["cts"]
    return target
