"""Firewall endpoints (cluster, node, VM): options and rules with digest, `delete` and `moveto`.

As pve-firewall does, every rule in a list carries the digest of the whole list, a change
carrying a stale digest is refused, and `moveto` puts a rule before the one that was at that
position.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.pvesim.handlers import ApiError, Ctx, handles, index, param_error, typed

_RULE_KEYS = (
    "type",
    "action",
    "macro",
    "source",
    "dest",
    "proto",
    "dport",
    "sport",
    "icmp-type",
    "iface",
    "log",
    "comment",
    "enable",
)
_ACTIONS = ("ACCEPT", "DROP", "REJECT")
_MODIFIED = "detected modified configuration - file changed by other user? Try again."


class _Store:
    """Where one scope keeps its rules and options (cluster, a node, a VM)."""

    def __init__(self, rules: list[dict[str, Any]], options: dict[str, Any]) -> None:
        self.rules = rules
        self.options = options


def _store(ctx: Ctx) -> _Store:
    params = ctx.route.uri_params
    if "vmid" in params and "/lxc/" in ctx.route.template:
        ct = ctx.ct
        return _Store(ct.firewall_rules, ct.firewall_options)
    if "vmid" in params:
        vm = ctx.vm
        return _Store(vm.firewall_rules, vm.firewall_options)
    if "node" in params:
        node = ctx.node
        return _Store(node.firewall_rules, node.firewall_options)
    return _Store(ctx.cluster.firewall_rules, ctx.cluster.firewall_options)


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _check_digest(ctx: Ctx, current: str) -> None:
    digest = ctx.text("digest")
    if digest is not None and digest != current:
        raise ApiError(500, _MODIFIED)


@contextmanager
def _changing_rules(ctx: Ctx) -> Iterator[_Store]:
    """The scope's rules, locked, once the caller's digest (if any) matched them."""
    store = _store(ctx)
    with ctx.cluster.lock:
        _check_digest(ctx, _digest(store.rules))
        yield store


def _listed(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    digest = _digest(rules)
    return [
        {**rule, "pos": i, "digest": digest, "ipversion": _ipversion(rule)}
        for i, rule in enumerate(rules)
    ]


def _ipversion(rule: dict[str, Any]) -> int | None:
    for key in ("source", "dest"):
        value = str(rule.get(key, ""))
        if ":" in value:
            return 6
        if re.match(r"\d+\.", value):
            return 4
    return None


def _clean(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if v is not None}


@handles("GET", "/cluster/firewall/rules")
@handles("GET", "/nodes/{node}/firewall/rules")
@handles("GET", "/nodes/{node}/qemu/{vmid}/firewall/rules")
@handles("GET", "/nodes/{node}/lxc/{vmid}/firewall/rules")
def list_rules(ctx: Ctx) -> Any:
    return [_clean(r) for r in _listed(_store(ctx).rules)]


def _rule_at(store: _Store, ctx: Ctx) -> int:
    pos = int(ctx.route.uri_params["pos"])
    if not 0 <= pos < len(store.rules):
        raise ApiError(400, "Parameter verification failed.", {"pos": f"no rule at position {pos}"})
    return pos


@handles("GET", "/cluster/firewall/rules/{pos}")
@handles("GET", "/nodes/{node}/firewall/rules/{pos}")
@handles("GET", "/nodes/{node}/qemu/{vmid}/firewall/rules/{pos}")
@handles("GET", "/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}")
def get_rule(ctx: Ctx) -> Any:
    store = _store(ctx)
    return _clean(_listed(store.rules)[_rule_at(store, ctx)])


def _rule_values(ctx: Ctx) -> dict[str, Any]:
    props = ctx.route.properties
    return {k: typed(props, k, ctx.text(k) or "") for k in _RULE_KEYS if k in ctx.params}


def _verify(rule: dict[str, Any]) -> None:
    """pve-firewall's verify_rule, for what a client most often gets wrong."""
    errors: dict[str, str] = {}
    kind = rule.get("type")
    if kind is None:
        errors["type"] = "property is missing"
    action = rule.get("action")
    if action is None and not rule.get("macro"):
        errors["action"] = "property is missing"
    elif action is not None and kind in ("in", "out", "forward") and action not in _ACTIONS:
        errors["action"] = f"unknown action '{action}'"
    if rule.get("dport") and not rule.get("proto") and not rule.get("macro"):
        errors["proto"] = "missing property - 'dport' requires this property"
    if errors:
        raise param_error(errors)


