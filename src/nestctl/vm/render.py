"""The `nestctl vm` report from analysed VMs: the JSON payload and the human view."""

from __future__ import annotations

from typing import Any

from nestctl.findings import Finding, Report, Section, Severity, Verdict, verdict_for
from nestctl.vm.analyse import VmResult


def report_payload(results: list[VmResult], *, guest: bool = False) -> dict[str, Any]:
    vms = []
    for r in results:
        body = r.to_json()
        if guest:
            body["guest"] = r.guest
        vms.append(body)
    return {"vms": vms}


def summary(results: list[VmResult]) -> str:
    exposed = sum(1 for r in results if r.nested.exposed)
    restart = sum(1 for r in results if r.restart_required)
    text = f"{exposed} of {len(results)} VM(s) give the guest vmx/svm"
    if restart:
        text += f", {restart} need a restart (qm reboot)"
    return text


def sections(results: list[VmResult]) -> list[Section]:
    out = []
    for r in results:
        rows = [
            ("node", r.node or "local"),
            ("running", "yes" if r.running else "no"),
            ("-cpu (config)", r.cpu_arg or "refused by Proxmox"),
        ]
        if r.cpu_arg_pending is not None:
            rows.append(("-cpu (pending)", r.cpu_arg_pending))
        if r.running_cpu_arg is not None:
            rows.append(("-cpu (running)", r.running_cpu_arg))
        if r.lock:
            rows.append(("lock", r.lock))
        shown = {True: "yes", False: "no", None: "unknown"}[r.nested.exposed]
        flag = f"{r.nested.flag}, " if r.nested.flag else ""
        rows.append(("guest gets vmx/svm", f"{shown} ({flag}answered by {r.nested.source})"))
        rows.append(("why", r.nested.reason))
        rows.append(("chain", " -> ".join(f"{k}:{v}" for k, v in r.chain.items())))
        if r.restart_required:
            rows.append(("restart required", f"yes: qm reboot {r.vmid}"))
        if r.guest is not None:
            g = r.guest
            kvm_usable = g.get("kvm_usable")
            usable = "unknown" if kvm_usable is None else "usable" if kvm_usable else "not usable"
            seen = f"{g.get('virt_flag') or 'no vmx/svm'}, /dev/kvm {usable}"
            rows.append(("guest says (agent)", f"{seen}, accel {g.get('accel')}"))
        # Errors and warnings are listed under Findings; notes stay with their VM.
        rows += [("note", f.message) for f in r.findings if f.severity is Severity.INFO]
        title = f"VM {r.vmid}" + (f" ({r.name})" if r.name else "")
        out.append(Section(title, tuple(rows)))
    return out


def report_verdict(
    results: list[VmResult], findings: list[Finding], skip: frozenset[str] = frozenset()
) -> Verdict:
    """The verdict of a VM report: the worst VM verdict (`judge_vm`; not-nested counts as
    ready) and the findings outside the VMs. A node's own nesting findings (`vm.host.*`) reach
    the verdict only through the VMs that want nesting (their host link)."""
    from nestctl.vm.verdict import overall  # noqa: PLC0415

    rest = verdict_for(
        f for f in findings if f.code not in skip and not f.code.startswith("vm.host.")
    ).value
    return Verdict(overall([*(r.verdict for r in results if r.verdict is not None), rest]))


def build_report(
    results: list[VmResult], findings: list[Finding], *, guest: bool, with_sections: bool
) -> Report:
    """Top level: what decides the verdict; per-VM notes (info) stay with their VM."""
    vm_findings = [f for r in results for f in r.findings if f.severity is not Severity.INFO]
    report = Report(
        title="VMs",
        payload=report_payload(results, guest=guest),
        findings=findings + vm_findings,
        sections=sections(results) if with_sections else [],
        verdict=report_verdict(results, findings),
    )
    report.summaries = {v: summary(results) for v in Verdict}
    return report
