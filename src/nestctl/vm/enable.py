"""`nestctl vm enable` on this node: plan, apply through `qm`, optionally restart and verify.

`qm set` carries `--digest` of the config that was checked, so Proxmox refuses the change when
the config changed in between (another admin, a migration): no change is made on stale facts.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, Report, Section, error, info, unknown, warning
from nestctl.machine import Host
from nestctl.vm.analyse import (
    VmContext,
    context_for,
    effective_cpu,
    node_findings,
    pending_restart_keys,
)
from nestctl.vm.facts import VmOptions
from nestctl.vm.model import VmConfig
from nestctl.vm.running import RunningCheck, check_running

if TYPE_CHECKING:
    from nestctl.vm.profiles import Plan
    from nestctl.vm.safety import SafetySnapshot

#: How long to wait for the VM's new QEMU after `qm reboot` returns (seconds).
RESTART_WAIT_S = 60.0


def build_context(host: Host, opts: VmOptions, findings: list[Finding]) -> VmContext:
    """The local node's context for one named VM (its findings go to `findings`)."""
    from nestctl.vm.collect.local import node_facts  # noqa: PLC0415
    from nestctl.vm.oracle import oracle_for  # noqa: PLC0415

    node = node_facts(host, opts)
    findings += node_findings(node)
    vendor = node.vendor if node.cpuinfo_known else None
    return context_for(node, opts, named=True, oracle=oracle_for(host, opts.use_qemu, vendor))


def add_intent_tag(plan: Plan, conf: Mapping[str, str], tag: str) -> None:
    """`vm enable` marks the VM as meant to nest: the intent tag joins its tags (one `--tags`
    in the same change, so the same digest covers it)."""
    from nestctl.vm.intent import vm_tags  # noqa: PLC0415

    tags = vm_tags(conf)
    if tag not in tags:
        plan.options.append(("--tags", ";".join([*tags, tag])))


@dataclass
class EnableOptions:
    vmid: int
    profile: str
    migratable: bool = False
    dry_run: bool = False
    restart: bool = False
    snapshot: bool = False  # take `nestctl-before-<profile>-<date>` first (nestctl.vm.safety)


def new_payload(eopts: EnableOptions) -> dict[str, Any]:
    return {
        "vmid": eopts.vmid,
        "profile": eopts.profile,
        "dry_run": eopts.dry_run,
        "commands": [],
        "applied": False,
        "blocked": None,
        "manual": [],
        "restart": None,
        "results": [],
    }


@dataclass
class Planned:
    """`vm enable`'s plan for one VM, wherever it is applied (qm here, the API remotely)."""

    plan: Plan
    needs_restart: bool
    findings: list[Finding]
    sections: list[Section]
    done: bool  # nothing more to do: blocked, dry run or nothing to run


