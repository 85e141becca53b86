"""`/t/{target}/ct/{node}/{vmid}`: one container: status, graphs, power actions that fit its
state, whether its firewall applies, and its nesting findings (the `nestctl ct` engine) with the
fix as a button ("Allow Docker"), applied through the API with the config's digest."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import actions
from nestctl.web import ctdetail, guestpage
from nestctl.web.fixes import restart_button
from nestctl.web.offers import ACTIONS
from nestctl.web.pages.common import api_for, failure, form, see_other, session, web
from nestctl.web.sparkline import TIMEFRAMES
from nestctl.web.templating import render

_CONFLICT = "detected modified configuration"


def _key(request: Request) -> tuple[str, ...]:
    p = request.path_params
    return (session(request).id, "ct", p["target"], p["node"], str(p["vmid"]))


def _base(target: str, node: str, vmid: int) -> str:
    return f"/t/{quote(target, safe='')}/ct/{quote(node, safe='')}/{vmid}"


def detail(request: Request) -> ctdetail.CtDetail | None:
    p = request.path_params
    api = api_for(request, p["target"])
    value: ctdetail.CtDetail | None = web(request).cache.want(
        _key(request), lambda _poked: ctdetail.fetch(api, p["node"], p["vmid"]), interval=5.0
    )
    return value


async def _missing(request: Request) -> Response | None:
    p = request.path_params
    if await guestpage.exists(request, p["target"], "lxc", p["node"], p["vmid"]) is False:
        what = f"CT {p['vmid']} on {p['node']}"
        return render(request, "not_found.html", status_code=404, what=what)
    return None


async def ct_page(request: Request) -> Response:
    p = request.path_params
    target, node, vmid = p["target"], p["node"], p["vmid"]
    api_for(request, target)
    missing = await _missing(request)
    if missing is not None:
        return missing
    d = detail(request)
    if d is None:
        await web(request).cache.wait_change(_key(request), 0, 3.0)
        d = detail(request)
    guest, _res = guestpage.guest_of(request, target, "lxc", vmid)
    base = _base(target, node, vmid)
    offer = guestpage.offer_for(request, target, "lxc", node, vmid, status=d.status if d else None)
    findings = (d.json or {}).get("findings", []) if d else []
    tf, charts = await guestpage.charts_for(
        api_for(request, target),
        ctdetail.ct_path(node, vmid),
        request.query_params.get("tf", "hour"),
        d.charts if d else [],
    )
    return render(
        request,
        "ct.html",
        target=target,
        node=node,
        vmid=vmid,
        d=d,
        live=guest,
        base=base,
        offer=offer,
        findings=findings,
        tf=tf,
        charts=charts,
        timeframes=list(TIMEFRAMES),
        restart=restart_button(base, offer) if d and d.pending else None,
        live_key="/".join(_key(request)[1:]),
        live_version=web(request).cache.version(_key(request)),
    )


async def _refused(request: Request) -> Response | None:
    p = request.path_params
    base = _base(p["target"], p["node"], p["vmid"])
    return await guestpage.power_refused(request, "lxc", "CT", _key(request), base)


CT_ACTIONS = ("start", "shutdown", "reboot", "stop", "suspend", "resume")


async def confirm_power(request: Request) -> Response:
    p = request.path_params
    if p["action"] not in CT_ACTIONS:
        return render(request, "not_found.html", status_code=404)
    api_for(request, p["target"])
    refused = await _refused(request)
    if refused is not None:
        return refused
    return render(
        request,
        "confirm_guest.html",
        target=p["target"],
        node=p["node"],
        vmid=p["vmid"],
        action=p["action"],
        what=ACTIONS[p["action"]],
        label=f"CT {p['vmid']}",
        base=_base(p["target"], p["node"], p["vmid"]),
        apply_pending=request.query_params.get("why") == "pending",
    )


def ct_power(api: Any, node: str, vmid: int, action: str) -> actions.Upid:
    """POST .../lxc/VMID/status/ACTION; the task's UPID."""
    reply = api.request("POST", f"{ctdetail.ct_path(node, vmid)}/status/{action}")
    upid = actions.parse_upid(reply) if isinstance(reply, str) else None
    if upid is None:
        from nestctl.api.errors import ApiBadReplyError  # noqa: PLC0415

        raise ApiBadReplyError(f"the answer to {action} is not a task id")
    return upid


