"""Firewall rules and options of a VM or a node through the Proxmox API, and whether they apply.

A VM's rules filter traffic only when three switches are all on: the cluster's firewall `enable`,
the VM's firewall `enable`, and `firewall=1` on the VM's network device. `applies()` names the one
that is off; a switch we could not read makes the answer unknown, never "no".
Every change carries the `digest` Proxmox gave with the list, so a concurrent edit is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nestctl.api.actions import Api, vm_path

#: Rule fields a form may set (the names of Proxmox's rule parameters).
RULE_FIELDS = (
    "type", "action", "macro", "iface", "source", "dest", "proto",
    "dport", "sport", "icmp-type", "log", "comment", "enable",
)  # fmt: skip
RULE_TYPES = ("in", "out", "forward", "group")
ACTIONS = ("ACCEPT", "DROP", "REJECT")
POLICIES = ("ACCEPT", "REJECT", "DROP")
LOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog")


@dataclass(frozen=True)
class Scope:
    """Whose firewall: a node's (`vmid` None) or a VM's."""

    node: str
    vmid: int | None = None
    kind: str = "qemu"  # "lxc" for a container (the same firewall API under .../lxc/VMID)

    @property
    def base(self) -> str:
        if self.vmid is None:
            return f"/nodes/{quote(self.node, safe='')}/firewall"
        if self.kind == "lxc":
            return f"/nodes/{quote(self.node, safe='')}/lxc/{int(self.vmid)}/firewall"
        return f"{vm_path(self.node, self.vmid)}/firewall"

    @property
    def change_privilege(self) -> str:
        return "Sys.Modify" if self.vmid is None else "VM.Config.Network"


@dataclass
class Rule:
    pos: int
    fields: dict[str, str]
    digest: str | None

    @property
    def enabled(self) -> bool:
        return self.fields.get("enable", "0") not in ("0", "")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def list_rules(api: Api, scope: Scope) -> tuple[list[Rule], str | None]:
    """The rules in order, and the digest of the rule set (for changes)."""
    rows = api.request("GET", f"{scope.base}/rules")
    rules: list[Rule] = []
    digest = None
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        try:
            pos = int(row.get("pos", ""))
        except (TypeError, ValueError):
            continue
        fields = {k: _scalar(v) for k, v in row.items() if k not in ("pos", "digest", "ipversion")}
        digest = _scalar(row.get("digest")) or digest
        rules.append(Rule(pos, fields, _scalar(row.get("digest")) or None))
    rules.sort(key=lambda r: r.pos)
    return rules, digest


class RuleError(ValueError):
    """A rule form that cannot be sent (checked here so the message is ours and exact);
    `field` names the form field at fault, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_ACTION = re.compile(r"[A-Za-z][A-Za-z0-9\-_]+", re.ASCII)


def rule_params(form: Mapping[str, str], *, new: bool) -> tuple[dict[str, str], list[str]]:
    """Parameters for a rule from a form: set values, and (when editing) fields to delete."""
    params: dict[str, str] = {}
    delete: list[str] = []
    for name in RULE_FIELDS:
        value = form.get(name, "").strip()
        if name == "enable":
            params[name] = "1" if value in ("1", "on", "true") else "0"
            continue
        if value:
            params[name] = value
        elif not new and name not in ("type", "action"):
            delete.append(name)
    if new and "type" not in params:
        raise RuleError("a rule needs a direction (type: in, out, forward or group)", "type")
    if "type" in params and params["type"] not in RULE_TYPES:
        raise RuleError(f"type must be one of {', '.join(RULE_TYPES)}", "type")
    if new and "action" not in params:
        raise RuleError(
            "a rule needs an action (ACCEPT, DROP, REJECT or a security group)", "action"
        )
    if "action" in params and not _ACTION.fullmatch(params["action"]):
        raise RuleError("action must be ACCEPT, DROP, REJECT or a security group name", "action")
    for port in ("dport", "sport"):
        # pve-firewall's verify_rule: a port needs a protocol, its own or its macro's.
        if port in params and "proto" not in params and "macro" not in params:
            raise RuleError("a port needs a protocol: pick tcp or udp", "proto")
    if "log" in params and params["log"] not in LOG_LEVELS:
        raise RuleError(f"log must be one of {', '.join(LOG_LEVELS)}", "log")
    return params, delete


def add_rule(api: Api, scope: Scope, params: Mapping[str, str], digest: str | None) -> None:
    body = dict(params)
    if digest:
        body["digest"] = digest
    api.request("POST", f"{scope.base}/rules", body)