def plan_vm(
    cfg: VmConfig,
    run: RunningCheck,
    ctx: VmContext,
    eopts: EnableOptions,
    *,
    payload: dict[str, Any],
    findings: list[Finding],
    render: Callable[[Plan, bool], list[tuple[str, ...]]],
) -> Planned:
    """Plan `vm enable` for one VM; `render(plan, restart)` gives the commands to show/run."""
    from nestctl.vm.profiles import HostCpu, plan_enable  # noqa: PLC0415

    vmid = eopts.vmid
    flags = ctx.env.host_flags or frozenset()
    plan = plan_enable(
        vmid,
        cfg.with_pending(),
        eopts.profile,
        HostCpu(ctx.host_vendor, flags),
        migratable=eopts.migratable,
        nested_virt=ctx.nested_virt_supported,
        running=run.running is not False,  # unknown: plan as if it ran (changes wait)
        custom_models=ctx.env.custom_models,
    )
    if plan.blocked is None:
        add_intent_tag(plan, cfg.with_pending(), ctx.intent_tag)
    if run.running is None:
        findings.append(
            unknown(
                "vm.running.unknown",
                f"VM {vmid}: could not tell whether it runs ({run.reason}): a change may wait "
                f"in [PENDING] until Proxmox restarts it",
            )
        )
    # A running VM needs Proxmox to stop and start it when this plan changes something, or when
    # an earlier change still waits in [PENDING] (or the process runs an older -cpu).
    running = run.running is True
    stale = running and (bool(pending_restart_keys(cfg)) or _running_differs(cfg, run, ctx))
    # Tags apply at once (Proxmox's fast-plug options); only the rest waits for a restart.
    changes = any(opt != "--tags" for opt, _value in plan.options)
    needs_restart = running and (changes or stale)
    findings += [f for f in plan.findings if f.code != "vm.enable.restart" or not eopts.restart]
    commands = render(plan, needs_restart and eopts.restart)
    payload.update(commands=[list(c) for c in commands], blocked=plan.blocked, manual=plan.manual)
    rows: list[tuple[str, str]] = [("command", shlex.join(c)) for c in commands]
    rows += [("manual step", m) for m in plan.manual]
    sections_ = [Section("Plan", tuple(rows) or (("command", "nothing to change"),))]
    if plan.blocked is not None:
        findings[:] = [f for f in findings if f.code != "vm.enable.restart"]
        if not any(f.code == "vm.enable.locked" for f in findings):
            findings.append(
                error(
                    "vm.enable.blocked",
                    f"VM {vmid}: not changed: {plan.blocked}.",
                    "\n".join(plan.manual) or None,
                )
            )
        return Planned(plan, needs_restart, findings, sections_, done=True)
    if plan.argv is None:
        findings.append(info("vm.enable.nothing", f"VM {vmid}: already set for {eopts.profile}."))
    if needs_restart and not eopts.restart:
        findings[:] = [f for f in findings if f.code != "vm.enable.restart"]
        findings.append(
            warning(
                "vm.restart-required",
                f"VM {vmid}: restart required: "
                + ("the change waits" if plan.argv else "an earlier change waits")
                + " in [PENDING]. A reboot inside the guest does not apply it; qm reboot "
                "(or stop + start) does (or run this again with --restart).",
                f"qm reboot {vmid}",
            )
        )
    done = eopts.dry_run or not commands
    return Planned(plan, needs_restart, findings, sections_, done=done)


def enable_report(host: Host, opts: VmOptions, eopts: EnableOptions) -> Report:
    """Plan (and unless --dry-run apply) `vm enable` for one VM on this node."""
    from nestctl.vm.config import load_vm_configs  # noqa: PLC0415

    findings: list[Finding] = []
    ctx = build_context(host, opts, findings)
    vmid = eopts.vmid
    configs = [c for c in load_vm_configs(host, vmids=[vmid]) if c.readable]
    payload = new_payload(eopts)
    title = f"VM {vmid}: enable {eopts.profile}"
    if not configs:
        from nestctl.vm.config import QEMU_SERVER_DIR, _dir_vmids  # noqa: PLC0415
        from nestctl.vm.notfound import not_found  # noqa: PLC0415

        findings.append(not_found(vmid, _dir_vmids(host, QEMU_SERVER_DIR), where="on this node"))
        payload["blocked"] = "no such VM on this node"
        return Report(title, payload, findings)
    cfg = configs[0]
    run = check_running(host, vmid)

    def qm(plan: Plan, restart: bool) -> list[tuple[str, ...]]:
        # --digest: Proxmox refuses the change if the config changed since it was checked.
        out = [(*plan.argv, "--digest", cfg.digest)] if plan.argv else []
        return [*out, ("qm", "reboot", str(vmid))] if restart else out

    planned = plan_vm(cfg, run, ctx, eopts, payload=payload, findings=findings, render=qm)
    safety = _plan_safety_local(host, cfg, eopts, planned, payload) if eopts.snapshot else None
    if planned.done:
        return Report(title, payload, planned.findings, planned.sections)
    commands = [tuple(c) for c in payload["commands"]]
    if safety is not None:
        from nestctl.vm.safety_local import take_local  # noqa: PLC0415

        said, commands = take_local(
            host,
            cfg,
            safety,
            vmid=eopts.vmid,
            profile=eopts.profile,
            commands=commands,
            payload=payload,
        )
        findings += said
        if not commands:
            return Report(title, payload, findings, planned.sections)
    findings += _apply(host, commands, payload)
    if payload["applied"] and eopts.restart and planned.needs_restart:
        old_pid = run.vm.pid if run.vm else None
        findings += _verify_restart(host, ctx, vmid, payload, old_pid)
    return Report(title, payload, findings, planned.sections)


