"""The VM analysis: pure functions over `vm.facts`, no I/O.

Per VM the chain is host -> config -> running process -> expected guest view; the first broken link
is named (`broken_link`). The collectors in `vm/collect/` gather the facts; `vm/render.py` turns
the results into the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nestctl.findings import Finding, error, info, unknown, warning
from nestctl.parse import proxmox_bool
from nestctl.vm import exposure as exp
from nestctl.vm.facts import NodeFacts, UnreachableVm, VmOptions
from nestctl.vm.intent import DEFAULT_TAG, UNREAD, Intent, decide_intent
from nestctl.vm.lint import is_windows, lint_config
from nestctl.vm.model import CpuEnv, CpuPrediction, VmConfig
from nestctl.vm.running import RunningCheck
from nestctl.vm.verdict import VmVerdict, judge_vm, settle

RESTART_KEYS = ("cpu", "machine", "args", "kvm")

Predictor = Callable[[Mapping[str, str], CpuEnv], CpuPrediction]
Oracle = Callable[[str], "exp.OracleAnswer | None"]


@dataclass
class VmContext:
    """What every VM's analysis shares: the host, Proxmox's version and the predictor."""

    env: CpuEnv
    predict: Predictor
    host_vendor: str | None  # "intel" | "amd" | "other" | None
    nested_live: bool | None
    nested_virt_supported: bool  # qemu-server >= 9.0.27
    oracle: Oracle | None = None
    cluster_vendors: set[str] | None = None
    vendor_model: str | None = None  # a model close to the host CPU, for fixes
    named: bool = False  # the user named these VMs (severity follows intent now: finish_vm)
    custom_models_known: bool = True  # False over the API without --ssh
    answers: dict[tuple[str | None, bool], exp.Exposure] = field(default_factory=dict)
    node_level: int | None = None  # NodeFacts.level
    intent_tag: str = DEFAULT_TAG  # the Proxmox tag that marks a VM meant to nest
    all_vms: bool = False  # --all-vms: judge every VM as if it wanted nesting
    hosts_inner: frozenset[int] = frozenset()  # VMs an inner target names as its parent


@dataclass
class VmResult:
    vmid: int
    name: str | None
    node: str | None
    running: bool | None  # None: could not tell (e.g. an unreadable pid file)
    cpu_arg: str | None
    cpu_arg_pending: str | None
    running_cpu_arg: str | None
    nested: exp.Exposure
    restart_required: bool
    findings: list[Finding] = field(default_factory=list)
    lock: str | None = None
    proxmox_cpu_arg: str | None = None  # Proxmox's own -cpu when args replaces it
    chain: dict[str, str] = field(default_factory=dict)  # link -> "ok" | "broken" | "unknown"
    broken_link: str | None = None
    guest: dict[str, Any] | None = None
    intent: Intent = UNREAD
    conf: Mapping[str, str] | None = None  # the config (pending applied) intent is read from
    verdict: VmVerdict | None = None  # set by `finish_vm`

    def to_json(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "vmid": self.vmid,
            "name": self.name,
            "node": self.node,
            "running": self.running,
            "cpu_arg": self.cpu_arg,
            "cpu_arg_pending": self.cpu_arg_pending,
            "running_cpu_arg": self.running_cpu_arg,
            "nested": self.nested.to_json(),
            "restart_required": self.restart_required,
            "findings": [f.to_json() for f in self.findings],
            "lock": self.lock,
            "proxmox_cpu_arg": self.proxmox_cpu_arg,
            "chain": self.chain,
            "broken_link": self.broken_link,
            "wants_nested": self.intent.wants_nested,
            "intent": self.intent.intent,
            "verdict": verdict.verdict if verdict is not None else None,
        }


def node_of(path: str) -> str | None:
    """`/etc/pve/nodes/<node>/qemu-server/<vmid>.conf` -> node; None for the local view."""
    parts = path.strip("/").split("/")
    if len(parts) >= 5 and parts[:3] == ["etc", "pve", "nodes"]:
        return parts[3]
    return None


def effective_cpu(pred: CpuPrediction) -> str | None:
    """The -cpu QEMU uses: an `args:` -cpu wins over Proxmox's (which stays in pred.value)."""
    if pred.error is not None:
        return None
    return pred.replaced_by_args or pred.value


