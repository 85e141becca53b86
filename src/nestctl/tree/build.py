"""Build the lab tree from target views (pure: no I/O).

An inner target hangs under the outer VM that runs it: named by `parent = "T/VMID"` in the config
file, or found by the VM's smbios1 uuid matching the inner node's DMI product_uuid.
"""

from __future__ import annotations

from typing import Any

from nestctl.findings import Finding, Verdict, warning
from nestctl.tree.views import TargetView, VmView

_ORDER = {"ready": 0, "not-nested": 0, "unknown": 1, "not-ready": 2}


def worst(verdicts: list[str]) -> str:
    """The worst verdict, as the exit code counts it: "not-nested" (neutral) is ready."""
    found = max(verdicts, key=lambda v: _ORDER.get(v, 1), default="ready")
    return "ready" if found == "not-nested" else found


def _parents(views: dict[str, TargetView]) -> tuple[dict[str, tuple[str, int]], list[Finding]]:
    """Each inner target's (outer target, vmid)."""
    by_uuid: dict[str, tuple[str, int]] = {}
    for view in views.values():
        for vm in view.vms:
            if vm.smbios_uuid:
                by_uuid[vm.smbios_uuid] = (view.name, vm.vmid)
    parents: dict[str, tuple[str, int]] = {}
    findings: list[Finding] = []
    for view in views.values():
        parent = view.parent
        if parent is None:
            parent = next(
                (by_uuid[n.product_uuid] for n in view.nodes if n.product_uuid in by_uuid),
                None,
            )
        if parent is None:
            continue
        outer = views.get(parent[0])
        if outer is None or parent[0] == view.name:
            findings.append(
                warning(
                    "tree.parent-missing",
                    f"target {view.name}: its parent target {parent[0]!r} is not being shown",
                )
            )
            continue
        if outer.problem is None and not any(vm.vmid == parent[1] for vm in outer.vms):
            findings.append(
                warning(
                    "tree.parent-missing",
                    f"target {view.name}: target {parent[0]} has no VM {parent[1]}",
                    f'check parent = "{parent[0]}/{parent[1]}" in the config file',
                )
            )
            continue
        parents[view.name] = parent
    return parents, findings


def vm_verdict(vm: VmView) -> str:
    """A VM's own verdict in the tree: the one judgement (`nestctl.vm.verdict.judge_vm`) of its
    VM object, kept on the view ("not-nested" for a VM that does not want nesting)."""
    return vm.verdict


def ct_children(view: TargetView, node: str, verdicts: list[str]) -> list[dict[str, Any]]:
    """A node's containers as tree children (kind "ct"); their verdicts count like VMs'."""
    out: list[dict[str, Any]] = []
    for ct in (c for c in view.cts if c.get("node") == node):
        verdict = str(ct.get("verdict") or "unknown")
        verdicts.append(verdict)
        out.append(
            {"kind": "ct", "vmid": ct.get("vmid"), "name": ct.get("name"), "verdict": verdict,
             "broken_link": None, "wants_nested": ct.get("wants_nested"),
             "intent": ct.get("intent"), "workloads": ct.get("workloads"), "children": []}
        )  # fmt: skip
    return out


def build_tree(
    views: list[TargetView], declared: frozenset[tuple[str, int]] = frozenset()
) -> tuple[list[dict[str, Any]], list[Finding], Verdict]:
    """The `tree` list of the JSON contract, the top-level findings and the overall verdict.

    `declared`: (target, vmid) pairs an inner target names as its parent in the config, so the
    VM hosts an inner layer even while that target is not shown (not logged in, unreachable)."""
    by_name = {v.name: v for v in views}
    parents, findings = _parents(by_name)
    children: dict[tuple[str, int], list[str]] = {}
    for inner, parent in parents.items():
        children.setdefault(parent, []).append(inner)
    verdicts: list[str] = []

    def render(view: TargetView, level: int, seen: frozenset[str]) -> list[dict[str, Any]]:
        seen = seen | {view.name}
        if view.problem is not None:
            findings.append(view.problem)
            verdicts.append("unknown")
            return [
                {"kind": "node", "target": view.name, "node": None, "level": level,
                 "verdict": "unknown", "findings": [view.problem.to_json()], "children": []}
            ]  # fmt: skip
        out = []
        for node in view.nodes:
            vms = []
            for vm in (v for v in view.vms if v.node == node.node):
                tied = children.get((view.name, vm.vmid), [])
                hosts = bool(tied) or (view.name, vm.vmid) in declared
                if hosts and vm.wants_nested is not True and vm.body:
                    # An inner target runs in it: intent "inner-layer". The view keeps the
                    # re-judged entry, so every page showing this VM says the same.
                    vm = vm.judged(hosts_inner=True)  # noqa: PLW2901 - the same VM, re-judged
                    view.vms = [vm if v.vmid == vm.vmid else v for v in view.vms]
                inner = [
                    n
                    for name in sorted(tied)
                    if name not in seen
                    for n in render(by_name[name], level + 1, seen)
                ]
                verdicts.append(vm.verdict)
                vms.append(
                    {"kind": "vm", "vmid": vm.vmid, "name": vm.name, "verdict": vm_verdict(vm),
                     "broken_link": vm.broken_link, "wants_nested": vm.wants_nested,
                     "intent": vm.intent, "children": inner}
                )  # fmt: skip
            vms += ct_children(view, node.node, verdicts)
            verdicts.append(node.verdict)
            findings.extend(f.with_message(f"{view.name}/{node.node}: {f.message}")
                            for f in node.findings if f.severity.value != "info")  # fmt: skip
            out.append(
                {"kind": "node", "target": view.name, "node": node.node, "level": level,
                 "verdict": node.verdict, "findings": [f.to_json() for f in node.findings],
                 "children": vms}
            )  # fmt: skip
        return out

    tree = [n for v in views if v.name not in parents for n in render(v, 0, frozenset())]
    return tree, findings, Verdict(worst(verdicts))
