"""`/tasks`: the recent tasks of every logged-in target (`/cluster/tasks`, one request each),
failed ones marked, each opening its log. Proxmox lists only the tasks the identity may see."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.web import tasklist
from nestctl.web.pages.common import session
from nestctl.web.snapshot import describe_error
from nestctl.web.templating import render


def _read(api: Any, node: str | None) -> tuple[list[tasklist.TaskRow], str | None]:
    try:
        rows = api.request("GET", "/cluster/tasks")
    except Exception as exc:  # noqa: BLE001 - a 403 or an unreachable API, as one sentence
        return [], describe_error(exc)
    return tasklist.parse_tasks(rows, node=node), None


async def tasks_page(request: Request) -> Response:
    s = session(request)
    node = request.query_params.get("node") or None
    failed_only = request.query_params.get("failed") == "1"
    names = list(s.logins)
    results = await asyncio.gather(*(asyncio.to_thread(_read, s.api(n), node) for n in names))
    targets = []
    for name, (rows, error) in zip(names, results, strict=True):
        shown = [t for t in rows if t.failed] if failed_only else rows
        targets.append({"name": name, "tasks": shown, "error": error})
    return render(
        request,
        "tasks.html",
        targets=targets,
        node=node,
        failed_only=failed_only,
        lab=len(names) > 1,
    )


routes = [Route("/tasks", tasks_page, methods=["GET"])]
