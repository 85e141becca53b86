"""`nestctl ct enable CTID --workload docker|kvm|fuse|systemd`: plan, apply, verify.

On the node: `pct set CTID --features ... --digest D` (pct's own update with the digest of the
config that was checked, so a change made meanwhile is refused). Over the API: one PUT of
`/nodes/N/lxc/CTID/config` carrying the same digest. Never a locked container. Proxmox lets only
root@pam (logged in with a password, not a token) change features other than nesting, features
of a privileged CT, and `dev<N>` (LXC.pm check_ct_modify_config_perm): the plan says so instead
of trying. A running CT keeps the change in [pve:pending] until its next start: the report says
to restart it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nestctl.ct.config import CtConfig, active_containers, read_ct_config
from nestctl.ct.facts import CtFacts, ct_facts
from nestctl.ct.rules import CtFix, can_docker, can_fuse, can_kvm, can_systemd, plan_fix
from nestctl.findings import Finding, Report, error, info, unknown

if TYPE_CHECKING:
    from nestctl.api.client import ApiClient
    from nestctl.machine import Host

CHECKS = {"docker": can_docker, "systemd": can_systemd, "kvm": can_kvm, "fuse": can_fuse}


@dataclass(frozen=True)
class CtEnableOptions:
    vmid: int
    workloads: tuple[str, ...]
    dry_run: bool = False
    kvm_gid: int | None = None
    tag: str = "nested"  # the intent tag it joins (as `vm enable` does), except for systemd alone


def _payload(eopts: CtEnableOptions) -> dict[str, Any]:
    return {
        "vmid": eopts.vmid,
        "workloads": list(eopts.workloads),
        "dry_run": eopts.dry_run,
        "node": None,
        "commands": [],
        "api": None,
        "applied": False,
        "blocked": None,
        "restart_required": False,
        "results": [],
    }


def _title(eopts: CtEnableOptions) -> str:
    return f"CT {eopts.vmid}: enable {', '.join(eopts.workloads)}"


def _plan(
    facts: CtFacts, eopts: CtEnableOptions, payload: dict[str, Any]
) -> tuple[CtFix | None, list[Finding]]:
    """The change, or the reason there is none (locked, nothing to do)."""
    vmid = eopts.vmid
    if facts.lock:
        payload["blocked"] = f"locked ({facts.lock})"
        return None, [
            error(
                "ct.enable.locked",
                f"CT {vmid}: not changed: Proxmox has it locked ({facts.lock}); nestctl never "
                "changes a locked container",
                f"wait for the {facts.lock} to finish (pct unlock {vmid} only if it is stale)",
            )
        ]
    fix = with_intent_tag(
        plan_fix(facts, set(eopts.workloads), kvm_gid=eopts.kvm_gid), facts, eopts
    )
    if fix is None:
        return None, [
            info(
                "ct.enable.nothing-to-do",
                f"CT {vmid}: its config already allows {', '.join(eopts.workloads)}",
            )
        ]
    notes = [info("ct.enable.note", f"CT {vmid}: {fix.note}")] if fix.note else []
    return fix, notes


def with_intent_tag(fix: CtFix | None, facts: CtFacts, eopts: CtEnableOptions) -> CtFix | None:
    """Like `vm enable`: the container is marked as meant to nest by the intent tag, in the same
    digest-guarded change (tags apply at once, even on a running CT). systemd alone is no nested
    workload, so it gets no tag."""
    if set(eopts.workloads) <= {"systemd"} or eopts.tag in facts.tags:
        return fix
    tags = ("--tags", ";".join([*facts.tags, eopts.tag]))
    if fix is None:
        return CtFix((tags,), needs_root=False)
    return CtFix((*fix.options, tags), fix.needs_root, fix.note)


def _verify(
    before: CtFacts, after: CtConfig, eopts: CtEnableOptions, payload: dict[str, Any]
) -> list[Finding]:
    """Read the config again: in force (stopped CT) or waiting in [pve:pending] (running)."""
    vmid = eopts.vmid
    merged = CtConfig(vmid=after.vmid, node=after.node, digest=after.digest)
    merged.main = {**after.main, **after.pending}
    merged.lxc = list(after.lxc)
    facts = ct_facts(merged, running=before.running)
    missing = [w for w in eopts.workloads if CHECKS[w](facts) is not True]
    if missing:
        return [
            error(
                "ct.enable.mismatch",
                f"CT {vmid}: after the change its config still does not allow {', '.join(missing)}",
            )
        ]
    waiting = bool(after.pending)
    payload["restart_required"] = waiting and before.running is not False
    if payload["restart_required"]:
        return [
            error(
                "ct.enable.restart-required",
                f"CT {vmid}: changed; the change waits in [pve:pending] and applies when the "
                "container restarts",
                f"pct reboot {vmid}",
            )
        ]
    return [info("ct.enable.verified", f"CT {vmid}: changed and in force")]


# -- on the node ----------------------------------------------------------------------------------


def enable_local(host: Host, eopts: CtEnableOptions) -> Report:
    from nestctl.vm.config import local_node  # noqa: PLC0415

    payload = _payload(eopts)
    vmid = eopts.vmid
    path = f"/etc/pve/lxc/{vmid}.conf"
    node = local_node(host)
    if host.exists(path).present is False:
        from nestctl.ct.collect import not_found  # noqa: PLC0415
        from nestctl.ct.config import ct_config_paths  # noqa: PLC0415

        known = {int(p.rsplit("/", 1)[1].split(".")[0]) for p in ct_config_paths(host, node)}
        payload["blocked"] = "no such container on this node"
        return Report(_title(eopts), payload, [not_found(vmid, known, "on this node")])
    conf = read_ct_config(host, path, node)
    if not conf.readable:
        payload["blocked"] = "its config could not be read"
        why = "; ".join(conf.problems)
        return Report(
            _title(eopts),
            payload,
            [unknown("ct.unreadable", f"CT {vmid}: its config could not be read ({why})")],
        )
    active = active_containers(host)
    facts = ct_facts(conf, running=(vmid in active) if active is not None else None)
    payload["node"] = conf.node
    fix, findings = _plan(facts, eopts, payload)
    if fix is None:
        return Report(_title(eopts), payload, findings)
    argv = ("pct", "set", str(vmid), *(a for pair in fix.options for a in pair))
    argv = (*argv, "--digest", conf.digest)
    payload["commands"] = [list(argv)]
    if eopts.dry_run:
        findings.append(info("ct.enable.planned", f"would run: {shlex.join(argv)}"))
        return Report(_title(eopts), payload, findings)
    res = host.run(argv, timeout=120.0)
    payload["results"] = [{"argv": list(argv), "status": res.status.value, "rc": res.rc}]
    if res.status.value == "recorded":
        payload["applied"] = True
        findings.append(info("ct.enable.recorded", f"{shlex.join(argv)}: recorded, not run"))
        return Report(_title(eopts), payload, findings)
    if not res.ok:
        findings.append(error("ct.enable.failed", f"CT {vmid}: {res.describe()}"))
        return Report(_title(eopts), payload, findings)
    payload["applied"] = True
    findings += _verify(facts, read_ct_config(host, path, conf.node), eopts, payload)
    return Report(_title(eopts), payload, findings)


# -- over the API ---------------------------------------------------------------------------------

_CONFLICT = "detected modified configuration"


def enable_api(client: ApiClient, eopts: CtEnableOptions) -> Report:
    from nestctl.api.errors import ApiError, ApiPermissionError  # noqa: PLC0415
    from nestctl.ct.collect import config_from_api  # noqa: PLC0415

    payload = _payload(eopts)
    vmid = eopts.vmid
    resources = client.get("/cluster/resources", type="vm")
    row = next(
        (
            r
            for r in (resources if isinstance(resources, list) else [])
            if isinstance(r, dict) and r.get("type") == "lxc" and str(r.get("vmid")) == str(vmid)
        ),
        None,
    )
    if row is None or not isinstance(row.get("node"), str):
        from nestctl.ct.collect import lxc_rows, not_found  # noqa: PLC0415

        known = {int(r["vmid"]) for r in lxc_rows(resources, ())}
        payload["blocked"] = "no such container in the cluster"
        return Report(_title(eopts), payload, [not_found(vmid, known)])
    node = str(row["node"])
    payload["node"] = node
    base = f"/nodes/{node}/lxc/{vmid}"
    conf = config_from_api(
        vmid, node, client.get(f"{base}/config", current=1), client.get(f"{base}/pending")
    )
    running = {"running": True, "stopped": False}.get(str(row.get("status")))
    facts = ct_facts(conf, running=running)
    fix, findings = _plan(facts, eopts, payload)
    if fix is None:
        return Report(_title(eopts), payload, findings)
    params = {**fix.api_params(), "digest": conf.digest}
    payload["api"] = {"method": "PUT", "path": f"{base}/config", "params": params}
    argv = ["pvesh", "set", f"{base}/config"]
    argv += [a for key, value in params.items() for a in (f"--{key}", value)]
    payload["commands"] = [argv]
    if fix.needs_root and not client.is_root_ticket:
        why = (
            "Proxmox lets only root@pam (logged in with a password, not an API token) change "
            f"these features or pass devices in; this session is {client.userid}"
        )
        payload["blocked"] = why
        findings.append(
            error(
                "ct.enable.needs-root",
                f"CT {vmid}: not changed: {why}",
                f"run again with --user root@pam, or on node {node} as root: {fix.pct(vmid)}",
            )
        )
        return Report(_title(eopts), payload, findings)
    if eopts.dry_run:
        findings.append(info("ct.enable.planned", f"would send: PUT {base}/config {params}"))
        return Report(_title(eopts), payload, findings)
    try:
        client.put(f"{base}/config", **params)
    except ApiError as exc:
        payload["results"] = [{"argv": argv, "status": "failed", "rc": None}]
        if _CONFLICT in exc.message or "digest" in exc.errors:
            findings.append(
                error(
                    "ct.enable.conflict",
                    f"CT {vmid}: not changed: the config changed since nestctl read it "
                    f"(another admin or task): {exc.message.strip()}",
                    "run nestctl ct enable again to plan on the new config",
                )
            )
        else:
            fix_text = None
            if isinstance(exc, ApiPermissionError):
                fix_text = f"as root on node {node}: {fix.pct(vmid)}"
            findings.append(error("ct.enable.failed", f"CT {vmid}: {exc}", fix_text))
        return Report(_title(eopts), payload, findings)
    payload["results"] = [{"argv": argv, "status": "ok", "rc": 0}]
    payload["applied"] = True
    after = config_from_api(
        vmid, node, client.get(f"{base}/config", current=1), client.get(f"{base}/pending")
    )
    findings += _verify(facts, after, eopts, payload)
    return Report(_title(eopts), payload, findings)