def kvm_on(conf: Mapping[str, str]) -> bool:
    """The VM runs under KVM (not TCG: `kvm: 0`, a template)."""
    return _kvm_on(conf)


def _kvm_on(conf: Mapping[str, str]) -> bool:
    if proxmox_bool(conf.get("template", "0")) is True:
        return False
    return proxmox_bool(conf.get("kvm", "1")) is not False


def _ask(ctx: VmContext, cpu_arg: str | None, kvm: bool) -> exp.Exposure:
    """The exposure for a -cpu value; the same value gives the same answer across VMs."""
    key = (cpu_arg, kvm)
    cached = ctx.answers.get(key)
    if cached is None:
        cached = ctx.answers[key] = _decide(ctx, cpu_arg, kvm)
    return cached


def _decide(ctx: VmContext, cpu_arg: str | None, kvm: bool) -> exp.Exposure:
    answer = None
    if ctx.oracle is not None and cpu_arg is not None:
        model = cpu_arg.split(",")[0]
        # Under TCG `host` does not exist; for a KVM guest it passes through and needs no asking.
        if not (kvm and model in exp.PASSTHROUGH_MODELS):
            answer = ctx.oracle(cpu_arg)
    return exp.decide(cpu_arg, ctx.host_vendor, ctx.nested_live, kvm=kvm, oracle=answer)


def pending_restart_keys(cfg: VmConfig) -> list[str]:
    keys = {k for k in cfg.pending if k in RESTART_KEYS}
    keys |= {k for k, _force in cfg.pending_delete if k in RESTART_KEYS}
    return sorted(keys)


def _enable_fix(vmid: int, conf: Mapping[str, str]) -> str:
    profile = "windows-hyperv" if is_windows(conf) else "linux-kvm"
    return f"nestctl vm enable {vmid} --profile {profile}"


