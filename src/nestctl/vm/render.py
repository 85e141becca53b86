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
    plain = sum(1 for r in results if r.verdict is not None and r.verdict.verdict == "not-nested")
    if plain:
        text += f"; {plain} not nested (nothing asks for nesting: no tag, flag or hypervisor)"
    if restart:
        text += f", {restart} need a restart (qm reboot)"
    return text


def _no_cpu_arg(r: VmResult) -> str:
    """Why a VM has no -cpu: only Proxmox's own refusal is "refused by Proxmox"; a config that
    could not be read (node offline, 595, 403) was refused by nobody."""
    codes = {f.code for f in r.findings}
    if "vm.cpu.refused" in codes:
        return "refused by Proxmox"
    if "vm.unreachable" in codes:
        return "could not read"
    return "unknown"


def sections(results: list[VmResult]) -> list[Section]:
    out = []
    for r in results:
        rows = [
            ("node", r.node or "local"),
            ("running", "yes" if r.running else "no"),
            ("-cpu (config)", r.cpu_arg or _no_cpu_arg(r)),
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
        if r.verdict is not None:
            rows.append(("verdict", _verdict_words(r)))
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


def _verdict_words(r: VmResult) -> str:
    v = r.verdict
    assert v is not None
    wants = {
        "tag": "wants nesting (its tag)",
        "inner-layer": "wants nesting (it hosts an inner layer)",
        "config": "wants nesting (its config asks)",
        "guest": "wants nesting (its guest is a hypervisor)",
    }.get(v.intent, "does not want nesting")
    if v.wants_nested is None:
        wants = "whether it wants nesting is unknown (its config could not be read)"
    word = {"not-nested": "not nested", "not-ready": "NOT READY"}.get(v.verdict, v.verdict)
    text = f"{word}: {wants}"
    if v.broken_link:
        text += f", first broken link: {v.broken_link}"
    if v.verdict == "ready" and v.can_host:
        text += ", could host an L3"
    return text


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
    missing = [f.message for f in findings if f.code == "vm.not-found"]
    words = "; ".join(missing) if missing and not results else summary(results)
    report.summaries = dict.fromkeys(Verdict, words)
    return report
