"""`/t/{target}/task/{upid}`: a task followed to its end, then its exit status and log tail.

Without JavaScript the page refreshes itself while the task runs; with it, `wait` answers as
soon as the task ends (polled quickly at first, so following adds little to the task's own time).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nestctl.api import actions
from nestctl.parse import is_ascii_digits
from nestctl.web.pages.common import api_for, failure, session, web
from nestctl.web.templating import render

_SNAPSHOT_TASKS = {"qmsnapshot", "qmrollback", "qmdelsnapshot", "vzsnapshot", "vzrollback",
                   "vzdelsnapshot"}  # fmt: skip


def _back(target: str, upid: actions.Upid) -> str:
    if is_ascii_digits(upid.id) and upid.type in _SNAPSHOT_TASKS:  # back to the tree
        segment = "vm" if upid.type.startswith("qm") else "ct"
        return f"/t/{target}/{segment}/{upid.node}/{upid.id}/snapshots"
    if upid.type == "vzdump":  # the UPID does not say VM or CT: the page for both
        return f"/t/{target}/backups"
    if is_ascii_digits(upid.id) and upid.type.startswith("qm"):
        return f"/t/{target}/vm/{upid.node}/{upid.id}"
    if is_ascii_digits(upid.id) and upid.type.startswith("vz") and upid.type != "vzdump":
        return f"/t/{target}/ct/{upid.node}/{upid.id}"
    return f"/t/{target}/node/{upid.node}"


def _ended(request: Request, target: str, upid: actions.Upid) -> None:
    """A finished task changed something: refresh the views that show it now."""
    s = session(request)
    cache = web(request).cache
    cache.poke((s.id, "target", target))
    if is_ascii_digits(upid.id):
        cache.poke((s.id, "vm", target, upid.node, upid.id))
        if upid.type == "vzdump":  # the guest page's backup line
            cache.poke((s.id, "backup", target, upid.node, upid.id))


async def task_page(request: Request) -> Response:
    target = request.path_params["target"]
    upid = actions.parse_upid(request.path_params["upid"])
    api = api_for(request, target)
    if upid is None:
        return render(request, "not_found.html", status_code=404)
    follower = web(request).followers.get(session(request).id, upid)
    if follower is not None:
        # Its first poll left when the action started: wait for it rather than ask twice.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower.polled.wait(), 5.0)
    state = follower.state if follower is not None else None
    if state is None:  # not started here, or not yet polled: ask Proxmox
        try:
            state = await asyncio.to_thread(actions.task_state, api, upid)
        except Exception as exc:  # noqa: BLE001
            return failure(request, "task", exc, _back(target, upid))
    if not state.running:
        _ended(request, target, upid)
    return render(
        request, "task.html", target=target, upid=upid, state=state, back=_back(target, upid)
    )


async def task_wait(request: Request) -> Response:
    """JSON: the task's state once it ended, or after about 20 s still running."""
    target = request.path_params["target"]
    upid = actions.parse_upid(request.path_params["upid"])
    api = api_for(request, target)
    if upid is None:
        return JSONResponse({"error": "not a task id"}, status_code=404)
    follower = web(request).followers.start(session(request).id, api, upid)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(follower.done.wait(), 20.0)
    if follower.error is not None:
        return JSONResponse({"error": follower.error}, status_code=502)
    state = follower.state or actions.TaskState(upid.text, running=True)
    if not state.running:
        _ended(request, target, upid)
    return JSONResponse({**asdict(state), "ok": state.ok})


routes = [
    Route("/t/{target}/task/{upid}", task_page, methods=["GET"]),
    Route("/t/{target}/task/{upid}/wait", task_wait, methods=["GET"]),
]