def analyse_vm(cfg: VmConfig, run: RunningCheck, ctx: VmContext) -> VmResult:
    """One VM's chain, findings and JSON (see the module docstring)."""
    vmid = cfg.vmid
    findings: list[Finding] = [
        warning("vm.config.problem", f"VM {vmid}: {p}", None) for p in cfg.problems
    ]
    current = cfg.current()
    nextconf = cfg.with_pending()
    pred_now = ctx.predict(current, ctx.env)
    pred_next = ctx.predict(nextconf, ctx.env) if cfg.has_pending else pred_now
    cpu_now = effective_cpu(pred_now)
    cpu_next = effective_cpu(pred_next)
    lock = current.get("lock")
    if lock:
        findings.append(
            info(
                "vm.locked",
                f"VM {vmid}: VM is locked ({lock}); Proxmox refuses changes and starts until it "
                f"is unlocked, and nestctl does not touch it.",
            )
        )
    unseen_model = not ctx.custom_models_known and any(
        p.error is not None and p.error.startswith("Custom cputype") for p in (pred_now, pred_next)
    )
    for pred, which in ((pred_now, "config in force"), (pred_next, "config with pending")):
        if pred.error is not None and (which == "config in force" or pred.error != pred_now.error):
            if unseen_model and pred.error.startswith("Custom cputype"):
                # Not a refusal: the definitions live in a file the API does not serve.
                findings.append(
                    unknown(
                        "vm.cpu.custom-model-unknown",
                        f"VM {vmid} ({which}): uses a custom CPU model whose definition "
                        f"(/etc/pve/virtual-guest/cpu-models.conf) the API does not show",
                        "add --ssh (reads it from the cluster file system)",
                    )
                )
                continue
            findings.append(
                error(
                    "vm.cpu.refused",
                    f"VM {vmid} ({which}): Proxmox refuses this config: {pred.error}",
                )
            )
    findings += lint_config(
        vmid,
        nextconf,
        pve_cpu=pred_next.value,
        has_nested_virt=ctx.nested_virt_supported,
        vendor_model=ctx.vendor_model,
        cluster_vendors=ctx.cluster_vendors,
        host_vendor=ctx.host_vendor,
    )
    if run.running is None:
        from nestctl.host.pidfiles import PIDFILE_FIX  # noqa: PLC0415

        findings.append(
            unknown(
                "vm.running.unknown",
                f"VM {vmid}: could not tell whether it runs ({run.reason}): the guest's view is "
                f"taken from the config",
                PIDFILE_FIX,
            )
        )
    running_cpu = run.vm.cpu_arg if run.running and run.vm else None
    restart_keys = pending_restart_keys(cfg)
    kvm = _kvm_on(nextconf)
    config_view = _ask(ctx, cpu_next, kvm) if cpu_next is not None else None
    if run.running:
        # The guest sees what the running process was started with.
        nested = _ask(ctx, running_cpu, _kvm_on(current) and not (run.vm and run.vm.accel_tcg))
    elif config_view is not None:
        nested = config_view
    elif unseen_model:
        nested = exp.Exposure(None, None, "none", "its custom CPU model's definition is unknown")
    else:
        nested = exp.Exposure(False, None, "table", "Proxmox refuses the config: it cannot start")
    restart = False
    if run.running:
        differs = cpu_now is not None and running_cpu is not None and running_cpu != cpu_now
        restart = differs or bool(restart_keys)
        if restart:
            findings.append(
                _restart_finding(
                    vmid,
                    running_cpu,
                    cpu_now if differs else None,
                    restart_keys,
                    changes_nesting=config_view is not None
                    and config_view.exposed != nested.exposed,
                )
            )
    chain, broken = _chain(
        ctx,
        cpu_next=cpu_next,
        config_view=config_view,
        run=run,
        nested=nested,
        restart=restart,
        cannot_start=any(f.code in CANNOT_START for f in findings),
        config_unknown=unseen_model,
    )
    _exposure_findings(
        findings, vmid=vmid, conf=nextconf, nested=nested, config_view=config_view, ctx=ctx
    )
    return VmResult(
        vmid=vmid,
        name=nextconf.get("name"),
        node=cfg.node or node_of(cfg.path),
        running=run.running,
        cpu_arg=cpu_now,
        cpu_arg_pending=cpu_next if cfg.has_pending else None,
        running_cpu_arg=running_cpu,
        nested=nested,
        restart_required=restart,
        findings=findings,
        lock=lock,
        proxmox_cpu_arg=pred_now.value,
        chain=chain,
        broken_link=broken,
        conf=nextconf,
    )


def finish_vm(
    r: VmResult, ctx: VmContext | None = None, *, hosts_inner: bool = False, all_vms: bool = False
) -> VmResult:
    """Decide the VM's intent (config, tag, guest role, inner layer), grade its findings by it
    and compute its verdict with the one judge (`nestctl.vm.verdict.judge_vm`)."""
    tag = ctx.intent_tag if ctx is not None else DEFAULT_TAG
    hosts_inner = hosts_inner or (ctx is not None and r.vmid in ctx.hosts_inner)
    all_vms = all_vms or (ctx is not None and ctx.all_vms)
    custom = ctx.env.custom_models if ctx is not None else None
    if r.conf is not None or hosts_inner:
        r.intent = decide_intent(
            r.conf, tag=tag, hosts_inner=hosts_inner, guest=r.guest, custom_models=custom
        )
    r.findings = settle(r.findings, strict=r.intent.wants_nested is True or all_vms)
    r.verdict = judge_vm(
        {
            "chain": r.chain,
            "findings": [f.to_json() for f in r.findings],
            "wants_nested": r.intent.wants_nested,
            "intent": r.intent.intent,
            "guest": r.guest,
        },
        all_vms=all_vms,
    )
    r.broken_link = r.verdict.broken_link
    return r


