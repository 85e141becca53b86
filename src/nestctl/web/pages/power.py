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
from nestctl.web.pages.common import api_for, failure, form, session, web
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
    target, node, vmid = p["target"], p["node"], p["vmid"]
    key = (session(request).id, "vm", target, node, str(vmid))
    base = _back(quote(target, safe=""), quote(node, safe=""), vmid)
    return await guestpage.power_refused(request, "qemu", "VM", key, base)


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
        label=f"VM {p['vmid']}",
        base=_back(quote(p["target"], safe=""), quote(p["node"], safe=""), p["vmid"]),
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
    back = _back(p["target"], p["node"], p["vmid"])
    return await guestpage.start_power(request, api, actions.vm_power, "VM", back)


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