@handles("POST", "/cluster/firewall/rules")
@handles("POST", "/nodes/{node}/firewall/rules")
@handles("POST", "/nodes/{node}/qemu/{vmid}/firewall/rules")
@handles("POST", "/nodes/{node}/lxc/{vmid}/firewall/rules")
def create_rule(ctx: Ctx) -> Any:
    rule = _rule_values(ctx)
    rule.setdefault("enable", 0)  # pve-firewall writes a new rule disabled unless told
    _verify(rule)
    with _changing_rules(ctx) as store:
        pos = min(ctx.integer("pos", 0) or 0, len(store.rules))
        store.rules.insert(pos, rule)
    return None


@handles("PUT", "/cluster/firewall/rules/{pos}")
@handles("PUT", "/nodes/{node}/firewall/rules/{pos}")
@handles("PUT", "/nodes/{node}/qemu/{vmid}/firewall/rules/{pos}")
@handles("PUT", "/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}")
def update_rule(ctx: Ctx) -> Any:
    with _changing_rules(ctx) as store:
        pos = _rule_at(store, ctx)
        rule = store.rules[pos]
        moveto = ctx.integer("moveto")
        if moveto is not None:
            if moveto != pos:
                moved = [r for i, r in enumerate(store.rules) if i != pos]
                target = moveto - 1 if moveto > pos else moveto
                moved.insert(min(target, len(moved)), rule)
                store.rules[:] = moved
            return None
        updated = dict(rule)
        updated.update(_rule_values(ctx))
        for key in re.split(r"[,;\s]+", ctx.text("delete") or ""):
            updated.pop(key, None)
        _verify(updated)
        store.rules[pos] = updated
    return None


@handles("DELETE", "/cluster/firewall/rules/{pos}")
@handles("DELETE", "/nodes/{node}/firewall/rules/{pos}")
@handles("DELETE", "/nodes/{node}/qemu/{vmid}/firewall/rules/{pos}")
@handles("DELETE", "/nodes/{node}/lxc/{vmid}/firewall/rules/{pos}")
def delete_rule(ctx: Ctx) -> Any:
    with _changing_rules(ctx) as store:
        del store.rules[_rule_at(store, ctx)]
    return None


@handles("GET", "/cluster/firewall/options")
@handles("GET", "/nodes/{node}/firewall/options")
@handles("GET", "/nodes/{node}/qemu/{vmid}/firewall/options")
@handles("GET", "/nodes/{node}/lxc/{vmid}/firewall/options")
def get_options(ctx: Ctx) -> Any:
    options = _store(ctx).options
    return {**options, "digest": _digest(options)}


@handles("PUT", "/cluster/firewall/options")
@handles("PUT", "/nodes/{node}/firewall/options")
@handles("PUT", "/nodes/{node}/qemu/{vmid}/firewall/options")
@handles("PUT", "/nodes/{node}/lxc/{vmid}/firewall/options")
def set_options(ctx: Ctx) -> Any:
    store = _store(ctx)
    props = ctx.route.properties
    with ctx.cluster.lock:
        _check_digest(ctx, _digest(store.options))
        for key in re.split(r"[,;\s]+", ctx.text("delete") or ""):
            store.options.pop(key, None)
        for key in ctx.params:
            if key not in ("node", "vmid", "digest", "delete"):
                store.options[key] = typed(props, key, ctx.text(key) or "")
    return None


@handles("GET", "/cluster/firewall")
@handles("GET", "/nodes/{node}/firewall")
@handles("GET", "/nodes/{node}/qemu/{vmid}/firewall")
@handles("GET", "/nodes/{node}/lxc/{vmid}/firewall")
def firewall_index(ctx: Ctx) -> Any:
    _store(ctx)
    return index("rules", "options")
