"""What VM and container pages share: does the guest exist, and which actions fit it now."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nestctl.web import offers
from nestctl.web.fixes import FixButton, fix_button


async def exists(request: Request, target: str, kind: str, node: str, vmid: int) -> bool | None:
    """Whether `/cluster/resources` lists this guest on this node (None: the list is unknown)."""
    from nestctl.web.pages.inventory import resources_now  # noqa: PLC0415 - page module

    snap = await resources_now(request, target)
    if snap is None or snap.res is None:
        return None
    guest = snap.res.guest(kind, vmid)
    return guest is not None and guest.node == node


def guest_of(request: Request, target: str, kind: str, vmid: int) -> Any:
    from nestctl.web.pages.inventory import resources  # noqa: PLC0415

    snap = resources(request, target)
    if snap is None or snap.res is None:
        return None, None
    return snap.res.guest(kind, vmid), snap.res


def offer_for(
    request: Request,
    target: str,
    kind: str,
    node: str,
    vmid: int,
    *,
    status: Mapping[str, Any] | None,
) -> offers.Offer:
    """The one decision (offers.valid_actions) from the freshest facts: the guest's own status
    when read, else the inventory's row; the node's state from the inventory."""
    guest, res = guest_of(request, target, kind, vmid)
    node_online = res.node_online(node) if res is not None else None
    state = status.get("status") if status else (guest.status if guest else None)
    lock = status.get("lock") if status else (guest.lock if guest else None)
    template = bool(status.get("template")) if status else bool(guest and guest.template)
    return offers.valid_actions(
        kind,
        str(state) if state is not None else None,
        qmpstatus=str(status["qmpstatus"]) if status and status.get("qmpstatus") else None,
        lock=str(lock) if lock else None,
        node_online=node_online,
        template=template,
        node=node,
    )


def known_offer(
    request: Request,
    target: str,
    kind: str,
    node: str,
    vmid: int,
    *,
    status: Mapping[str, Any] | None,
) -> offers.Offer | None:
    """The offer, or None when nothing is known yet about the guest (then Proxmox decides)."""
    guest, _res = guest_of(request, target, kind, vmid)
    if status is None and guest is None:
        return None
    return offer_for(request, target, kind, node, vmid, status=status)


async def power_refused(
    request: Request, kind: str, label: str, key: tuple[str, ...], base: str
) -> Response | None:
    """A page saying why the power action in the path does not fit the guest's state now (or
    404 when the guest is not on that node), or None. `label` is "VM" or "CT"; `key` the cache
    key of the guest's detail (its status, when read)."""
    from nestctl.web.pages.common import web  # noqa: PLC0415 - page module
    from nestctl.web.templating import render  # noqa: PLC0415

    p = request.path_params
    target, node, vmid, action = p["target"], p["node"], p["vmid"], p["action"]
    if await exists(request, target, kind, node, vmid) is False:
        what = f"{label} {vmid} on {node}"
        return render(request, "not_found.html", status_code=404, what=what)
    cached = web(request).cache.peek(key)
    status = cached.status if cached is not None else None
    offer = known_offer(request, target, kind, node, vmid, status=status)
    if offer is None or action in offer.actions:
        return None
    return render(
        request,
        "not_now.html",
        status_code=409,
        action=action,
        what=f"{label} {vmid}",
        offer=offer,
        base=base,
    )


async def start_power(
    request: Request,
    api: Any,
    power: Callable[[Any, str, int, str], Any],
    label: str,
    back: str,
) -> Response:
    """Ask Proxmox for the power action in the path, follow its task from now on and send the
    visitor to the task page; a refusal is the failure page with a way `back`."""
    import asyncio  # noqa: PLC0415

    from nestctl.web.pages.common import failure, follow_task  # noqa: PLC0415

    p = request.path_params
    action = p["action"]
    try:
        upid = await asyncio.to_thread(power, api, p["node"], p["vmid"], action)
    except Exception as exc:  # noqa: BLE001 - Proxmox's own message is the answer
        return failure(request, f"{action} {label} {p['vmid']}", exc, back)
    return follow_task(request, p["target"], api, upid)


def with_buttons(
    findings: list[dict[str, Any]], base: str, offer: offers.Offer, kind: str = "qemu"
) -> list[tuple[dict[str, Any], FixButton | None]]:
    return [(f, fix_button(f.get("fix"), base, offer, kind=kind)) for f in findings]


async def charts_for(
    api: Any, path: str, timeframe: str, hourly: list[str]
) -> tuple[str, list[str]]:
    """(timeframe shown, charts): the cached hour's, or the day's or week's read now (one
    rrddata request; a refusal shows no chart rather than failing the page)."""
    import asyncio  # noqa: PLC0415

    from nestctl.web.sparkline import TIMEFRAMES, guest_charts  # noqa: PLC0415

    if timeframe not in TIMEFRAMES or timeframe == "hour":
        return "hour", hourly
    try:
        rows = await asyncio.to_thread(
            api.request, "GET", f"{path}/rrddata", {"timeframe": timeframe, "cf": "AVERAGE"}
        )
    except Exception:  # noqa: BLE001 - the page stands without its graph
        return timeframe, []
    return timeframe, guest_charts(rows, timeframe)