#: Lint findings that mean QEMU refuses to start the VM at all.
CANNOT_START = frozenset({"vm.args.bare-hypervisor", "vm.args.unparsable"})


def _restart_finding(
    vmid: int,
    running_cpu: str | None,
    config_cpu: str | None,
    pending_keys: list[str],
    *,
    changes_nesting: bool,
) -> Finding:
    """Restart required: an error when the restart changes what the guest sees, else a warning."""
    why = []
    if config_cpu is not None:
        why.append(f"the running -cpu {running_cpu} differs from the config's {config_cpu}")
    if pending_keys:
        verb = "waits" if len(pending_keys) == 1 else "wait"
        why.append(f"{', '.join(pending_keys)} {verb} in [PENDING]")
    if changes_nesting:
        why.append("until then the guest's vmx/svm is not what the config says")
    make = error if changes_nesting else warning
    return make(
        "vm.restart-required",
        f"VM {vmid}: restart required: {'; '.join(why)}. A reboot inside the guest does not "
        f"apply it (the same QEMU process keeps running); qm reboot (or stop + start) does.",
        f"qm reboot {vmid}",
    )


def _chain(
    ctx: VmContext,
    *,
    cpu_next: str | None,
    config_view: exp.Exposure | None,
    run: RunningCheck,
    nested: exp.Exposure,
    restart: bool,
    cannot_start: bool = False,
    config_unknown: bool = False,
) -> tuple[dict[str, str], str | None]:
    host_flag = exp.vendor_flag(ctx.host_vendor)
    if ctx.host_vendor is not None and (host_flag is None or ctx.nested_live is False):
        host = "broken"
    elif ctx.host_vendor is None or ctx.nested_live is None:  # an unread CPU is not a "no"
        host = "unknown"
    else:
        host = "ok"
    if config_unknown and not cannot_start:
        config = "unknown"
    elif (
        cpu_next is None
        or cannot_start
        or config_view is None
        or (config_view.exposed is False and host != "broken")
    ):
        config = "broken"
    else:
        config = {True: "ok", False: "ok", None: "unknown"}[config_view.exposed]
    if run.running is None:
        process = "unknown"
    elif not run.running:
        process = "not-running"
    elif restart:
        process = "broken" if nested.exposed is False else "stale"
    else:
        process = "ok"
    guest = {True: "ok", False: "broken", None: "unknown"}[nested.exposed]
    chain = {"host": host, "config": config, "process": process, "guest": guest}
    broken = next((k for k, v in chain.items() if v == "broken"), None)
    return chain, broken


def _exposure_findings(
    findings: list[Finding],
    *,
    vmid: int,
    conf: Mapping[str, str],
    nested: exp.Exposure,
    config_view: exp.Exposure | None,
    ctx: VmContext,
) -> None:
    if nested.qemu_error:
        findings.append(
            error(
                "vm.cpu.qemu-refuses",
                f"VM {vmid}: QEMU refuses this -cpu value ({nested.source} said so; the VM "
                f"would not start with it): {nested.qemu_error}",
            )
        )
        return
    if nested.refuses_start or (config_view is not None and config_view.refuses_start):
        findings.append(
            error(
                "vm.cpu.start-fails",
                f"VM {vmid}: QEMU will refuse to start: the -cpu asks for a flag this host's "
                f"KVM cannot give, with enforce ({nested.reason}).",
                "nestctl host enable" if ctx.nested_live is False else _enable_fix(vmid, conf),
            )
        )
        return
    if nested.exposed is True:
        findings.append(
            info("vm.nested.exposed", f"VM {vmid}: the guest sees {nested.flag} ({nested.reason}).")
        )
    elif nested.exposed is None:
        # Strict here; `finish_vm` makes it a note for a VM that does not want nesting.
        findings.append(
            unknown(
                "vm.nested.unknown",
                f"VM {vmid}: cannot tell whether the guest sees vmx/svm: {nested.reason}.",
            )
        )
    else:
        message = f"VM {vmid}: the guest does not see vmx/svm: {nested.reason}."
        if ctx.nested_live is False:
            fix = "nestctl host enable"
        elif config_view is not None and config_view.exposed and not nested.exposed:
            fix = f"qm reboot {vmid}"
        else:
            fix = _enable_fix(vmid, conf)
        findings.append(error("vm.nested.not-exposed", message, fix))


