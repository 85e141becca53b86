"""`nestctl ct`: every container's nested-workload facts, findings, verdict and fix.

JSON (a public contract, README): ``{"cts": [{"vmid", "name", "node", "running",
"unprivileged", "features": {...}, "wants_nested", "intent", "workloads": {"docker",
"systemd", "kvm", "fuse"}, "findings", ...}], "findings", "verdict"}``. Each CT's verdict comes
from the VMs' one verdict function (`nestctl.vm.verdict.judge_vm`), its intent from
`nestctl.ct.intent` (which asks the VMs' `decide_intent` first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nestctl.ct.config import CtConfig
from nestctl.ct.facts import CtFacts, ct_facts
from nestctl.ct.intent import decide_ct_intent
from nestctl.ct.rules import CtFix, ct_findings, judged, plan_fix, workloads
from nestctl.findings import Finding, Report, Section, Severity, Verdict, verdict_for
from nestctl.vm.intent import DEFAULT_TAG, Intent
from nestctl.vm.verdict import VmVerdict, is_nesting_code, judge_vm, overall, settle

SUMMARIES = {
    Verdict.READY: "every container that wants nested workloads can run them",
    Verdict.NOT_READY: "a container cannot run a nested workload it wants (see the fixes)",
    Verdict.UNKNOWN: "some containers could not be checked",
}


@dataclass
class CtResult:
    facts: CtFacts
    intent: Intent
    findings: list[Finding]
    workloads: dict[str, bool | None]
    verdict: VmVerdict
    fix: CtFix | None
    extra: dict[str, Any] = field(default_factory=dict)  # status from the API (cpu, mem, ...)


def analyse_ct(
    conf: CtConfig,
    *,
    running: bool | None,
    all_cts: bool = False,
    tag: str = DEFAULT_TAG,
    node_kvm: bool | None = None,
    name: str | None = None,
) -> CtResult:
    """One container, from its parsed config to its verdict (pure)."""
    facts = ct_facts(conf, running=running, name=name)
    intent = decide_ct_intent(facts, conf.main, tag=tag)
    strict = bool(intent.wants_nested) or all_cts
    docker = intent.intent == "tag" or facts.features.get("keyctl") is True
    raw = ct_findings(facts, intent.wants_nested, docker=docker, all_cts=all_cts, node_kvm=node_kvm)
    found = settle(raw, strict=strict)
    body = {
        "wants_nested": intent.wants_nested,
        "intent": intent.intent,
        "chain": chain(raw),
        "findings": [f.to_json() for f in found],
    }
    verdict = judge_vm(body, all_vms=all_cts)
    wanted = judged(facts, intent.wants_nested, docker=docker, all_cts=all_cts)
    fix = plan_fix(facts, wanted) if facts.readable else None
    return CtResult(facts, intent, found, workloads(facts), verdict, fix)


def chain(findings: list[Finding]) -> dict[str, str]:
    """A container's links for the one verdict function: `host` (the node's /dev/kvm) and
    `config` (what its config lets it run), each ok, broken or unknown."""
    links = {"host": "ok", "config": "ok"}
    for f in findings:
        if not is_nesting_code(f.code):
            continue
        link = "host" if f.code == "ct.kvm.node-missing" else "config"
        if f.severity is Severity.ERROR:
            links[link] = "broken"
        elif f.undetermined and links[link] == "ok":
            links[link] = "unknown"
    return links


def fix_json(r: CtResult) -> dict[str, Any] | None:
    """The one change that makes the judged workloads possible: `pct set` and the API PUT."""
    if r.fix is None or r.verdict.verdict == "not-nested":
        return None
    f = r.facts
    params = {**r.fix.api_params(), "digest": f.digest}
    return {
        "pct": r.fix.pct(f.vmid),
        "api": {
            "method": "PUT",
            "path": f"/nodes/{f.node}/lxc/{f.vmid}/config" if f.node else None,
            "params": params,
        },
        "needs_root": r.fix.needs_root,
        "note": r.fix.note,
    }


def ct_json(r: CtResult) -> dict[str, Any]:
    f = r.facts
    return {
        "vmid": f.vmid,
        "name": f.name,
        "node": f.node,
        "running": f.running,
        "unprivileged": f.unprivileged if f.readable else None,
        "lock": f.lock,
        "tags": list(f.tags),
        "ostype": f.ostype,
        "features": dict(f.features) if f.readable else None,
        "pending_features": f.pending_features,
        "kvm_device": _kvm_json(f),
        "mount_points": [{"key": k, "volume": v, "path": p} for k, v, p in f.mount_points],
        "wants_nested": r.intent.wants_nested,
        "intent": r.intent.intent,
        "intent_why": r.intent.why,
        "verdict": r.verdict.verdict,
        "workloads": r.workloads,
        "fix": fix_json(r),
        "digest": f.digest or None,
        "findings": [x.to_json() for x in r.findings],
        **r.extra,
    }


def _kvm_json(f: CtFacts) -> dict[str, Any]:
    dev = f.kvm.device
    return {
        "device": dev.key if dev else None,
        "gid": dev.gid if dev else None,
        "mode": dev.mode if dev else None,
        "mount_entry": f.kvm.mount_entry,
        "cgroup_allowed": f.kvm.cgroup_allowed or dev is not None,
    }


def report_verdict(results: list[CtResult], findings: list[Finding]) -> Verdict:
    """The worst container verdict and the findings outside them. A container on a node that
    could not be reached does not decide it (the node's own finding says so), as for VMs."""
    rest = verdict_for(findings).value
    reached = [r.verdict for r in results if not r.facts.unreachable]
    return Verdict(overall([*reached, rest]))


def _section(r: CtResult) -> Section:
    f = r.facts
    feats = ",".join(k for k, v in f.features.items() if v is True) or "none"
    work = ", ".join(
        f"{k} {'yes' if v else 'no' if v is False else '?'}" for k, v in r.workloads.items()
    )
    rows: list[tuple[str, str]] = [
        ("node", f.node or "this node"),
        ("state", {True: "running", False: "stopped", None: "unknown"}[f.running]),
        ("unprivileged", "yes" if f.unprivileged else "no"),
        ("features", feats),
        ("wants nested", "yes" if r.intent.wants_nested else "no" + f" ({r.intent.why})"),
        ("can run", work),
        ("verdict", r.verdict.verdict),
    ]
    if r.verdict.verdict != "not-nested" and r.fix is not None:
        rows.append(("fix", r.fix.pct(f.vmid)))
    return Section(f"CT {f.vmid} {f.name}", tuple(rows))


def build_report(
    results: list[CtResult], findings: list[Finding], *, with_sections: bool = True
) -> Report:
    """Top level: what decides the verdict; per-CT notes (info) stay with their CT."""
    ct_level = [f for r in results for f in r.findings if f.severity is not Severity.INFO]
    report = Report(
        title="containers",
        payload={"cts": [ct_json(r) for r in results]},
        findings=findings + ct_level,
        sections=[_section(r) for r in results] if with_sections else [],
        verdict=report_verdict(results, findings),
        summaries=dict(SUMMARIES),
    )
    if not results:
        report.summaries = dict.fromkeys(Verdict, "no containers found")
    return report
