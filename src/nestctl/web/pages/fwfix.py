"""`.../firewall/turn-on`: the fix "Turn the VM firewall on" as a button, behind a confirmation.

It sets `enable=1` in the VM's firewall options, sent with the digest of the options the page
showed (a concurrent change is refused). The CLI command is shown beside the button.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import firewall as fw
from nestctl.web.pages.common import api_for, failure, form, see_other, session, web
from nestctl.web.templating import render


def _ctx(request: Request) -> dict[str, Any]:
    p = request.path_params
    kind = "lxc" if "/ct/" in request.url.path else "qemu"
    base = f"/t/{quote(p['target'], safe='')}/{'ct' if kind == 'lxc' else 'vm'}"
    base += f"/{quote(p['node'], safe='')}/{p['vmid']}"
    return {
        "target": p["target"],
        "node": p["node"],
        "vmid": p["vmid"],
        "kind": kind,
        "base": base,
        "cli": f"pvesh set /nodes/{p['node']}/{kind}/{p['vmid']}/firewall/options --enable 1",
    }


async def confirm(request: Request) -> Response:
    ctx = _ctx(request)
    api = api_for(request, ctx["target"])
    try:
        options = await asyncio.to_thread(fw.get_options, api, fw.Scope(ctx["node"], ctx["vmid"]))
    except Exception as exc:  # noqa: BLE001
        return failure(request, "firewall options", exc, ctx["base"])
    return render(request, "fw_turn_on.html", digest=options.get("digest", ""), **ctx)


async def apply(request: Request) -> Response:
    ctx = _ctx(request)
    api = api_for(request, ctx["target"])
    digest = form(request).get("digest") or None
    scope = fw.Scope(ctx["node"], ctx["vmid"])
    try:
        await asyncio.to_thread(
            fw.set_options, api, scope, enable=True, policy_in=None, policy_out=None, digest=digest
        )
    except Exception as exc:  # noqa: BLE001
        return failure(request, "turn the firewall on", exc, ctx["base"])
    s = session(request)
    web(request).cache.poke((s.id, "vm", ctx["target"], ctx["node"], str(ctx["vmid"])))
    return see_other(ctx["base"])


routes = [
    Route("/t/{target}/vm/{node}/{vmid:int}/firewall/turn-on", confirm, methods=["GET"]),
    Route("/t/{target}/vm/{node}/{vmid:int}/firewall/turn-on", apply, methods=["POST"]),
]