# -- the node a VM runs on: its findings and the shared context --------------------------------


def node_findings(node: NodeFacts) -> list[Finding]:
    """What the node's facts mean for every VM on it (CPU, nested, versions)."""
    findings: list[Finding] = []
    if not node.cpuinfo_known:
        findings.append(
            unknown("vm.host.cpuinfo", "cannot read the host's /proc/cpuinfo: vendor unknown")
        )
    elif node.nested_live is None:
        findings.append(
            unknown(
                "vm.host.nested-unknown",
                f"the host's live nested value is unknown ({node.nested_unknown_why})",
                node.nested_unknown_fix,
            )
        )
    elif node.nested_live is False:
        findings.append(
            error(
                "vm.host.nested-off",
                "the host's KVM has nested=N: no VM can give its guest vmx/svm",
                "nestctl host enable",
            )
        )
    findings += [warning("vm.env.problem", p) for p in node.env_problems]
    if not node.qemu_version_known:
        findings.append(
            info(
                "vm.versions.qemu-unknown",
                "installed QEMU version unknown (no pve-qemu-kvm in the dpkg database): "
                "assuming 11.0 (--qemu-version sets it)",
            )
        )
    if not node.qemu_server_known:
        findings.append(
            info(
                "vm.versions.pve-unknown",
                "qemu-server version unknown (not in the dpkg database): assuming the newest "
                "behaviour modelled, 9.2 (--pve-version sets it)",
            )
        )
    return findings


def context_for(
    node: NodeFacts, opts: VmOptions, *, named: bool, oracle: Oracle | None = None
) -> VmContext:
    """The `VmContext` every VM on `node` shares."""
    from nestctl.vm.cpuarg import predict_cpu  # noqa: PLC0415 - keep start-up lean
    from nestctl.vm.profiles import vendor_model  # noqa: PLC0415

    qemu_server = node.env.qemu_server_version
    return VmContext(
        env=node.env,
        predict=predict_cpu,
        host_vendor=node.vendor if node.cpuinfo_known else None,
        nested_live=node.nested_live,
        nested_virt_supported=node.nested_virt_flag
        if node.nested_virt_flag is not None
        else qemu_server is None or qemu_server >= (9, 0, 27),
        oracle=oracle,
        cluster_vendors=opts.cluster_vendors,
        vendor_model=vendor_model(node.vendor, node.flags),
        named=named,
        custom_models_known=node.custom_models_known,
        node_level=node.level,
        intent_tag=opts.intent_tag,
        all_vms=opts.all_vms,
        hosts_inner=opts.hosts_inner,
    )


def unreachable_result(vm: UnreachableVm) -> VmResult:
    """A VM whose facts could not be gathered: every answer null, one finding saying why."""
    why = f"VM {vm.vmid}: could not read its config: {vm.why}"
    return VmResult(
        vmid=vm.vmid,
        name=vm.name,
        node=vm.node,
        running=False,
        cpu_arg=None,
        cpu_arg_pending=None,
        running_cpu_arg=None,
        nested=exp.Exposure(None, None, "none", why),
        restart_required=False,
        findings=[unknown("vm.unreachable", why)],
        chain={"host": "unknown", "config": "unknown", "process": "unknown", "guest": "unknown"},
        verdict=VmVerdict("unknown", None, "none", None, why, None, None),
    )
