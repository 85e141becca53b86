"""The doctor: the host report and the VM report joined into one view of every layer.

JSON: ``{"host": {...}, "proxmox": bool, "vms": [...], "findings": [...], "verdict": ...}``; the
`host` and per-VM objects are exactly those of `nestctl host --json` and `nestctl vm --json`.
"""

from __future__ import annotations

from nestctl.bench import RESULTS_DIR
from nestctl.findings import Finding, Report, Verdict, info
from nestctl.host.probe import probe_host
from nestctl.host.report import report_from_facts
from nestctl.machine import Host

#: What marks a Proxmox VE node: the cluster file system's VM directory or the qm tool.
#: /etc/pve alone counts: an empty one means pmxcfs is not mounted, which the VM layer reports.
PVE_MARKERS = ("/etc/pve/qemu-server", "/etc/pve/nodes", "/usr/sbin/qm", "/etc/pve")

SUMMARIES = {
    Verdict.READY: "every layer checked is ready for nested virtualization",
    Verdict.NOT_READY: "a layer is not ready (see the errors below, each with its fix)",
    Verdict.UNKNOWN: "some layers could not be checked (see the warnings below)",
}


def is_proxmox_node(host: Host) -> bool:
    return any(host.exists(p).present is True for p in PVE_MARKERS)


def bench_findings(host: Host) -> list[Finding]:
    """A line for each recent saved benchmark (`nestctl bench --save`) showing a pathological
    ratio or software emulation. Without result files the bench modules are never imported."""
    if not host.glob(RESULTS_DIR, "*.json").names:
        return []
    from nestctl.bench.feed import doctor_findings, recent_results  # noqa: PLC0415 - lazy

    return doctor_findings(recent_results(host))


def doctor_report(
    host: Host,
    *,
    guests: bool = False,
    all_nodes: bool = False,
    use_qemu: bool | None = None,
    all_vms: bool = False,
    intent_tag: str = "nested",
) -> Report:
    facts = probe_host(host)
    hrep = report_from_facts(facts)
    report = Report(
        title="doctor",
        payload={**hrep.payload, "proxmox": False, "vms": [], "cts": []},
        findings=list(hrep.findings),
        sections=list(hrep.sections),
        summaries=dict(SUMMARIES),
    )
    report.findings += bench_findings(host)
    if not is_proxmox_node(host):
        report.findings.append(
            info(
                "doctor.not-proxmox",
                "not a Proxmox VE node (no /etc/pve, no qm): only the host layer was checked",
            )
        )
        return report

    from nestctl.findings import verdict_for  # noqa: PLC0415
    from nestctl.vm.report import VmOptions, collect  # noqa: PLC0415 - only on a PVE node
    from nestctl.vm.verdict import overall, settle  # noqa: PLC0415

    vrep = collect(
        host,
        VmOptions(
            all_nodes=all_nodes,
            use_qemu=use_qemu,
            guest=guests,
            all_vms=all_vms,
            intent_tag=intent_tag,
        ),
        host_facts=facts,
    )
    report.payload["proxmox"] = True
    report.payload["vms"] = vrep.payload.get("vms", [])
    # On a Proxmox node the host's nested setting matters only for VMs that want nesting.
    wanting = all_vms or any(v.get("wants_nested") for v in report.payload["vms"])
    report.findings = settle(report.findings, strict=wanting)
    report.verdict = Verdict(overall([verdict_for(report.findings).value, vrep.final_verdict]))
    # The VM report repeats host facts (nested off/unknown) as its own findings: keep one copy.
    host_codes = {"vm.host.nested-off", "vm.host.nested-unknown", "vm.host.cpuinfo"}
    report.findings += [f for f in vrep.findings if f.code not in host_codes]
    report.sections += vrep.sections
    from nestctl.ct.collect import CtOptions, add_cts, collect_local  # noqa: PLC0415

    copts = CtOptions(all_nodes=all_nodes, all_cts=all_vms, tag=intent_tag)
    add_cts(report, collect_local(host, copts))
    return report
