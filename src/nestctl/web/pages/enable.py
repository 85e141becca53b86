"""`/t/{target}/vm/{node}/{vmid}/enable`: "make nested-ready" with a profile.

The page shows `vm enable`'s own plan first (the same planning as `nestctl vm enable --api
--dry-run`), with the digest of the config it was made from. Applying sends that digest:
Proxmox refuses the change if the config moved on since the plan was shown.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import actions
from nestctl.web import guestpage
from nestctl.web.fixes import restart_button
from nestctl.web.pages.common import api_for, failure, form, session, web
from nestctl.web.snapshot import describe_error
from nestctl.web.templating import render

_CONFLICT = "detected modified configuration"


def plan(api: Any, vmid: int, profile: str) -> dict[str, Any]:
    """The dry-run plan: the report's JSON, plus the options and digest it would apply."""
    from nestctl.vm.enable import EnableOptions  # noqa: PLC0415 - the engine, lazily
    from nestctl.vm.facts import VmOptions  # noqa: PLC0415
    from nestctl.vm.remote_enable import enable_report_api  # noqa: PLC0415

    report = enable_report_api(
        api,
        VmOptions(vmids=(vmid,)),
        EnableOptions(vmid=vmid, profile=profile, dry_run=True, snapshot=True),
    )
    body = report.to_json()
    body["options"], body["digest"] = [], ""
    for argv in body.get("commands", []):
        if argv[:2] == ["pvesh", "set"] and "--digest" in argv:
            cut = argv.index("--digest")
            body["digest"] = argv[cut + 1]
            opts = argv[3:cut]
            body["options"] = list(zip(opts[::2], opts[1::2], strict=True))
    names = {name.removeprefix("--") for name, _ in body["options"]}
    if "args" in names and not getattr(api, "is_root_ticket", False):
        body["blocked"] = (
            "args can be set only by root@pam logged in with a password (a ticket), "
            "not by an API token or another user: Proxmox refuses it"
        )
    return body


def _safety_first(
    api: Any, node: str, vmid: int, profile: str, digest: str
) -> tuple[str, str] | str:
    """Take `nestctl-before-<profile>-<date>` before the change: (its name, the digest to change
    the config with), or one sentence why the change must not go on (nothing was changed)."""
    import time  # noqa: PLC0415

    from nestctl.vm import safety  # noqa: PLC0415

    path = f"/nodes/{quote(node, safe='')}/qemu/{int(vmid)}/config"
    before = api.request("GET", path, {"current": 1})
    if not isinstance(before, dict) or before.get("digest") != digest:
        return "The config changed since the plan was shown (another admin or task)."
    planned = safety.plan_api(api, node, vmid, profile, config=before, now=time.time())
    safety.take_api(api, node, vmid, planned, profile)
    if not planned.taken:
        return f"The snapshot {planned.name} could not be taken: {planned.error}."
    after = safety.digest_after_snapshot(api, node, vmid, before)
    if after is None:
        return (
            f"The snapshot {planned.name} was taken, but the config changed meanwhile "
            "(another admin or task)."
        )
    return planned.name, after


def _profiles() -> tuple[str, ...]:
    from nestctl.vm.profiles import PROFILES  # noqa: PLC0415

    return PROFILES


def _base(target: str, node: str, vmid: int) -> str:
    return f"/t/{quote(target, safe='')}/vm/{quote(node, safe='')}/{vmid}"


async def show(request: Request) -> Response:
    p = request.path_params
    api = api_for(request, p["target"])
    profile = request.query_params.get("profile", "")
    body = None
    if profile in _profiles():
        try:
            body = await asyncio.to_thread(plan, api, p["vmid"], profile)
        except Exception as exc:  # noqa: BLE001
            return failure(request, "plan", exc, _base(p["target"], p["node"], p["vmid"]))
    return render(
        request,
        "enable.html",
        target=p["target"],
        node=p["node"],
        vmid=p["vmid"],
        profile=profile,
        profiles=_profiles(),
        plan=body,
        base=_base(p["target"], p["node"], p["vmid"]),
    )


async def apply(request: Request) -> Response:
    p = request.path_params
    api = api_for(request, p["target"])
    data = form(request)
    profile, digest = data.get("profile", ""), data.get("digest", "")
    base = _base(p["target"], p["node"], p["vmid"])
    if profile not in _profiles() or not digest:
        return render(request, "not_found.html", status_code=400)
    try:
        body = await asyncio.to_thread(plan, api, p["vmid"], profile)
    except Exception as exc:  # noqa: BLE001
        return failure(request, "plan", exc, base)
    ctx: dict[str, Any] = {
        "target": p["target"],
        "node": p["node"],
        "vmid": p["vmid"],
        "profile": profile,
        "profiles": _profiles(),
        "plan": body,
        "base": base,
    }
    if body.get("blocked") or not body["options"]:
        return render(request, "enable.html", status_code=409, **ctx)
    options, delete = actions.plan_params(body["options"])
    safety = body.get("snapshot") or {}
    if data.get("snapshot") == "1" and safety.get("supported") is not False:
        taken = await asyncio.to_thread(_safety_first, api, p["node"], p["vmid"], profile, digest)
        if isinstance(taken, str):  # not changed: say why
            ctx["snapshot_error"] = taken
            return render(request, "enable.html", status_code=409, **ctx)
        ctx["safety"], digest = taken
    try:
        # The digest the visitor saw, not the one just read: a change in between is refused.
        await asyncio.to_thread(
            actions.update_config,
            api,
            p["node"],
            p["vmid"],
            options=options,
            delete=delete,
            digest=digest,
        )
    except Exception as exc:  # noqa: BLE001
        if _CONFLICT in str(exc) or "digest" in getattr(exc, "errors", {}):
            ctx["conflict"] = describe_error(exc)
            return render(request, "enable.html", status_code=409, **ctx)
        return failure(request, f"enable VM {p['vmid']}", exc, base)
    s = session(request)
    web(request).cache.poke((s.id, "target", p["target"]))
    web(request).cache.poke((s.id, "vm", p["target"], p["node"], str(p["vmid"])))
    # A stopped VM takes the change when it starts: offer Start, not a restart that would fail.
    try:
        status = await asyncio.to_thread(
            api.request, "GET", f"{actions.vm_path(p['node'], p['vmid'])}/status/current"
        )
    except Exception:  # noqa: BLE001 - then the inventory's state decides
        status = None
    known = status if isinstance(status, dict) else None
    offer = guestpage.offer_for(request, p["target"], "qemu", p["node"], p["vmid"], status=known)
    ctx["restart"] = restart_button(base, offer)
    return render(request, "enable_done.html", **ctx)


routes = [
    Route("/t/{target}/vm/{node}/{vmid:int}/enable", show, methods=["GET"]),
    Route("/t/{target}/vm/{node}/{vmid:int}/enable", apply, methods=["POST"]),
]
