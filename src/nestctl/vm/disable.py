"""`nestctl vm disable VMID`: the VM is no longer meant to nest (undo `vm enable`).

One change, guarded by the config's digest like `vm enable`'s: the intent tag goes, and so do
the config's explicit asks for nesting (`+nested-virt`, raw `+vmx`/`+svm` in the cpu flags).
What cannot be undone safely is said, not guessed: `cpu: host` stays (it is widely used for
speed, and is no intent by itself), a custom model carrying vmx/svm or an `args:` -cpu needs the
admin's choice. Locally through `qm set`, remotely through the API (`PUT .../config`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, Report, Section, error, info, warning
from nestctl.vm.intent import config_asks, vm_tags
from nestctl.vm.lint import parse_cpu_prop, print_cpu_prop
from nestctl.vm.profiles import Plan, locked

if TYPE_CHECKING:
    from nestctl.api.client import ApiClient
    from nestctl.machine import Host

#: Flags that ask for nesting; a `-` flag (switching it off) stays.
_NESTING_FLAGS = frozenset({"+vmx", "+svm", "+nested-virt"})


def plan_disable(
    vmid: int,
    conf: Mapping[str, str],
    tag: str,
    *,
    running: bool | None,
    custom_models: Mapping[str, Mapping[str, str]] | None = None,
) -> Plan:
    """The smallest change after which nothing in the config asks for nesting."""
    plan = Plan(vmid, "disable")
    if locked(plan, conf):
        return plan
    tags = vm_tags(conf)
    if tag in tags:
        rest = [t for t in tags if t != tag]
        plan.options.append(("--tags", ";".join(rest)) if rest else ("--delete", "tags"))
    prop = parse_cpu_prop(conf.get("cpu"))
    flags = [f for f in prop.flags if f.lower() not in _NESTING_FLAGS]
    cpu_changed = len(flags) != len(prop.flags)
    after = dict(conf)
    if cpu_changed:
        after["cpu"] = print_cpu_prop(prop, cputype=prop.cputype, flags=flags)
        plan.options.insert(0, ("--cpu", after["cpu"]))
    left = config_asks(after, custom_models)
    if left is not None:
        plan.manual.append(
            f"{left}: nestctl does not choose a replacement; change it with "
            f"qm set {vmid} --cpu <model> (or remove the -cpu from args as root)"
        )
        plan.findings.append(
            warning(
                "vm.disable.manual",
                f"VM {vmid}: still asks for nesting after this change: {left}.",
                f"qm set {vmid} --cpu x86-64-v2-AES",
            )
        )
    if prop.cputype == "host":
        plan.findings.append(
            info(
                "vm.disable.cpu-host",
                f"VM {vmid}: cpu: host stays (it is chosen for speed and is no intent by itself); "
                f"its guest still sees vmx/svm while the node's nested is on.",
                f"qm set {vmid} --cpu x86-64-v2-AES  (only to hide vmx/svm from the guest)",
            )
        )
    if running is not False and cpu_changed:
        plan.findings.append(
            info(
                "vm.disable.restart",
                f"VM {vmid}: the cpu change waits in [PENDING] until Proxmox stops and starts "
                f"it (qm reboot); the tag changes at once.",
                f"qm reboot {vmid}",
            )
        )
    return plan


def _payload(vmid: int, dry_run: bool) -> dict[str, Any]:
    return {
        "vmid": vmid,
        "dry_run": dry_run,
        "commands": [],
        "applied": False,
        "blocked": None,
        "manual": [],
        "results": [],
    }


def _finish(
    title: str,
    plan: Plan,
    payload: dict[str, Any],
    findings: list[Finding],
    commands: list[tuple[str, ...]],
) -> tuple[Report | None, list[Section]]:
    payload.update(commands=[list(c) for c in commands], blocked=plan.blocked, manual=plan.manual)
    rows = [("command", shlex.join(c)) for c in commands] + [
        ("manual step", m) for m in plan.manual
    ]
    sections = [Section("Plan", tuple(rows) or (("command", "nothing to change"),))]
    findings += plan.findings
    if plan.blocked is not None:
        if not any(f.code == "vm.enable.locked" for f in findings):
            findings.append(
                error("vm.disable.blocked", f"VM {plan.vmid}: not changed: {plan.blocked}.")
            )
        return Report(title, payload, findings, sections), sections
    if not plan.options:
        findings.append(
            info("vm.disable.nothing", f"VM {plan.vmid}: nothing in its config asks for nesting.")
        )
    if payload["dry_run"] or not commands:
        return Report(title, payload, findings, sections), sections
    return None, sections


def disable_report(host: Host, vmid: int, *, tag: str, dry_run: bool) -> Report:
    """`vm disable` on this node, through `qm set --digest`."""
    from nestctl.vm.config import QEMU_SERVER_DIR, _dir_vmids, load_vm_configs  # noqa: PLC0415
    from nestctl.vm.cpumodels import load_custom_models  # noqa: PLC0415
    from nestctl.vm.enable import _apply  # noqa: PLC0415
    from nestctl.vm.notfound import not_found  # noqa: PLC0415
    from nestctl.vm.running import check_running  # noqa: PLC0415

    title = f"VM {vmid}: disable nesting"
    payload = _payload(vmid, dry_run)
    configs = [c for c in load_vm_configs(host, vmids=[vmid]) if c.readable]
    if not configs:
        payload["blocked"] = "no such VM on this node"
        found = not_found(vmid, _dir_vmids(host, QEMU_SERVER_DIR), where="on this node")
        return Report(title, payload, [found])
    cfg = configs[0]
    models, _problems = load_custom_models(host)
    plan = plan_disable(
        vmid,
        cfg.with_pending(),
        tag,
        running=check_running(host, vmid).running,
        custom_models=models,
    )
    commands = [(*plan.argv, "--digest", cfg.digest)] if plan.argv else []
    findings: list[Finding] = []
    done, sections = _finish(title, plan, payload, findings, commands)
    if done is not None:
        return done
    findings += _apply(host, commands, payload)
    return Report(title, payload, findings, sections)


def disable_report_api(client: ApiClient, vmid: int, *, tag: str, dry_run: bool) -> Report:
    """`vm disable --api`: one `PUT .../config` carrying the digest of the config checked."""
    from nestctl.vm.collect.api import int_of  # noqa: PLC0415
    from nestctl.vm.notfound import not_found  # noqa: PLC0415
    from nestctl.vm.remote_enable import _apply  # noqa: PLC0415

    title = f"VM {vmid}: disable nesting"
    payload = _payload(vmid, dry_run)
    resources = client.get("/cluster/resources", type="vm")
    listed = [r for r in (resources if isinstance(resources, list) else []) if isinstance(r, dict)]
    res = next(
        (r for r in listed if r.get("type") == "qemu" and int_of(r.get("vmid")) == vmid), None
    )
    if res is None:
        payload["blocked"] = "no such VM in the cluster"
        known = [v for r in listed if (v := int_of(r.get("vmid"))) is not None]
        fix = f"check VM.Audit on /vms/{vmid} if it exists"
        return Report(title, payload, [not_found(vmid, known, fix=fix)])
    base = f"/nodes/{res['node']}/qemu/{vmid}"
    conf = client.get(f"{base}/config")
    if not isinstance(conf, dict):
        payload["blocked"] = "the VM's config could not be read"
        return Report(
            title,
            payload,
            [error("vm.disable.unreadable", f"VM {vmid}: could not read its config")],
        )
    digest = str(conf.pop("digest", ""))
    text = {str(k): "" if v is None else str(v) for k, v in conf.items()}
    plan = plan_disable(vmid, text, tag, running=res.get("status") == "running", custom_models=None)
    args = [a for opt, val in plan.options for a in (opt, val)]
    commands = [("pvesh", "set", f"{base}/config", *args, "--digest", digest)] if args else []
    findings: list[Finding] = []
    done, sections = _finish(title, plan, payload, findings, commands)
    if done is not None:
        return done
    findings += _apply(client, base, plan, digest, payload)
    return Report(title, payload, findings, sections)
