"""`nestctl vm enable --api`: the same plan as on the node, applied through Proxmox's API.

The change is one config update carrying the `digest` of the config that was checked: Proxmox
refuses it when the config changed in between. `args` can be set only by root@pam logged in
with a password (a ticket), never by an API token: that is Proxmox's rule, so the plan says so
instead of trying. `--restart` is `status/reboot` (a cold restart: a new QEMU process), and the
task is polled until it ends.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from nestctl.api.client import ApiClient
from nestctl.api.errors import ApiError, ApiPermissionError
from nestctl.findings import Finding, Report, Section, error, info
from nestctl.vm.analyse import context_for, effective_cpu, node_findings, pending_restart_keys
from nestctl.vm.collect.api import config_from_pending, int_of, node_from_api, vm_from_api
from nestctl.vm.enable import EnableOptions, new_payload, plan_vm
from nestctl.vm.facts import UnreachableVm, VmOptions
from nestctl.vm.profiles import Plan
from nestctl.vm.safety import SafetySnapshot, rollback_hint

#: How long a reboot task may take before we stop waiting (seconds).
REBOOT_TIMEOUT_S = 900.0
_CONFLICT = "detected modified configuration"


def api_params(plan: Plan) -> dict[str, str]:
    """`qm set` options -> API parameters (`--cpu host` -> cpu=host)."""
    return {opt.removeprefix("--"): value for opt, value in plan.options}


def enable_report_api(
    client: ApiClient, opts: VmOptions, eopts: EnableOptions, *, poll: float = 1.0
) -> Report:
    vmid = eopts.vmid
    title = f"VM {vmid}: enable {eopts.profile}"
    payload = new_payload(eopts)
    findings: list[Finding] = []
    resources = client.get("/cluster/resources", type="vm")
    res = next(
        (
            r
            for r in (resources if isinstance(resources, list) else [])
            if isinstance(r, dict) and r.get("type") == "qemu" and int_of(r.get("vmid")) == vmid
        ),
        None,
    )
    if res is None:
        from nestctl.vm.notfound import not_found  # noqa: PLC0415

        listed = [
            v
            for r in (resources if isinstance(resources, list) else [])
            if isinstance(r, dict) and (v := int_of(r.get("vmid"))) is not None
        ]
        findings.append(not_found(vmid, listed, fix=f"check VM.Audit on /vms/{vmid} if it exists"))
        payload["blocked"] = "no such VM in the cluster"
        return Report(title, payload, findings)
    res = {**res, "vmid": vmid}
    name = str(res["node"])
    node, node_report = node_from_api(
        client, name, True, opts=opts, pve_version=None, nested_reader=None
    )
    if node is None:
        findings += node_report.findings
        payload["blocked"] = f"node {name} could not be reached"
        return Report(title, payload, findings)
    findings += [f for f in node_findings(node) if f.code != "vm.host.nested-unknown"]
    got = vm_from_api(client, res, node)
    if isinstance(got, UnreachableVm):
        findings.append(error("vm.enable.unreadable", f"VM {vmid}: could not read: {got.why}"))
        payload["blocked"] = "the VM's config could not be read"
        return Report(title, payload, findings)
    base = f"/nodes/{name}/qemu/{vmid}"
    # The digest of the config in force: the update is refused if it changes before we apply.
    current = client.get(f"{base}/config", current=1)
    digest = str(current.get("digest", "")) if isinstance(current, dict) else ""
    ctx = context_for(node, opts, named=True)
    safety = _plan_safety(client, name, eopts, current, payload) if eopts.snapshot else None

    def pvesh(plan: Plan, restart: bool) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        if plan.options:
            args = [a for opt, val in plan.options for a in (opt, val)]
            out.append(("pvesh", "set", f"{base}/config", *args, "--digest", digest))
        if restart:
            out.append(("pvesh", "create", f"{base}/status/reboot"))
        return out

    planned = plan_vm(
        got.config, got.run, ctx, eopts, payload=payload, findings=findings, render=pvesh
    )
    if not planned.done and "args" in api_params(planned.plan) and not client.is_root_ticket:
        why = (
            "args can be set only by root@pam logged in with a password (a ticket); "
            f"Proxmox refuses it for {client.userid}"
        )
        payload["blocked"] = why
        findings.append(
            error(
                "vm.enable.args-needs-root",
                f"VM {vmid}: not changed: {why}.",
                "run again with --user root@pam (password prompted or --password-file)",
            )
        )
        return Report(title, payload, findings, planned.sections)
    if safety is not None and planned.plan.options:
        planned.sections[0] = _with_snapshot_row(planned.sections[0], base, safety.name)
    if planned.done:
        return Report(title, payload, planned.findings, planned.sections)
    if safety is not None:
        said, after = _take_safety(
            client,
            name,
            vmid,
            profile=eopts.profile,
            safety=safety,
            before=current,
            payload=payload,
        )
        findings += said
        if after is None:
            return Report(title, payload, findings, planned.sections)
        digest = after
    findings += _apply(client, base, planned.plan, digest, payload)
    if payload["applied"] and eopts.restart and planned.needs_restart:
        findings += _restart(client, base, ctx, payload, poll)
    return Report(title, payload, findings, planned.sections)


def _plan_safety(
    client: ApiClient, node: str, eopts: EnableOptions, current: Any, payload: dict[str, Any]
) -> SafetySnapshot:
    from nestctl.vm.safety import plan_api  # noqa: PLC0415

    config = current if isinstance(current, dict) else {}
    safety = plan_api(client, node, eopts.vmid, eopts.profile, config=config, now=time.time())
    payload["snapshot"] = safety.to_json()
    return safety


def _with_snapshot_row(section: Section, base: str, name: str) -> Section:
    argv = ("pvesh", "create", f"{base}/snapshot", "--snapname", name)
    return Section(section.title, (("snapshot first", shlex.join(argv)), *section.rows))


def _take_safety(
    client: ApiClient,
    node: str,
    vmid: int,
    *,
    profile: str,
    safety: SafetySnapshot,
    before: Any,
    payload: dict[str, Any],
) -> tuple[list[Finding], str | None]:
    """Take the safety snapshot: (findings, the digest to change the config with), the digest
    None when the change must not go on (then nothing was changed)."""
    refused = _safety_refusal(client, node, vmid, profile, safety, before, payload)
    if refused is not None:
        return [refused], None
    said = info(
        "vm.enable.snapshot",
        f"VM {vmid}: snapshot {safety.name} taken first.",
        rollback_hint(vmid, safety.name),
    )
    return [said], payload.pop("_digest")


def _safety_refusal(  # noqa: PLR0917 - one caller, all needed
    client: ApiClient,
    node: str,
    vmid: int,
    profile: str,
    safety: SafetySnapshot,
    before: Any,
    payload: dict[str, Any],
) -> Finding | None:
    from nestctl.vm.safety import digest_after_snapshot, take_api  # noqa: PLC0415

    backup = f"nestctl backup now {vmid} --storage STORAGE"
    if safety.supported is False:
        payload["blocked"] = f"no snapshot possible: {safety.why}"
        return error(
            "vm.enable.no-snapshot",
            f"VM {vmid}: not changed: no snapshot possible: {safety.why}",
            f"back it up first ({backup}), then run again without --snapshot",
        )
    take_api(client, node, vmid, safety, profile)
    payload["snapshot"] = safety.to_json()
    if not safety.taken:
        payload["blocked"] = f"the snapshot {safety.name} could not be taken"
        return error(
            "vm.enable.snapshot-failed",
            f"VM {vmid}: not changed: the snapshot {safety.name} could not be taken: "
            f"{safety.error}",
            f"fix the cause, or back it up first ({backup}) and run again without --snapshot",
        )
    after = digest_after_snapshot(client, node, vmid, before if isinstance(before, dict) else {})
    if after is None:
        payload["blocked"] = "the config changed since nestctl checked it"
        return error(
            "vm.enable.conflict",
            f"VM {vmid}: not changed: the config changed since nestctl checked it (another "
            f"admin or task); the snapshot {safety.name} was taken.",
            "run nestctl vm enable again to plan on the new config",
        )
    payload["_digest"] = after
    return None


def _apply(
    client: ApiClient, base: str, plan: Plan, digest: str, payload: dict[str, Any]
) -> list[Finding]:
    vmid = plan.vmid
    argv = payload["commands"][0] if plan.options else None
    if argv is None:
        payload["applied"] = True
        return []
    try:
        client.put(f"{base}/config", **api_params(plan), digest=digest)
    except ApiError as exc:
        payload["results"] = [{"argv": argv, "status": "failed", "rc": None}]
        if _CONFLICT in exc.message or "digest" in exc.errors:
            return [
                error(
                    "vm.enable.conflict",
                    f"VM {vmid}: not changed: the config changed since nestctl checked it "
                    f"(another admin or task): {exc.message}",
                    "run nestctl vm enable again to plan on the new config",
                )
            ]
        fix = None
        if isinstance(exc, ApiPermissionError):
            fix = f"grant {exc.privilege or 'VM.Config.CPU'} on /vms/{vmid}"
        return [error("vm.enable.failed", f"VM {vmid}: {exc}", fix)]
    payload["results"] = [{"argv": argv, "status": "ok", "rc": 0}]
    payload["applied"] = True
    return []


def _restart(
    client: ApiClient, base: str, ctx: Any, payload: dict[str, Any], poll: float
) -> list[Finding]:
    vmid = int(base.rsplit("/", 1)[1])
    argv = ["pvesh", "create", f"{base}/status/reboot"]
    try:
        upid = client.post(f"{base}/status/reboot")
        task = client.wait_task(str(upid), timeout=REBOOT_TIMEOUT_S, interval=poll)
    except ApiError as exc:
        payload["results"].append({"argv": argv, "status": "failed", "rc": None})
        return [error("vm.enable.failed", f"VM {vmid}: reboot: {exc}", f"qm reboot {vmid}")]
    ok = task.ok
    payload["results"].append({"argv": argv, "status": "ok" if ok else "failed", "rc": None})
    if not ok:
        return [
            error(
                "vm.enable.failed",
                f"VM {vmid}: the reboot task ended with: {task.exitstatus or task.status}",
                f"qm reboot {vmid}",
            )
        ]
    # After a cold restart nothing that needs one may wait in [PENDING] any more.
    node_name = base.split("/")[2]
    cfg = config_from_pending(vmid, node_name, client.get(f"{base}/pending"))
    want = effective_cpu(ctx.predict(cfg.with_pending(), ctx.env))
    have = effective_cpu(ctx.predict(cfg.current(), ctx.env))
    left = pending_restart_keys(cfg)
    matches = not left and want == have
    payload["restart"] = {"running_cpu_arg": have, "expected_cpu_arg": want, "matches": matches}
    if matches:
        return [info("vm.enable.verified", f"VM {vmid}: restarted; -cpu {have} is in force.")]
    return [
        error(
            "vm.enable.mismatch",
            f"VM {vmid}: after the reboot task {', '.join(left) or 'the cpu'} still waits in "
            f"[PENDING].",
            f"qm stop {vmid} && qm start {vmid}",
        )
    ]