def _plan_safety_local(
    host: Host, cfg: VmConfig, eopts: EnableOptions, planned: Planned, payload: dict[str, Any]
) -> SafetySnapshot | None:
    """The snapshot `--snapshot` takes first (shown in the plan, taken only on apply)."""
    from nestctl.vm.safety import plan_local, qm_argv  # noqa: PLC0415

    if planned.plan.argv is None:
        return None
    cfg_text = host.read_text("/etc/pve/storage.cfg")
    safety = plan_local(cfg.main, set(cfg.snapshots), cfg_text, eopts.profile)
    payload["snapshot"] = safety.to_json()
    row = ("snapshot first", shlex.join(qm_argv(eopts.vmid, safety, eopts.profile)))
    head = planned.sections[0]
    planned.sections[0] = Section(head.title, (row, *head.rows))
    return safety


def _running_differs(cfg: VmConfig, run: RunningCheck, ctx: VmContext) -> bool:
    want = effective_cpu(ctx.predict(cfg.current(), ctx.env))
    have = run.vm.cpu_arg if run.vm else None
    return want is not None and have is not None and want != have


def _apply(host: Host, commands: list[tuple[str, ...]], payload: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    results = []
    for argv in commands:
        res = host.run(argv, timeout=900.0 if argv[1] == "reboot" else 120.0)
        results.append({"argv": list(argv), "status": res.status.value, "rc": res.rc})
        if res.status.value == "recorded":
            out.append(info("vm.enable.recorded", f"{shlex.join(argv)}: recorded, not run"))
            continue
        if not res.ok:
            out.append(error("vm.enable.failed", res.describe()))
            break
    payload["results"] = results
    payload["applied"] = bool(results) and all(r["status"] in ("ok", "recorded") for r in results)
    return out


def _wait_restarted(host: Host, vmid: int, old_pid: int | None) -> RunningCheck:
    """`qm reboot` returns once the VM is down; qmeventd starts it again: wait for a new QEMU."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        run = check_running(host, vmid)
        fresh = run.running and run.vm is not None and run.vm.pid != old_pid
        if fresh or not host.live or time.monotonic() > deadline:
            return run
        time.sleep(1.0)


def _verify_restart(
    host: Host, ctx: VmContext, vmid: int, payload: dict[str, Any], old_pid: int | None
) -> list[Finding]:
    """After `qm reboot`: does the running -cpu now match the config's predicted -cpu?"""
    from nestctl.vm.config import load_vm_configs  # noqa: PLC0415

    configs = [c for c in load_vm_configs(host, vmids=[vmid]) if c.readable]
    run = _wait_restarted(host, vmid, old_pid)
    want = None
    if configs:
        pred = ctx.predict(configs[0].with_pending(), ctx.env)
        want = effective_cpu(pred)
    have = run.vm.cpu_arg if run.running and run.vm else None
    matches = want is not None and have == want
    payload["restart"] = {"running_cpu_arg": have, "expected_cpu_arg": want, "matches": matches}
    if matches:
        return [info("vm.enable.verified", f"VM {vmid}: now running with -cpu {have}.")]
    if not host.live:
        return [
            unknown(
                "vm.enable.unverified",
                f"VM {vmid}: commands were recorded, not run: the running -cpu ({have}) "
                f"cannot show the change.",
            )
        ]
    return [
        error(
            "vm.enable.mismatch",
            f"VM {vmid}: after qm reboot the running -cpu is {have}, expected {want}.",
            f"qm stop {vmid} && qm start {vmid}",
        )
    ]
