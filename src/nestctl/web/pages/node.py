"""`/t/{target}/node/{node}`: a node's findings, its VMs, power and firewall."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.web.pages.common import api_for
from nestctl.web.pages.overview import snapshot, tree_view
from nestctl.web.templating import render


async def node_page(request: Request) -> Response:
    target = request.path_params["target"]
    node = request.path_params["node"]
    api_for(request, target)
    snap = snapshot(request, target)
    tree_view(request)  # ties targets as the overview does: a VM running one is re-judged
    entry = next((n for n in snap.nodes if n.node == node), None) if snap is not None else None
    vms = [v for v in snap.engine.view.vms if v.node == node] if entry and snap else []
    return render(request, "node.html", target=target, node=node, snap=snap, entry=entry, vms=vms)


routes = [Route("/t/{target}/node/{node}", node_page, methods=["GET"])]
