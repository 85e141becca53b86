"""Firewall of a VM or a node: does it apply, its options, and its rules (add, edit, move,
enable/disable, delete), every change sent with the digest of what the visitor saw.

These pages read the rules when shown (not from the background cache): an edit must carry the
digest of the rule set as it is now, or Proxmox refuses it as a concurrent change.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.api import firewall as fw
from nestctl.web import fwforms, vmdetail
from nestctl.web.errors import field_errors
from nestctl.web.pages.common import api_for, failure, form, see_other
from nestctl.web.snapshot import describe_error, status_of
from nestctl.web.templating import render


def _scope(request: Request) -> fw.Scope:
    p = request.path_params
    kind = "lxc" if request.url.path.split("/")[3:4] == ["ct"] else "qemu"
    return fw.Scope(p["node"], p.get("vmid"), kind)


def _base(target: str, scope: fw.Scope) -> str:
    t, n = quote(target, safe=""), quote(scope.node, safe="")
    if scope.vmid is None:
        return f"/t/{t}/node/{n}"
    return f"/t/{t}/{'ct' if scope.kind == 'lxc' else 'vm'}/{n}/{scope.vmid}"


def _read(api: Any, scope: fw.Scope) -> dict[str, Any]:
    rules, digest = fw.list_rules(api, scope)
    out: dict[str, Any] = {"rules": rules, "digest": digest, "options": None, "applies": None}
    try:
        out["options"] = fw.get_options(api, scope)
    except Exception as exc:  # noqa: BLE001 - shown as unknown with the reason
        out["options_error"] = describe_error(exc)
    if scope.vmid is not None and scope.kind == "qemu":
        out["applies"] = vmdetail.fetch_firewall_applies(api, scope.node, scope.vmid)
    out["macros"] = fwforms.macros(api)
    return out


async def page(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    draft: dict[str, str] | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    target = request.path_params["target"]
    scope = _scope(request)
    api = api_for(request, target)
    try:
        data = await asyncio.to_thread(_read, api, scope)
    except Exception as exc:  # noqa: BLE001
        return failure(request, "firewall", exc, _base(target, scope))
    return render(
        request,
        "firewall.html",
        status_code=status,
        target=target,
        scope=scope,
        base=_base(target, scope),
        error=error,
        types=fw.RULE_TYPES,
        actions=fw.ACTIONS,
        policies=fw.POLICIES,
        levels=fw.LOG_LEVELS,
        protocols=fwforms.PROTOCOLS,
        draft=fw.Rule(-1, draft, None) if draft is not None else None,
        field_errors=field_errors or {},
        **data,
    )


async def _change(request: Request, what: str, call: Any) -> Response:
    """Run one change; back to the list, or Proxmox's own message."""
    target = request.path_params["target"]
    scope = _scope(request)
    api = api_for(request, target)
    try:
        await asyncio.to_thread(call, api, scope)
    except fw.RuleError as exc:
        errors = {exc.field: str(exc)} if exc.field else {}
        return await _refused(request, str(exc), errors)
    except Exception as exc:  # noqa: BLE001
        if status_of(exc) == 400 and field_errors(exc):
            # Proxmox refused a field: the form comes back as typed, the field's error beside it.
            return await _refused(request, describe_error(exc), field_errors(exc))
        return failure(request, what, exc, f"{_base(target, scope)}/firewall")
    return see_other(f"{_base(target, scope)}/firewall")


async def _refused(request: Request, error: str, errors: dict[str, str]) -> Response:
    """The page again with what was typed (an add: the add form; an edit: the edit form)."""
    data = {k: v for k, v in form(request).items() if k in fw.RULE_FIELDS}
    if "pos" in request.path_params:
        return await _rule_page(
            request, "rule_edit.html", status=400, error=error, draft=data, field_errors=errors
        )
    return await page(request, status=400, error=error, draft=data, field_errors=errors)


def _pos(request: Request) -> int:
    return int(request.path_params["pos"])


def _digest(data: dict[str, str]) -> str | None:
    return data.get("digest") or None


async def add(request: Request) -> Response:
    data = form(request)

    def call(api: Any, scope: fw.Scope) -> None:
        params, _ = fw.rule_params(data, new=True)
        fw.add_rule(api, scope, params, _digest(data))

    return await _change(request, "add rule", call)


