"""VM and node power actions, each behind a confirmation, then followed on the task page.

Node reboot/shutdown need a second, typed confirmation: the node's name.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import actions
from nestctl.web import guestpage
from nestctl.web.pages.common import api_for, failure, form, see_other, session, web
from nestctl.web.templating import render

#: What each action does, for the confirmation page.
VM_ACTIONS: dict[str, str] = {
    "start": "Start the VM.",
    "shutdown": "Ask the guest to shut down (ACPI); Proxmox waits for it.",
    "stop": "Stop the VM at once, like pulling the plug. Unsaved guest data is lost.",
    "reboot": "Shut the guest down and start it again. Pending changes are applied.",
    "reset": "Reset the VM at once, like the reset button. Pending changes are NOT applied.",
    "suspend": "Pause the VM (it stays in memory).",
    "resume": "Resume a paused VM.",
}


def _back(target: str, node: str, vmid: int) -> str:
    return f"/t/{target}/vm/{node}/{vmid}"


async def _refused(request: Request) -> Response | None:
    """A page saying why the action does not fit the VM's state now (or 404), or None."""
    p = request.path_params
    target, node, vmid, action = p["target"], p["node"], p["vmid"], p["action"]
    if await guestpage.exists(request, target, "qemu", node, vmid) is False:
        return render(request, "not_found.html", status_code=404, what=f"VM {vmid} on {node}")
    cached = web(request).cache.peek((session(request).id, "vm", target, node, str(vmid)))
    status = cached.status if cached is not None else None
    offer = guestpage.known_offer(request, target, "qemu", node, vmid, status=status)
    if offer is None or action in offer.actions:
        return None
    return render(
        request,
        "not_now.html",
        status_code=409,
        action=action,
        what=f"VM {vmid}",
        offer=offer,
        base=_back(quote(target, safe=""), quote(node, safe=""), vmid),
    )


async def confirm_vm(request: Request) -> Response:
    p = request.path_params
    action = p["action"]
    if action not in VM_ACTIONS:
        return render(request, "not_found.html", status_code=404)
    api_for(request, p["target"])
    refused = await _refused(request)
    if refused is not None:
        return refused
    return render(
        request,
        "confirm_vm.html",
        target=p["target"],
        node=p["node"],
        vmid=p["vmid"],
        action=action,
        what=VM_ACTIONS[action],
        apply_pending=request.query_params.get("why") == "pending",
    )


async def do_vm(request: Request) -> Response:
    p = request.path_params
    action = p["action"]
    if action not in VM_ACTIONS:
        return render(request, "not_found.html", status_code=404)
    api = api_for(request, p["target"])
    refused = await _refused(request)
    if refused is not None:
        return refused
    try:
        upid = await asyncio.to_thread(actions.vm_power, api, p["node"], p["vmid"], action)
    except Exception as exc:  # noqa: BLE001 - Proxmox's own message is the answer
        back = _back(p["target"], p["node"], p["vmid"])
        return failure(request, f"{action} VM {p['vmid']}", exc, back)
    # Follow it from now on: the task page and /wait read this follower's state.
    web(request).followers.start(session(request).id, api, upid)
    return see_other(f"/t/{quote(p['target'], safe='')}/task/{quote(upid.text, safe='')}")


async def confirm_node(request: Request) -> Response:
    p = request.path_params
    if p["command"] not in actions.NODE_POWER:
        return render(request, "not_found.html", status_code=404)
    api_for(request, p["target"])
    return render(
        request, "confirm_node.html", target=p["target"], node=p["node"], command=p["command"]
    )


async def do_node(request: Request) -> Response:
    p = request.path_params
    command = p["command"]
    if command not in actions.NODE_POWER:
        return render(request, "not_found.html", status_code=404)
    api = api_for(request, p["target"])
    if form(request).get("confirm_name", "").strip() != p["node"]:
        return render(
            request,
            "confirm_node.html",
            status_code=400,
            target=p["target"],
            node=p["node"],
            command=command,
            error=f"type the node's name ({p['node']}) to confirm",
        )
    try:
        await asyncio.to_thread(actions.node_power, api, p["node"], command)
    except Exception as exc:  # noqa: BLE001
        back = f"/t/{p['target']}/node/{p['node']}"
        return failure(request, f"{command} node {p['node']}", exc, back)
    web(request).cache.poke((session(request).id, "target", p["target"]))
    return render(request, "node_done.html", target=p["target"], node=p["node"], command=command)


routes = [
    Route("/t/{target}/vm/{node}/{vmid:int}/power/{action}", confirm_vm, methods=["GET"]),
    Route("/t/{target}/vm/{node}/{vmid:int}/power/{action}", do_vm, methods=["POST"]),
    Route("/t/{target}/node/{node}/power/{command}", confirm_node, methods=["GET"]),
    Route("/t/{target}/node/{node}/power/{command}", do_node, methods=["POST"]),
]
