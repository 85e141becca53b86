"""`/t/{target}/node/{node}`: a node's health (CPU, load, RAM, root disk, uptime, version,
storages, graphs), its findings, every guest on it, power and firewall."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.web import inventory as inv
from nestctl.web import nodehealth
from nestctl.web.pages.common import api_for, session, web
from nestctl.web.pages.inventory import resources_now
from nestctl.web.pages.overview import snapshot, tree_view
from nestctl.web.sparkline import TIMEFRAMES
from nestctl.web.templating import render
from nestctl.web.verdicts import nested_badge


def health(
    request: Request, target: str, node: str, timeframe: str
) -> nodehealth.NodeHealth | None:
    api = api_for(request, target)
    key = (session(request).id, "node", target, node, timeframe)
    value: nodehealth.NodeHealth | None = web(request).cache.want(
        key, lambda _poked: nodehealth.fetch(api, node, timeframe)
    )
    if value is None:
        return None
    return value


async def node_page(request: Request) -> Response:
    target = request.path_params["target"]
    node = request.path_params["node"]
    api_for(request, target)
    tf = request.query_params.get("tf", "hour")
    tf = tf if tf in TIMEFRAMES else "hour"
    res_snap = await resources_now(request, target)
    res = res_snap.res if res_snap is not None else None
    if res is not None and node not in res.nodes:
        return render(request, "not_found.html", status_code=404, what=f"Node {node}")
    key = (session(request).id, "node", target, node, tf)
    h = health(request, target, node, tf)
    if h is None:
        await web(request).cache.wait_change(key, 0, 3.0)
        h = health(request, target, node, tf)
    snap = snapshot(request, target)
    tree_view(request)  # ties targets as the overview does: a VM running one is re-judged
    tree_view(request)  # ties targets as the overview does: a VM running one is re-judged
    entry = next((n for n in snap.nodes if n.node == node), None) if snap is not None else None
    rows = []
    if res is not None:
        rows = [
            inv.Row(
                g,
                nested_badge(snap, g.vmid, g.kind),
                None,
                res.node_online(node),
            )
            for g in res.guests
            if g.node == node
        ]
    return render(
        request,
        "node.html",
        target=target,
        node=node,
        snap=snap,
        entry=entry,
        rows=rows,
        h=h,
        tf=tf,
        timeframes=list(TIMEFRAMES),
        online=res.node_online(node) if res is not None else None,
        live_version=web(request).cache.version((session(request).id, "target", target)),
    )


routes = [Route("/t/{target}/node/{node}", node_page, methods=["GET"])]
