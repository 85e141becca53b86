"""`/t/{target}/vm|ct/{node}/{vmid}/snapshots`: the snapshot tree, take, roll back, delete.

Every change is a Proxmox task, followed on the task page as power actions are. Rollback
discards the guest's current state, so it needs the snapshot's name typed; delete keeps the
current state and needs one tap on a confirmation page.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import snapshots
from nestctl.web.pages.common import api_for, failure, follow_task, form
from nestctl.web.templating import render

_KINDS = {"vm": "qemu", "ct": "lxc"}


def _where(request: Request) -> tuple[str, str, str, int, str]:
    """(target, segment, node, vmid, kind) from the path (`vm` -> qemu, `ct` -> lxc)."""
    p = request.path_params
    segment = request.url.path.split("/")[3]
    return p["target"], segment, p["node"], int(p["vmid"]), _KINDS[segment]


def base_url(target: str, segment: str, node: str, vmid: int) -> str:
    return f"/t/{quote(target, safe='')}/{segment}/{quote(node, safe='')}/{vmid}"


def _context(request: Request) -> dict[str, Any]:
    target, segment, node, vmid, kind = _where(request)
    base = base_url(target, segment, node, vmid)
    return {
        "target": target,
        "node": node,
        "vmid": vmid,
        "kind": kind,
        "word": "VM" if kind == "qemu" else "CT",
        "base": base,
        "snapbase": base + "/snapshots",
    }


def _tree_and_lock(api: Any, kind: str, node: str, vmid: int) -> tuple[Any, str | None]:
    """The tree, and the guest's lock (a locked guest takes no snapshot change: the page
    offers none until Proxmox's task ends)."""
    tree = snapshots.list_snapshots(api, kind, node, vmid)
    status = api.request("GET", f"{snapshots.guest_path(kind, node, vmid)}/status/current")
    lock = status.get("lock") if isinstance(status, dict) else None
    return tree, lock if isinstance(lock, str) and lock else None


async def tree_page(request: Request) -> Response:
    ctx = _context(request)
    api = api_for(request, ctx["target"])
    try:
        tree, lock = await asyncio.to_thread(
            _tree_and_lock, api, ctx["kind"], ctx["node"], ctx["vmid"]
        )
    except Exception as exc:  # noqa: BLE001 - Proxmox's own message is the answer
        return failure(request, f"snapshots of {ctx['word']} {ctx['vmid']}", exc, ctx["base"])
    return render(request, "snapshots.html", tree=tree, rows=tree.rows(), lock=lock, **ctx)


async def create(request: Request) -> Response:
    ctx = _context(request)
    api = api_for(request, ctx["target"])
    data = form(request)
    name = data.get("name", "").strip()
    description = data.get("description", "").strip() or None
    vmstate = data.get("vmstate") == "1" and ctx["kind"] == "qemu"
    problem = snapshots.snapname_problem(name, ctx["kind"])
    if problem is not None:
        try:
            tree = await asyncio.to_thread(
                snapshots.list_snapshots, api, ctx["kind"], ctx["node"], ctx["vmid"]
            )
        except Exception as exc:  # noqa: BLE001
            return failure(request, "snapshot", exc, ctx["base"])
        return render(
            request,
            "snapshots.html",
            status_code=400,
            tree=tree,
            rows=tree.rows(),
            error=problem,
            typed_name=name,
            description=description or "",
            **ctx,
        )
    try:
        upid = await asyncio.to_thread(
            snapshots.create_snapshot,
            api,
            ctx["kind"],
            ctx["node"],
            ctx["vmid"],
            name,
            description=description,
            vmstate=vmstate,
        )
    except Exception as exc:  # noqa: BLE001
        return failure(request, f"snapshot {name}", exc, ctx["snapbase"])
    return follow_task(request, ctx["target"], api, upid)


async def confirm(request: Request) -> Response:
    ctx = _context(request)
    action = request.path_params["action"]
    if action not in ("rollback", "delete"):
        return render(request, "not_found.html", status_code=404)
    api_for(request, ctx["target"])
    name = request.path_params["name"]
    return render(request, "snapshot_confirm.html", action=action, snap=name, **ctx)


async def act(request: Request) -> Response:
    ctx = _context(request)
    action = request.path_params["action"]
    if action not in ("rollback", "delete"):
        return render(request, "not_found.html", status_code=404)
    api = api_for(request, ctx["target"])
    name = request.path_params["name"]
    data = form(request)
    if action == "rollback" and data.get("confirm_name", "").strip() != name:
        return render(
            request,
            "snapshot_confirm.html",
            status_code=400,
            action=action,
            snap=name,
            error=f"Type the snapshot's name ({name}) to confirm.",
            **ctx,
        )
    try:
        if action == "rollback":
            upid = await asyncio.to_thread(
                snapshots.rollback_snapshot,
                api,
                ctx["kind"],
                ctx["node"],
                ctx["vmid"],
                name,
                start=data.get("start") == "1",
            )
        else:
            upid = await asyncio.to_thread(
                snapshots.delete_snapshot, api, ctx["kind"], ctx["node"], ctx["vmid"], name
            )
    except Exception as exc:  # noqa: BLE001
        return failure(request, f"{action} {name}", exc, ctx["snapbase"])
    return follow_task(request, ctx["target"], api, upid)


routes = [
    route
    for seg in _KINDS
    for route in (
        Route(f"/t/{{target}}/{seg}/{{node}}/{{vmid:int}}/snapshots", tree_page, methods=["GET"]),
        Route(f"/t/{{target}}/{seg}/{{node}}/{{vmid:int}}/snapshots", create, methods=["POST"]),
        Route(
            f"/t/{{target}}/{seg}/{{node}}/{{vmid:int}}/snapshots/{{name}}/{{action}}",
            confirm,
            methods=["GET"],
        ),
        Route(
            f"/t/{{target}}/{seg}/{{node}}/{{vmid:int}}/snapshots/{{name}}/{{action}}",
            act,
            methods=["POST"],
        ),
    )
]