def edit_rule(
    api: Api,
    scope: Scope,
    pos: int,
    *,
    params: Mapping[str, str],
    delete: list[str],
    digest: str | None,
) -> None:
    body = dict(params)
    if delete:
        body["delete"] = ",".join(delete)
    if digest:
        body["digest"] = digest
    api.request("PUT", f"{scope.base}/rules/{int(pos)}", body)


def move_rule(api: Api, scope: Scope, pos: int, moveto: int, digest: str | None) -> None:
    body: dict[str, Any] = {"moveto": int(moveto)}
    if digest:
        body["digest"] = digest
    api.request("PUT", f"{scope.base}/rules/{int(pos)}", body)


def set_rule_enabled(api: Api, scope: Scope, pos: int, enabled: bool, digest: str | None) -> None:
    body: dict[str, Any] = {"enable": 1 if enabled else 0}
    if digest:
        body["digest"] = digest
    api.request("PUT", f"{scope.base}/rules/{int(pos)}", body)


def delete_rule(api: Api, scope: Scope, pos: int, digest: str | None) -> None:
    api.request("DELETE", f"{scope.base}/rules/{int(pos)}", {"digest": digest} if digest else None)


def get_options(api: Api, scope: Scope) -> dict[str, str]:
    reply = api.request("GET", f"{scope.base}/options")
    return {k: _scalar(v) for k, v in reply.items()} if isinstance(reply, Mapping) else {}


def set_options(
    api: Api,
    scope: Scope,
    *,
    enable: bool | None,
    policy_in: str | None,
    policy_out: str | None,
    digest: str | None,
) -> None:
    """Change the firewall switch and policies. Nodes have no policies of their own."""
    body: dict[str, Any] = {}
    if enable is not None:
        body["enable"] = 1 if enable else 0
    for name, value in (("policy_in", policy_in), ("policy_out", policy_out)):
        if value:
            if scope.vmid is None:
                raise RuleError(f"{name} is set per cluster or per VM, not per node")
            if value not in POLICIES:
                raise RuleError(f"{name} must be one of {', '.join(POLICIES)}")
            body[name] = value
    if digest:
        body["digest"] = digest
    api.request("PUT", f"{scope.base}/options", body)


@dataclass
class Applies:
    """Whether a VM's firewall rules filter traffic: True, False (with what is off) or None."""

    value: bool | None
    off: list[str] = field(default_factory=list)  # each switch that is off, with its fix
    unknown: list[str] = field(default_factory=list)  # each switch we could not read, and why


_NET = re.compile(r"net(\d+)", re.ASCII)


def _on(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "on", "yes", "true")


def nic_firewall(conf: Mapping[str, str]) -> dict[str, bool]:
    """Each network device's `firewall` flag (default off, as Proxmox has it)."""
    out: dict[str, bool] = {}
    for key, value in conf.items():
        if _NET.fullmatch(key):
            parts = dict(p.split("=", 1) for p in str(value).split(",") if "=" in p)
            out[key] = _on(parts.get("firewall"), False)
    return dict(sorted(out.items(), key=lambda kv: int(kv[0][3:])))


def applies(
    cluster: Mapping[str, str] | None,
    vm: Mapping[str, str] | None,
    conf: Mapping[str, str] | None,
    *,
    cluster_why: str = "",
    vm_why: str = "",
    conf_why: str = "",
) -> Applies:
    """Combine the three switches; `None` inputs are unread (with the reason in *_why)."""
    result = Applies(None)
    if cluster is None:
        result.unknown.append(f"cluster firewall: {cluster_why or 'not read'}")
    elif not _on(cluster.get("enable"), False):
        result.off.append("cluster firewall is off (Datacenter > Firewall > Options: enable=1)")
    if vm is None:
        result.unknown.append(f"VM firewall: {vm_why or 'not read'}")
    elif not _on(vm.get("enable"), False):
        result.off.append("VM firewall is off (Firewall > Options: enable=1)")
    if conf is None:
        result.unknown.append(f"network devices: {conf_why or 'not read'}")
    else:
        nics = nic_firewall(conf)
        if not nics:
            result.off.append("the VM has no network device")
        result.off.extend(
            f"{name} has firewall=0 (set firewall=1 on {name})"
            for name, on in nics.items()
            if not on
        )
    # One switch known off is enough to say the rules do not (fully) apply, whatever is unread.
    if result.off:
        result.value = False
    elif not result.unknown:
        result.value = True
    return result
