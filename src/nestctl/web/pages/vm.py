"""`/t/{target}/vm/{node}/{vmid}`: one VM, its findings and fixes, live numbers and actions."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api.actions import vm_path
from nestctl.web import guestpage, vmdetail
from nestctl.web.engine import explain
from nestctl.web.fixes import fix_button, restart_button
from nestctl.web.pages import backups
from nestctl.web.pages.common import api_for, session, web
from nestctl.web.pages.overview import snapshot, tree_view
from nestctl.web.sparkline import TIMEFRAMES
from nestctl.web.templating import render


def detail_key(request: Request, target: str, node: str, vmid: int) -> tuple[str, ...]:
    return (session(request).id, "vm", target, node, str(vmid))


def detail(request: Request, target: str, node: str, vmid: int) -> vmdetail.VmDetail | None:
    api = api_for(request, target)
    key = detail_key(request, target, node, vmid)
    value: vmdetail.VmDetail | None = web(request).cache.want(
        key, lambda _poked: vmdetail.fetch(api, node, vmid), interval=5.0
    )
    return value


async def vm_page(request: Request) -> Response:
    target = request.path_params["target"]
    node = request.path_params["node"]
    vmid = int(request.path_params["vmid"])
    api_for(request, target)
    if await guestpage.exists(request, target, "qemu", node, vmid) is False:
        return render(request, "not_found.html", status_code=404, what=f"VM {vmid} on {node}")
    d = detail(request, target, node, vmid)
    snap = snapshot(request, target)
    tree_view(request)  # ties targets as the overview does: a VM running one is re-judged
    entry = snap.vm(vmid) if snap is not None else None
    info = dict(snap.detail(vmid)) if snap is not None else {}
    info["broken"] = explain(entry)  # the one verdict's words, as on the overview
    if entry is not None and entry.verdict == "not-nested" and isinstance(info.get("chain"), dict):
        # Facts, not faults: nobody wants this VM to nest (as the metrics say it).
        info["chain"] = {
            k: "not-nested" if v in ("broken", "unknown") else v for k, v in info["chain"].items()
        }
    # The inventory's row (one /cluster/resources, fresh every few seconds) is there at once;
    # the tree's live numbers only after the full scan.
    guest, _res = guestpage.guest_of(request, target, "qemu", vmid)
    live = guest or (snap.live.get((node, vmid)) if snap is not None else None)
    key = "/".join(detail_key(request, target, node, vmid)[1:])
    offer = guestpage.offer_for(request, target, "qemu", node, vmid, status=d.status if d else None)
    base = f"/t/{quote(target, safe='')}/vm/{quote(node, safe='')}/{vmid}"
    broken = info.get("broken") or {}
    api = api_for(request, target)
    backup = web(request).cache.want(  # its backups, refreshed each minute (and after a backup)
        (session(request).id, "backup", target, node, str(vmid)),
        lambda _poked: backups.summary(api, "qemu", node, vmid),
        interval=60.0,
    )
    tf, charts = await guestpage.charts_for(
        api,
        vm_path(node, vmid),
        request.query_params.get("tf", "hour"),
        d.charts if d else [],
    )
    return render(
        request,
        "vm.html",
        target=target,
        node=node,
        vmid=vmid,
        d=d,
        entry=entry,
        info=info,
        live=live,
        live_key=key,
        live_version=web(request).cache.version(detail_key(request, target, node, vmid)),
        offer=offer,
        base=base,
        tf=tf,
        charts=charts,
        timeframes=list(TIMEFRAMES),
        findings=guestpage.with_buttons(info.get("findings") or [], base, offer),
        broken_button=fix_button(broken.get("fix"), base, offer),
        restart=restart_button(base, offer),
        fw_vm_off=bool(
            d and d.firewall and any(o.startswith("VM firewall is off") for o in d.firewall.off)
        ),
        backup=backup,
    )


routes = [Route("/t/{target}/vm/{node}/{vmid:int}", vm_page, methods=["GET"])]
