"""Backups on the dashboard: a guest's backup panel with "Back up now", and the backup jobs.

`/t/{target}/vm|ct/{node}/{vmid}/backup`: the last backup (age, size, storage, its task), the
findings (a failed last task is an error), the restore command to run on the node (no restore
from here), and "Back up now" with storage, mode and compression chosen from what the storage
allows; the vzdump task is followed on the task page. `/t/{target}/backups`: every guest's
status, the jobs (schedule, next run, what each covers) and the guests no job covers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import backups
from nestctl.web.pages.common import api_for, failure, follow_task, form
from nestctl.web.pages.snapshots import base_url
from nestctl.web.templating import render

_KINDS = {"vm": "qemu", "ct": "lxc"}
_MODES = {
    "snapshot": "Snapshot: no downtime",
    "suspend": "Suspend: a short pause",
    "stop": "Stop: most consistent, the guest is down meanwhile",
}
_COMPRESS = {
    "zstd": "ZSTD (fast and good)",
    "lzo": "LZO (fast)",
    "gzip": "GZIP (good)",
    "0": "None",
}


def _guest_panel(api: Any, kind: str, node: str, vmid: int) -> dict[str, Any]:
    guest = backups.Guest(kind, vmid, node, None)
    facts = backups.collect_guest_backup(api, guest)
    entries = backups.per_guest(facts)
    now = time.time()
    findings = backups.backup_findings(entries, now) + backups.unknowns(facts)
    return {
        "entry": entries[0].to_json(now),
        "findings": [f.to_json() for f in findings],
        "choices": [c.to_json() for c in backups.backup_choices(facts.storages)],
    }


def summary(api: Any, kind: str, node: str, vmid: int) -> dict[str, Any]:
    """The guest page's backup line (kept fresh in the background): the panel's facts, or one
    sentence why they could not be read."""
    try:
        return _guest_panel(api, kind, node, vmid)
    except Exception as exc:  # noqa: BLE001 - said on the page, in one sentence
        from nestctl.web.snapshot import describe_error  # noqa: PLC0415

        return {"error": describe_error(exc)}


def _ctx(request: Request) -> dict[str, Any]:
    p = request.path_params
    segment = request.url.path.split("/")[3]
    kind = _KINDS[segment]
    base = base_url(p["target"], segment, p["node"], int(p["vmid"]))
    return {
        "target": p["target"],
        "node": p["node"],
        "vmid": int(p["vmid"]),
        "kind": kind,
        "word": "VM" if kind == "qemu" else "CT",
        "base": base,
        "modes": _MODES,
        "compress_names": _COMPRESS,
    }


async def panel(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    ctx = _ctx(request)
    api = api_for(request, ctx["target"])
    try:
        data = await asyncio.to_thread(_guest_panel, api, ctx["kind"], ctx["node"], ctx["vmid"])
    except Exception as exc:  # noqa: BLE001 - Proxmox's own message is the answer
        return failure(request, f"backups of {ctx['word']} {ctx['vmid']}", exc, ctx["base"])
    return render(request, "backup.html", status_code=status, error=error, **data, **ctx)


async def now(request: Request) -> Response:
    ctx = _ctx(request)
    api = api_for(request, ctx["target"])
    data = form(request)
    storage, mode = data.get("storage", ""), data.get("mode", "snapshot")
    compress: str | None = data.get("compress", "zstd")
    try:
        listed = await asyncio.to_thread(
            api.request,
            "GET",
            f"/nodes/{quote(ctx['node'], safe='')}/storage",
            {"content": "backup"},
        )
    except Exception as exc:  # noqa: BLE001
        return failure(request, "back up", exc, ctx["base"] + "/backup")
    storages = {
        str(s["storage"]): s
        for s in (listed if isinstance(listed, list) else [])
        if isinstance(s, dict) and isinstance(s.get("storage"), str)
    }
    choice = {c.storage: c for c in backups.backup_choices(storages)}.get(storage)
    if choice is None:
        return await panel(
            request, error=f"{storage or 'That'} is not a backup storage here.", status=400
        )
    if mode not in choice.modes:
        return await panel(request, error="Choose snapshot, suspend or stop.", status=400)
    if not choice.compressions:
        compress = None  # a Proxmox Backup Server compresses on its own
    elif compress not in choice.compressions:
        return await panel(request, error="Choose a compression from the list.", status=400)
    try:
        upid = await asyncio.to_thread(
            backups.backup_now,
            api,
            ctx["node"],
            ctx["vmid"],
            storage=storage,
            mode=mode,
            compress=compress,
        )
    except Exception as exc:  # noqa: BLE001
        return failure(
            request, f"back up {ctx['word']} {ctx['vmid']}", exc, ctx["base"] + "/backup"
        )
    return follow_task(request, ctx["target"], api, upid)


def _cluster(api: Any) -> dict[str, Any]:
    facts = backups.collect_backups(api)
    entries = backups.per_guest(facts)
    t = time.time()
    findings = backups.backup_findings(entries, t) + backups.unknowns(facts)
    jobs = []
    for job in facts.jobs or []:
        covers = [e.guest.id for e in entries if job.covers(e.guest)]
        jobs.append({**job.to_json(), "covers": covers})
    order = {"failed": 0, "none": 1, "stale": 2, "unknown": 3, "running": 4, "ok": 5}
    guests = sorted(
        (e.to_json(t) for e in entries), key=lambda g: (order.get(g["status"], 5), g["vmid"])
    )
    return {
        "guests": guests,
        "jobs": jobs,
        "jobs_known": facts.jobs is not None,
        "uncovered": [e.to_json(t) for e in entries if e.covered is False],
        "findings": [f.to_json() for f in findings if f.undetermined],
    }


async def jobs_page(request: Request) -> Response:
    target = request.path_params["target"]
    api = api_for(request, target)
    try:
        data = await asyncio.to_thread(_cluster, api)
    except Exception as exc:  # noqa: BLE001
        return failure(request, "backups", exc, "/")
    return render(request, "backup_jobs.html", target=target, **data)


routes = [
    Route("/t/{target}/backups", jobs_page, methods=["GET"]),
    *(
        route
        for seg in _KINDS
        for route in (
            Route(f"/t/{{target}}/{seg}/{{node}}/{{vmid:int}}/backup", panel, methods=["GET"]),
            Route(f"/t/{{target}}/{seg}/{{node}}/{{vmid:int}}/backup", now, methods=["POST"]),
        )
    ),
]