async def _rule_page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    error: str | None = None,
    draft: dict[str, str] | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    """A page about one rule (edit, delete), with the digest of the rule set as it is now."""
    target = request.path_params["target"]
    scope = _scope(request)
    api = api_for(request, target)
    try:
        rules, digest = await asyncio.to_thread(fw.list_rules, api, scope)
    except Exception as exc:  # noqa: BLE001
        return failure(request, "firewall", exc, _base(target, scope))
    rule = next((r for r in rules if r.pos == _pos(request)), None)
    if rule is None:
        return render(request, "not_found.html", status_code=404)
    macros = await asyncio.to_thread(fwforms.macros, api)
    return render(
        request,
        template,
        status_code=status,
        target=target,
        scope=scope,
        base=_base(target, scope),
        rule=fw.Rule(rule.pos, draft, rule.digest) if draft is not None else rule,
        digest=digest,
        types=fw.RULE_TYPES,
        actions=fw.ACTIONS,
        levels=fw.LOG_LEVELS,
        macros=macros,
        protocols=fwforms.PROTOCOLS,
        error=error,
        field_errors=field_errors or {},
    )


async def edit_form(request: Request) -> Response:
    return await _rule_page(request, "rule_edit.html")


async def edit(request: Request) -> Response:
    data = form(request)
    pos = _pos(request)

    def call(api: Any, scope: fw.Scope) -> None:
        params, delete = fw.rule_params(data, new=False)
        fw.edit_rule(api, scope, pos, params=params, delete=delete, digest=_digest(data))

    return await _change(request, f"edit rule {pos}", call)


async def move(request: Request) -> Response:
    data = form(request)
    pos = _pos(request)
    try:
        moveto = int(data.get("moveto", ""))
    except ValueError:
        return await page(request, status=400, error="moveto must be a position number")
    if moveto < 0:
        return await page(request, status=400, error="moveto must be 0 or more")
    return await _change(
        request,
        f"move rule {pos}",
        lambda api, scope: fw.move_rule(api, scope, pos, moveto, _digest(data)),
    )


async def toggle(request: Request) -> Response:
    data = form(request)
    pos = _pos(request)
    enabled = data.get("enable") == "1"
    return await _change(
        request,
        f"{'enable' if enabled else 'disable'} rule {pos}",
        lambda api, scope: fw.set_rule_enabled(api, scope, pos, enabled, _digest(data)),
    )


async def delete_form(request: Request) -> Response:
    return await _rule_page(request, "rule_delete.html")


async def delete(request: Request) -> Response:
    data = form(request)
    pos = _pos(request)
    return await _change(
        request,
        f"delete rule {pos}",
        lambda api, scope: fw.delete_rule(api, scope, pos, _digest(data)),
    )


async def options(request: Request) -> Response:
    data = form(request)
    enable = {"1": True, "0": False}.get(data.get("enable", ""))

    def call(api: Any, scope: fw.Scope) -> None:
        fw.set_options(
            api,
            scope,
            enable=enable,
            policy_in=data.get("policy_in") or None,
            policy_out=data.get("policy_out") or None,
            digest=_digest(data),
        )

    return await _change(request, "firewall options", call)


def _routes(prefix: str) -> list[Route]:
    fwp = f"{prefix}/firewall"
    rule = f"{fwp}/rules/{{pos:int}}"
    return [
        Route(fwp, page, methods=["GET"]),
        Route(f"{fwp}/rules", add, methods=["POST"]),
        Route(f"{rule}/edit", edit_form, methods=["GET"]),
        Route(f"{rule}/edit", edit, methods=["POST"]),
        Route(f"{rule}/move", move, methods=["POST"]),
        Route(f"{rule}/enable", toggle, methods=["POST"]),
        Route(f"{rule}/delete", delete_form, methods=["GET"]),
        Route(f"{rule}/delete", delete, methods=["POST"]),
        Route(f"{fwp}/options", options, methods=["POST"]),
    ]


routes = (
    _routes("/t/{target}/vm/{node}/{vmid:int}")
    + _routes("/t/{target}/ct/{node}/{vmid:int}")
    + _routes("/t/{target}/node/{node}")
)
