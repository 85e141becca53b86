"""`/`: every target's tree of layers with readiness badges and the first broken link."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nestctl.parse import parse_uint
from nestctl.web.engine import explain, parent_of, snapshot_judged
from nestctl.web.pages.common import all_vms, session, web
from nestctl.web.settings import TargetSpec
from nestctl.web.snapshot import SnapshotSource, TargetSnapshot
from nestctl.web.templating import render


def snapshot(request: Request, target: str) -> TargetSnapshot | None:
    """The cached view of `target` for this visitor (None until the first build finished)."""
    state = web(request)
    s = session(request)
    spec = state.settings.target(target)
    identity, api = s.logins.get(target, (None, None))
    if spec is None or api is None or identity is None:
        return None
    key = (s.id, "target", target)
    snap: TargetSnapshot | None = state.cache.want(
        key, SnapshotSource(api, spec, identity, state.tree, state.settings.analysis_interval)
    )
    if snap is not None:
        snap.version = state.cache.version(key)
    return snapshot_judged(snap, all_vms=all_vms(request))  # the visitor's --all-vms


#: The overview lists at most this many VMs per node (the rest are on the node's page).
LIST_LIMIT = 20


@dataclass
class TreeView:
    """Every target, tied and built as `nestctl tree` builds it, ready for the template."""

    roots: list[TargetSpec]  # targets shown at the top (not drawn inside another's VM)
    identities: dict[str, str]
    snaps: dict[str, TargetSnapshot]
    blocks: dict[str, list[dict[str, Any]]]  # target -> its top-level node entries
    findings: list[dict[str, Any]] = field(default_factory=list)  # the tree's own (ties)
    verdicts: dict[str, str] = field(default_factory=dict)  # target -> its worst verdict

    def live(self, target: str, node: str, vmid: int) -> Any:
        snap = self.snaps.get(target)
        return snap.live.get((node, vmid)) if snap is not None else None

    def broken(self, target: str, vmid: int) -> Any:
        snap = self.snaps.get(target)
        return explain(snap.vm(vmid)) if snap is not None else None


def _prepare(node: dict[str, Any], nested: set[str]) -> None:
    """Counts per verdict and the VMs to list (those running an inner Proxmox first, then those
    not ready), computed here once rather than by filters in the template."""
    counts = {"ready": 0, "not-ready": 0, "unknown": 0, "not-nested": 0}
    hosts, broken = [], []
    for vm in node.get("children", []):
        verdict = vm.get("verdict") if vm.get("verdict") in counts else "unknown"
        counts[verdict] += 1
        for inner in vm.get("children", []):
            nested.add(str(inner.get("target")))
            _prepare(inner, nested)
        if vm.get("children"):
            hosts.append(vm)
        elif verdict in ("not-ready", "unknown"):  # "not-nested" is neutral: not listed
            broken.append(vm)
    shown = hosts + broken
    node["_counts"], node["_shown"] = counts, shown[:LIST_LIMIT]
    node["_more"] = max(0, len(shown) - LIST_LIMIT)


def tree_view(request: Request) -> TreeView:
    from nestctl.tree.build import build_tree, worst  # noqa: PLC0415 - the engine, lazily

    state = web(request)
    s = session(request)
    view = TreeView([], {}, {}, {})
    for spec in state.settings.targets:
        identity = s.identity(spec.name)
        if identity is not None:
            view.identities[spec.name] = identity
            snap = snapshot(request, spec.name)
            if snap is not None:
                view.snaps[spec.name] = snap
    loaded = [snap.engine.view for snap in view.snaps.values() if snap.engine is not None]
    declared = frozenset(p for t in state.settings.targets if (p := parent_of(t)) is not None)
    tree, findings, _verdict = build_tree(loaded, declared)
    view.findings = [f.to_json() for f in findings if f.code.startswith("tree.")]
    nested: set[str] = set()
    for node in tree:
        _prepare(node, nested)
        view.blocks.setdefault(str(node.get("target")), []).append(node)
    for name, nodes in view.blocks.items():
        every = [n["verdict"] for n in nodes] + [v["verdict"] for n in nodes for v in n["children"]]
        view.verdicts[name] = worst(every)
    view.roots = [t for t in state.settings.targets if t.name not in nested]
    return view


async def overview(request: Request) -> Response:
    return render(request, "overview.html", view=tree_view(request))


async def changes(request: Request) -> Response:
    """Long poll for live updates: answers once the viewed data is newer than version `v`.

    `key` names it: `target/NAME` or `vm/TARGET/NODE/VMID` (only this visitor's own entries).
    """
    state = web(request)
    s = session(request)
    parts = tuple(p for p in request.query_params.get("key", "").split("/") if p)
    try:
        after = int(request.query_params.get("v", "0"))
    except ValueError:
        after = 0
    if parts[:1] == ("inv",) and len(parts) == 2:  # the home screen: inventory and analysis
        return await _home_changes(request, parts[1], request.query_params.get("v", "0"))
    if parts[:1] not in (("target",), ("vm",), ("node",), ("ct",)):
        return JSONResponse({"error": "unknown key"}, status_code=400)
    version = await state.cache.wait_change((s.id, *parts), after, timeout=25.0)
    return JSONResponse({"v": version})


async def _home_changes(request: Request, target: str, after: str) -> Response:
    """The home screen's version is "INVENTORY.ANALYSIS.BACKUPS": answer when one is newer."""
    state = web(request)
    s = session(request)
    before_inv, _, rest = after.partition(".")
    before_tree, _, before_backups = rest.partition(".")
    keys = [
        ((s.id, "inv", target), before_inv),
        ((s.id, "target", target), before_tree),
        ((s.id, "inv-backups", target), before_backups),
    ]
    waits = [
        asyncio.ensure_future(state.cache.wait_change(k, parse_uint(v) or 0, 25.0)) for k, v in keys
    ]
    _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await p
    version = ".".join(str(state.cache.version(k)) for k, _ in keys)
    return JSONResponse({"v": version})


routes = [
    Route("/tree", overview, methods=["GET"]),
    Route("/changes", changes, methods=["GET"]),
]
