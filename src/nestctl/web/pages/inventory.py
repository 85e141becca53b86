"""`/`: the home screen. Every VM and container of every logged-in target, grouped by node (and
by target for a lab), problems pinned on top, searchable and filterable in the page.

The list comes from one `/cluster/resources` request per target (its own background entry,
refreshed every few seconds), so it shows as soon as that request answers; the nested analysis
(the engine's full scan) is joined in by vmid when it arrives, and the page updates itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.web import inventory as inv
from nestctl.web.engine import explain, snapshot_judged
from nestctl.web.errors import one_line, sentence
from nestctl.web.pages.common import all_vms, session, web
from nestctl.web.pages.overview import snapshot, tree_view
from nestctl.web.templating import render
from nestctl.web.verdicts import nested_badge

#: How long the first view waits for the first `/cluster/resources` answer before it shows
#: "Reading…" (and fills in by itself).
FIRST_WAIT = 3.0

FILTERS = {
    "": "All",
    "problem": "Problems",
    "running": "Running",
    "stopped": "Stopped",
    "not-ready": "Not ready",
    "qemu": "VMs",
    "lxc": "CTs",
}


@dataclass
class InvSnapshot:
    res: inv.Resources | None = None
    error: str | None = None


def inv_key(request: Request, target: str) -> tuple[str, ...]:
    return (session(request).id, "inv", target)


def _builder(api: Any) -> Any:
    def build(_poked: bool) -> InvSnapshot:
        try:
            rows = api.request("GET", "/cluster/resources")
        except Exception as exc:  # noqa: BLE001 - shown on the page as one sentence
            return InvSnapshot(error=one_line(sentence(exc)))
        return InvSnapshot(inv.parse_resources(rows))

    return build


def resources(request: Request, target: str) -> InvSnapshot | None:
    """This visitor's inventory of `target` (None until the first answer); keeps it fresh."""
    api = session(request).api(target)
    if api is None:
        return None
    value: InvSnapshot | None = web(request).cache.want(inv_key(request, target), _builder(api))
    return value


#: The failed-backup scan reads every backup storage and the task list (and the logs of failed
#: job tasks): heavier than the inventory, and backups change rarely, so it is refreshed less often.
BACKUP_INTERVAL = 60.0


def backups_key(request: Request, target: str) -> tuple[str, ...]:
    return (session(request).id, "inv-backups", target)


def _backups_builder(api: Any) -> Any:
    def build(_poked: bool) -> dict[tuple[str, int], str]:
        from nestctl.api import backups  # noqa: PLC0415 - the home screen's first view needs none

        try:
            facts = backups.collect_backups(api)
        except Exception:  # noqa: BLE001 - the backups page says why; here only failures pin
            return {}
        return inv.failed_backups(backups.per_guest(facts), time.time())

    return build


def failed_backups(request: Request, target: str, *, start: bool = False) -> Any:
    """(kind, vmid) -> why its last backup failed, once the background scan answered (None
    before). Only `start=True` (after the page went out) starts or keeps the scan alive, so it
    never competes with the first view's `/cluster/resources`."""
    if not start:
        return web(request).cache.peek(backups_key(request, target))
    api = session(request).api(target)
    if api is None:
        return None
    return web(request).cache.want(
        backups_key(request, target), _backups_builder(api), interval=BACKUP_INTERVAL
    )


async def resources_now(request: Request, target: str, timeout: float = FIRST_WAIT) -> Any:
    """The inventory, waiting up to `timeout` for its first answer (right after login)."""
    value = resources(request, target)
    if value is None and session(request).api(target) is not None:
        await web(request).cache.wait_change(inv_key(request, target), 0, timeout)
        value = resources(request, target)
    return value


@dataclass
class TargetInv:
    name: str
    identity: str | None
    snap: InvSnapshot | None
    groups: list[inv.NodeGroup] = field(default_factory=list)
    analysed: bool = False  # the nested analysis arrived
    version: str = "0.0"
    count: int = 0
    storage_problems: list[tuple[str, str]] = field(default_factory=list)  # (node, sentence)


def _rows(request: Request, name: str, res: inv.Resources) -> tuple[list[inv.Row], bool]:
    # Only what the analysis already has: it is started after the page went out (see `home`),
    # so its thousands of requests do not compete with the first view.
    tree = web(request).cache.peek((session(request).id, "target", name))
    tree = snapshot_judged(tree, all_vms=all_vms(request))  # the visitor's --all-vms
    failed = failed_backups(request, name) or {}
    rows = []
    for g in res.guests:
        badge = nested_badge(tree, g.vmid, g.kind)
        why = None
        if badge == "not-ready" and g.kind == "lxc":
            why = "its config does not allow the nested workload it wants"
        elif badge == "not-ready":
            broken = (explain(tree.vm(g.vmid)) if tree is not None else None) or {}
            why = " · ".join(str(x) for x in (broken.get("link"), broken.get("message")) if x)
        rows.append(inv.Row(g, badge, why, res.node_online(g.node), failed.get((g.kind, g.vmid))))
    return rows, tree is not None and tree.engine is not None


def build(request: Request) -> tuple[list[TargetInv], list[tuple[str, inv.Row]]]:
    """Every target's groups, and the rows with a problem (pinned on top)."""
    state = web(request)
    s = session(request)
    out: list[TargetInv] = []
    problems: list[tuple[str, inv.Row]] = []
    for spec in state.settings.targets:
        identity = s.identity(spec.name)
        snap = resources(request, spec.name) if identity else None
        t = TargetInv(spec.name, identity, snap)
        if snap is not None and snap.res is not None:
            rows, t.analysed = _rows(request, spec.name, snap.res)
            t.groups = inv.group(spec.name, snap.res, rows)
            t.count = len(rows)
            problems += [(spec.name, r) for r in rows if r.problem]
            t.storage_problems = sorted(
                (st.node, st.problem) for st in snap.res.storages if st.problem
            )
        cache = state.cache
        t.version = (
            f"{cache.version(inv_key(request, spec.name))}."
            f"{cache.version((s.id, 'target', spec.name))}."
            f"{cache.version(backups_key(request, spec.name))}"
        )
        out.append(t)
    return out, problems


async def home(request: Request) -> Response:
    s = session(request)
    await asyncio.gather(*(resources_now(request, name) for name in list(s.logins)))
    cache = web(request).cache
    if all(cache.peek((s.id, "target", name)) is not None for name in s.logins):
        tree_view(request)  # ties targets as /tree does: a VM running one is re-judged
    targets, problems = build(request)
    storage = [(t.name, node, text) for t in targets for node, text in t.storage_problems]
    query = request.query_params.get("q", "").strip().lower()
    chosen = request.query_params.get("f", "")
    if chosen not in FILTERS:
        chosen = ""
    response = render(
        request,
        "inventory.html",
        targets=targets,
        problems=problems,
        storage=storage,
        lab=len(targets) > 1,
        query=query,
        chosen=chosen,
        filters=FILTERS,
    )

    async def analyse() -> None:
        for name in s.logins:
            snapshot(request, name)  # starts (or keeps alive) the engine's scan of each target
            failed_backups(request, name, start=True)  # and the failed-backup scan

    response.background = BackgroundTask(analyse)
    return response


routes = [Route("/", home, methods=["GET"])]
