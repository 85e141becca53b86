"""`/`: every target's tree of layers with readiness badges and the first broken link."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nestctl.web.pages.common import session, web
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
    return snap


@dataclass
class TreeView:
    """Every target, tied as `nestctl tree` ties them (`parent = "<target>/<vmid>"`)."""

    roots: list[TargetSpec]
    identities: dict[str, str]
    snaps: dict[str, TargetSnapshot]
    inner: dict[str, list[TargetSpec]]  # "outer/101" -> the targets running inside that VM
    parents: dict[str, tuple[int, ...]]  # target -> VM ids that run an inner target


def tree_view(request: Request) -> TreeView:
    state = web(request)
    s = session(request)
    names = {t.name for t in state.settings.targets}
    view = TreeView([], {}, {}, {}, {})
    for spec in state.settings.targets:
        identity = s.identity(spec.name)
        if identity is not None:
            view.identities[spec.name] = identity
            snap = snapshot(request, spec.name)
            if snap is not None:
                view.snaps[spec.name] = snap
        outer, _, vmid = (spec.parent or "").partition("/")
        if outer in names and outer != spec.name and vmid.isdigit():
            view.inner.setdefault(spec.parent or "", []).append(spec)
            view.parents[outer] = (*view.parents.get(outer, ()), int(vmid))
        else:
            view.roots.append(spec)
    _break_cycles(view, state.settings.targets)
    _unplaced_to_top(view)
    return view


def _unplaced_to_top(view: TreeView) -> None:
    """An inner target is drawn inside its VM only once that VM is on the page (the outer
    target's view is loaded and lists it); until then it stands at the top, never hidden."""
    for key, specs in list(view.inner.items()):
        outer, _, vmid = key.partition("/")
        snap = view.snaps.get(outer)
        if snap is not None and snap.vm(int(vmid))[0] is not None:
            continue
        view.roots.extend(specs)
        del view.inner[key]


def _break_cycles(view: TreeView, targets: list[TargetSpec]) -> None:
    """Targets whose parents form a loop (a config mistake) are shown at the top instead."""
    reached: set[str] = set()
    todo = [t.name for t in view.roots]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(t.name for k, ts in view.inner.items() if k.split("/")[0] == name for t in ts)
    for spec in targets:
        if spec.name not in reached:
            view.inner[spec.parent or ""] = [
                t for t in view.inner.get(spec.parent or "", []) if t.name != spec.name
            ]
            view.roots.append(spec)


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
    if parts[:1] not in (("target",), ("vm",)):
        return JSONResponse({"error": "unknown key"}, status_code=400)
    version = await state.cache.wait_change((s.id, *parts), after, timeout=25.0)
    return JSONResponse({"v": version})


routes = [
    Route("/", overview, methods=["GET"]),
    Route("/changes", changes, methods=["GET"]),
]
