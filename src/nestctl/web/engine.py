"""The engine behind the pages: the same API collector and analysis as `nestctl doctor --api`.

A target's tree has the shape of `nestctl tree --json` (`{"tree": [<node>], "findings",
"verdict"}`); each VM entry also carries its findings (with their fixes) and its chain, so the
VM page shows exactly what `nestctl vm --api --json` says about it.
"""

from __future__ import annotations

from typing import Any

from nestctl.api.actions import Api
from nestctl.findings import Verdict, verdict_for
from nestctl.web.settings import TargetSpec
from nestctl.web.snapshot import TreeBuilder


def vm_verdict(result: Any) -> Verdict:
    """Ready to run nested guests? A broken link is "no"; a link we could not check is unknown."""
    if result.broken_link:
        return Verdict.NOT_READY
    verdict = verdict_for(result.findings)
    if verdict is Verdict.READY and any(v == "unknown" for v in result.chain.values()):
        return Verdict.UNKNOWN
    return verdict


def first_broken(result: Any) -> dict[str, Any] | None:
    """The first broken link and the finding that explains it (errors first), with its fix."""
    if not result.broken_link:
        return None
    ranked = sorted(result.findings, key=lambda f: (f.severity.value != "error", f.fix is None))
    why = ranked[0].to_json() if ranked else {}
    return {"link": result.broken_link, "message": why.get("message"), "fix": why.get("fix")}


def tree_builder(concurrency: int = 16, nested_reader: Any = None) -> TreeBuilder:
    from nestctl.vm.collect.api import collect_api  # noqa: PLC0415 - heavy, only when serving
    from nestctl.vm.facts import VmOptions  # noqa: PLC0415
    from nestctl.vm.report import analyse_scan  # noqa: PLC0415

    def build(api: Api, target: TargetSpec) -> dict[str, Any]:
        opts = VmOptions(all_nodes=True, sections=False)
        scan = collect_api(
            api,  # type: ignore[arg-type]
            opts,
            concurrency=concurrency,
            nested_reader=nested_reader,
        )
        results, findings = analyse_scan(scan, opts)
        by_node: dict[str, list[dict[str, Any]]] = {}
        for r in results:
            verdict = vm_verdict(r)
            by_node.setdefault(r.node or "?", []).append(
                {
                    "kind": "vm",
                    "vmid": r.vmid,
                    "name": r.name,
                    "verdict": verdict.value,
                    "broken_link": first_broken(r),
                    "children": [],
                    "findings": [f.to_json() for f in r.findings],
                    "chain": dict(r.chain),
                }
            )
        nodes = []
        for report in sorted(scan.node_reports, key=lambda n: n.node):
            vms = sorted(by_node.get(report.node, []), key=lambda v: v["vmid"])
            node_findings = [f for f in findings if f.message.startswith(f"node {report.node}:")]
            node_findings += report.findings
            verdict = verdict_for(node_findings)
            if not report.reachable:
                verdict = Verdict.UNKNOWN
            nodes.append(
                {
                    "kind": "node",
                    "target": target.name,
                    "node": report.node,
                    "level": 0,
                    "verdict": verdict.value,
                    "findings": [f.to_json() for f in node_findings],
                    "children": vms,
                    "reachable": report.reachable,
                    "vendor": report.vendor,
                }
            )
        every = findings + [f for n in scan.node_reports for f in n.findings]
        return {
            "tree": nodes,
            "findings": [f.to_json() for f in scan.findings],
            "verdict": verdict_for(every).value,
        }

    return build
