"""`nestctl tree` for people (a text tree) and for scripts (`--json`)."""

from __future__ import annotations

from typing import Any

from nestctl.findings import Finding, Report, Verdict

SUMMARIES = {
    Verdict.READY: "every layer of the lab is ready for nested virtualization",
    Verdict.NOT_READY: "a layer of the lab is not ready (see the tree and the errors below)",
    Verdict.UNKNOWN: "some layers could not be checked (see the findings below)",
}
_MARK = {"ready": "ok", "not-ready": "NOT READY", "unknown": "unknown", "not-nested": "not nested"}


def tree_report(tree: list[dict[str, Any]], findings: list[Finding], verdict: Verdict) -> Report:
    return Report("tree", {"tree": tree}, findings, verdict=verdict, summaries=dict(SUMMARIES))


def text_lines(tree: list[dict[str, Any]]) -> list[str]:
    """An indented text tree: L0 node -> VM -> (L1 node inside it) -> its VMs."""
    lines: list[str] = []

    def walk(item: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        mark = _MARK.get(item["verdict"], item["verdict"])
        if item["kind"] == "node":
            where = item["node"] or "(not reachable)"
            lines.append(f"{pad}L{item['level']} {item['target']}/{where}  [{mark}]")
        elif item["kind"] == "ct":
            name = f" ({item['name']})" if item["name"] else ""
            lines.append(f"{pad}CT {item['vmid']}{name}  [{mark}]")
        else:
            name = f" ({item['name']})" if item["name"] else ""
            broken = f", first broken link: {item['broken_link']}" if item["broken_link"] else ""
            lines.append(f"{pad}VM {item['vmid']}{name}  [{mark}{broken}]")
        for child in item["children"]:
            walk(child, depth + 1)

    for root in tree:
        walk(root, 0)
    return lines