async def do_power(request: Request) -> Response:
    p = request.path_params
    if p["action"] not in CT_ACTIONS:
        return render(request, "not_found.html", status_code=404)
    api = api_for(request, p["target"])
    refused = await _refused(request)
    if refused is not None:
        return refused
    base = _base(p["target"], p["node"], p["vmid"])
    return await guestpage.start_power(request, api, ct_power, "CT", base)


async def confirm_fix(request: Request) -> Response:
    """The fix's plan: what changes, the `pct set` line, and whether this identity may make it."""
    p = request.path_params
    api = api_for(request, p["target"])
    missing = await _missing(request)
    if missing is not None:
        return missing
    d = await asyncio.to_thread(ctdetail.fetch, api, p["node"], p["vmid"])  # fresh: its digest
    return _fix_page(request, d, api)


def _fix_page(request: Request, d: ctdetail.CtDetail, api: Any, **extra: Any) -> Response:
    p = request.path_params
    fix = (d.json or {}).get("fix")
    blocked = None
    if fix and fix.get("needs_root") and not getattr(api, "is_root_ticket", False):
        blocked = (
            "Proxmox lets only root@pam, logged in with a password (not an API token), make "
            "this change; run the command below on the node as root, or log in as root@pam"
        )
    return render(
        request,
        "ct_fix.html",
        status_code=409 if extra.get("conflict") else 200,
        target=p["target"],
        node=p["node"],
        vmid=p["vmid"],
        d=d,
        fix=fix,
        blocked=blocked,
        base=_base(p["target"], p["node"], p["vmid"]),
        **extra,
    )


async def apply_fix(request: Request) -> Response:
    p = request.path_params
    api = api_for(request, p["target"])
    digest = form(request).get("digest", "")
    base = _base(p["target"], p["node"], p["vmid"])
    d = await asyncio.to_thread(ctdetail.fetch, api, p["node"], p["vmid"])
    fix = (d.json or {}).get("fix")
    if not fix or not digest:
        return see_other(base)
    params = {k: v for k, v in fix["api"]["params"].items() if k != "digest"}
    params["digest"] = digest  # what the visitor saw: a change in between is refused
    try:
        await asyncio.to_thread(
            api.request, "PUT", f"{ctdetail.ct_path(p['node'], p['vmid'])}/config", params
        )
    except Exception as exc:  # noqa: BLE001
        if _CONFLICT in str(exc) or "digest" in getattr(exc, "errors", {}):
            return _fix_page(request, d, api, conflict=True)
        return failure(request, f"fix CT {p['vmid']}", exc, base)
    web(request).cache.poke(_key(request))
    web(request).cache.poke((session(request).id, "inv", p["target"]))
    after = await asyncio.to_thread(ctdetail.fetch, api, p["node"], p["vmid"])
    offer = guestpage.offer_for(
        request, p["target"], "lxc", p["node"], p["vmid"], status=after.status
    )
    return render(
        request,
        "ct_fix_done.html",
        target=p["target"],
        vmid=p["vmid"],
        d=after,
        applied=params,
        base=base,
        restart=restart_button(base, offer),
    )


_CT = "/t/{target}/ct/{node}/{vmid:int}"
routes = [
    Route(_CT, ct_page, methods=["GET"]),
    Route(f"{_CT}/power/{{action}}", confirm_power, methods=["GET"]),
    Route(f"{_CT}/power/{{action}}", do_power, methods=["POST"]),
    Route(f"{_CT}/fix", confirm_fix, methods=["GET"]),
    Route(f"{_CT}/fix", apply_fix, methods=["POST"]),
]
