"""`nestctl vm --api` and `nestctl doctor --api`: the API scan through the one analysis.

A node or VM that could not be read is a finding in its place; the verdict is that of what was
checked, and unknown (exit 2) only when nothing at all could be checked.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, Report, Section, Verdict
from nestctl.vm.analyse import VmResult, node_findings
from nestctl.vm.collect.api import ApiScan, warn_partial
from nestctl.vm.facts import VmOptions
from nestctl.vm.render import build_report

if TYPE_CHECKING:
    from nestctl.vm.report import AgentsFor

#: Findings about parts of the cluster that could not be read: they do not decide the verdict
#: of the parts that were checked (each stays on its node or VM).
PARTIAL = frozenset({"api.node.offline", "api.node.unreachable", "vm.unreachable"})

SUMMARIES = {
    Verdict.READY: "every VM checked is ready for nested virtualization",
    Verdict.NOT_READY: "some VMs are not ready (see the errors below, each with its fix)",
    Verdict.UNKNOWN: "the cluster could not be checked (see the findings below)",
}


def analyse_remote(
    scan: ApiScan, opts: VmOptions, agents: AgentsFor | None = None
) -> tuple[list[VmResult], list[Finding]]:
    from nestctl.vm.report import analyse_scan  # noqa: PLC0415

    results, findings = analyse_scan(scan, opts, agents=agents)
    for report in scan.node_reports:  # a guest's own view showed this node's nested on
        if report.node in scan.evidence:
            report.nested = dataclasses.replace(
                report.nested, live=True, decided_by=scan.evidence[report.node], problem=None
            )
    api_findings = [f for r in scan.node_reports for f in r.findings]
    return results, api_findings + findings + warn_partial(scan)


def _verdict(scan: ApiScan, findings: list[Finding], results: list[VmResult]) -> Verdict:
    """Partial reads (an offline node, an unreadable VM) do not decide the verdict of what was
    checked; each VM counts with its one verdict (`judge_vm`)."""
    from nestctl.vm.render import report_verdict  # noqa: PLC0415

    if not scan.vms and not any(r.reachable for r in scan.node_reports):
        return Verdict.UNKNOWN
    reached = [r for r in results if "vm.unreachable" not in {f.code for f in r.findings}]
    return report_verdict(reached, findings, PARTIAL)


def vm_report(scan: ApiScan, opts: VmOptions, agents: AgentsFor | None = None) -> Report:
    results, findings = analyse_remote(scan, opts, agents)
    report = build_report(results, findings, guest=opts.guest, with_sections=opts.sections)
    report.verdict = _verdict(scan, findings, results)
    return report


def doctor_report(scan: ApiScan, opts: VmOptions, agents: AgentsFor | None = None) -> Report:
    """`{"nodes": [...], "vms": [...], "findings": [...], "verdict": ...}` (issue 13)."""
    results, findings = analyse_remote(scan, opts, agents)
    vrep = build_report(results, findings, guest=opts.guest, with_sections=opts.sections)
    nodes: list[dict[str, Any]] = []
    rows: list[Section] = []
    from nestctl.vm.verdict import settle  # noqa: PLC0415

    wanting = {r.node for r in results if r.intent.wants_nested or opts.all_vms}
    for node in scan.node_reports:
        facts = scan.nodes.get(node.node)
        # A node's nesting findings matter only where one of its VMs wants nesting.
        extra = settle(node_findings(facts), strict=node.node in wanting) if facts else []
        body = node.to_json()
        body["findings"] += [f.to_json() for f in extra]
        nodes.append(body)
        live = {True: "Y", False: "N", None: "unknown"}[node.nested.live]
        rows.append(
            Section(
                f"node {node.node}",
                (
                    ("reachable", "yes" if node.reachable else "no"),
                    ("vendor", node.vendor or "unknown"),
                    ("nested (live)", live if node.reachable else "-"),
                ),
            )
        )
    report = Report(
        title="doctor",
        payload={"nodes": nodes, "vms": vrep.payload["vms"]},
        findings=vrep.findings,
        sections=rows + vrep.sections,
        summaries=dict(SUMMARIES),
    )
    report.verdict = _verdict(scan, findings, results)
    if scan.ct_scan is not None:  # containers, when the scan read them (doctor, tree, metrics)
        from nestctl.ct.collect import add_cts, ct_options, ct_report  # noqa: PLC0415

        add_cts(report, ct_report(scan.ct_scan, ct_options(opts)))
    return report
