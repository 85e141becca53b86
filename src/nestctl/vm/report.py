"""Per-VM analysis and the whole `nestctl vm` report.

Per VM the chain is host -> config -> running process -> expected guest view; the first broken link
is named (`broken_link`). `analyse_vm` is pure over gathered facts; `collect` gathers them (through
`Host` only) and builds the report.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nestctl.findings import (
    Finding,
    Report,
    Section,
    Severity,
    Verdict,
    error,
    info,
    unknown,
    warning,
)
from nestctl.machine import Host
from nestctl.vm import exposure as exp
from nestctl.vm.lint import is_windows, lint_config
from nestctl.vm.model import CpuEnv, CpuPrediction, VmConfig
from nestctl.vm.running import PID_DIRS, RunningCheck, check_running

if TYPE_CHECKING:
    from nestctl.host.probe import HostFacts

#: Options whose pending change needs Proxmox to stop and start the VM to reach QEMU.
RESTART_KEYS = ("cpu", "machine", "args", "kvm")
#: How long to wait for the VM's new QEMU after `qm reboot` returns (seconds).
RESTART_WAIT_S = 60.0

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
    named: bool = False  # the user named these VMs: "not exposed" is an error, not a note
    answers: dict[tuple[str | None, bool], exp.Exposure] = field(default_factory=dict)


@dataclass
class VmResult:
    vmid: int
    name: str | None
    node: str | None
    running: bool
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

    def to_json(self) -> dict[str, Any]:
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


def _kvm_on(conf: Mapping[str, str]) -> bool:
    if conf.get("template", "0") in ("1", "on", "yes", "true"):
        return False
    return conf.get("kvm", "1").lower() not in ("0", "off", "no", "false")


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


def _pending_restart_keys(cfg: VmConfig) -> list[str]:
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
    for pred, which in ((pred_now, "config in force"), (pred_next, "config with pending")):
        if pred.error is not None and (which == "config in force" or pred.error != pred_now.error):
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
    running_cpu = run.vm.cpu_arg if run.running and run.vm else None
    restart_keys = _pending_restart_keys(cfg)
    kvm = _kvm_on(nextconf)
    config_view = _ask(ctx, cpu_next, kvm) if cpu_next is not None else None
    if run.running:
        # The guest sees what the running process was started with.
        nested = _ask(ctx, running_cpu, _kvm_on(current) and not (run.vm and run.vm.accel_tcg))
    elif config_view is not None:
        nested = config_view
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
    )
    _exposure_findings(
        findings, vmid=vmid, conf=nextconf, nested=nested, config_view=config_view, ctx=ctx
    )
    return VmResult(
        vmid=vmid,
        name=nextconf.get("name"),
        node=cfg.node or node_of(cfg.path),
        running=run.running is True,  # i8-core: None (unknown) is i13-api's to show
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
    )


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
) -> tuple[dict[str, str], str | None]:
    host_flag = exp.vendor_flag(ctx.host_vendor)
    if host_flag is None or ctx.nested_live is False:
        host = "broken"
    elif ctx.nested_live is None:
        host = "unknown"
    else:
        host = "ok"
    if (
        cpu_next is None
        or cannot_start
        or config_view is None
        or (config_view.exposed is False and host != "broken")
    ):
        config = "broken"
    else:
        config = {True: "ok", False: "ok", None: "unknown"}[config_view.exposed]
    if not run.running:
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
        findings.append(
            unknown(
                "vm.nested.unknown",
                f"VM {vmid}: cannot tell whether the guest sees vmx/svm: {nested.reason}.",
            )
            if ctx.named
            else info("vm.nested.unknown", f"VM {vmid}: {nested.reason}.")
        )
    else:
        message = f"VM {vmid}: the guest does not see vmx/svm: {nested.reason}."
        if ctx.nested_live is False:
            fix = "nestctl host enable"
        elif config_view is not None and config_view.exposed and not nested.exposed:
            fix = f"qm reboot {vmid}"
        else:
            fix = _enable_fix(vmid, conf)
        make = error if ctx.named else info
        findings.append(make("vm.nested.not-exposed", message, fix))


def report_payload(results: list[VmResult], *, guest: bool = False) -> dict[str, Any]:
    vms = []
    for r in results:
        body = r.to_json()
        if guest:
            body["guest"] = r.guest
        vms.append(body)
    return {"vms": vms}


def summary(results: list[VmResult]) -> str:
    exposed = sum(1 for r in results if r.nested.exposed)
    restart = sum(1 for r in results if r.restart_required)
    text = f"{exposed} of {len(results)} VM(s) give the guest vmx/svm"
    if restart:
        text += f", {restart} need a restart (qm reboot)"
    return text


def sections(results: list[VmResult]) -> list[Section]:
    out = []
    for r in results:
        rows = [
            ("node", r.node or "local"),
            ("running", "yes" if r.running else "no"),
            ("-cpu (config)", r.cpu_arg or "refused by Proxmox"),
        ]
        if r.cpu_arg_pending is not None:
            rows.append(("-cpu (pending)", r.cpu_arg_pending))
        if r.running_cpu_arg is not None:
            rows.append(("-cpu (running)", r.running_cpu_arg))
        if r.lock:
            rows.append(("lock", r.lock))
        shown = {True: "yes", False: "no", None: "unknown"}[r.nested.exposed]
        flag = f"{r.nested.flag}, " if r.nested.flag else ""
        rows.append(("guest gets vmx/svm", f"{shown} ({flag}answered by {r.nested.source})"))
        rows.append(("why", r.nested.reason))
        rows.append(("chain", " -> ".join(f"{k}:{v}" for k, v in r.chain.items())))
        if r.restart_required:
            rows.append(("restart required", f"yes: qm reboot {r.vmid}"))
        if r.guest is not None:
            g = r.guest
            usable = "usable" if g.get("kvm_usable") else "not usable"
            seen = f"{g.get('virt_flag') or 'no vmx/svm'}, /dev/kvm {usable}"
            rows.append(("guest says (agent)", f"{seen}, accel {g.get('accel')}"))
        # Errors and warnings are listed under Findings; notes stay with their VM.
        rows += [("note", f.message) for f in r.findings if f.severity is Severity.INFO]
        title = f"VM {r.vmid}" + (f" ({r.name})" if r.name else "")
        out.append(Section(title, tuple(rows)))
    return out


# -- gathering: reads through `Host` only, then the pure analysis above -----------------------


@dataclass
class VmOptions:
    """What `nestctl vm` was asked (CLI flags)."""

    vmids: tuple[int, ...] = ()
    all_nodes: bool = False
    qemu_version: str | None = None
    pve_version: str | None = None
    use_qemu: bool | None = None  # None: ask QEMU only on a live host (its QEMU is the VMs')
    cluster_vendors: set[str] | None = None
    guest: bool = False
    sections: bool = True  # the human view's per-VM tables (not needed for --json)


def _parse_version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


class QemuAnswers:
    """The installed QEMU's answers, asked once per distinct value (in parallel via `prefetch`)."""

    def __init__(self, oracle: Any, vendor: str | None) -> None:
        self.oracle = oracle  # nestctl.qemu.cpuprobe.QemuCpuOracle
        self.vendor = vendor
        self.memo: dict[str, exp.OracleAnswer] = {}

    def __call__(self, cpu_arg: str) -> exp.OracleAnswer | None:
        if cpu_arg not in self.memo:
            self.memo[cpu_arg] = self.oracle.ask(cpu_arg, self.vendor)
        return self.memo[cpu_arg]

    def prefetch(self, values: set[str]) -> None:
        wanted = sorted(v for v in values if v not in self.memo)
        if wanted:
            self.memo.update(self.oracle.ask_many(wanted, self.vendor))


def _oracle_for(host: Host, use_qemu: bool | None, vendor: str | None) -> QemuAnswers | None:
    if use_qemu is False or (use_qemu is None and not host.live):
        return None
    from nestctl.qemu.cache import CpuAnswerCache  # noqa: PLC0415 - only when QEMU is asked
    from nestctl.qemu.cpuprobe import QemuCpuOracle  # noqa: PLC0415

    oracle = QemuCpuOracle(cache=CpuAnswerCache())
    return QemuAnswers(oracle, vendor) if oracle.available else None


def _prefetch(ctx: VmContext, pairs: list[tuple[VmConfig, RunningCheck]]) -> None:
    """Collect every distinct -cpu value first, so QEMU is asked for them in one parallel batch."""
    if not isinstance(ctx.oracle, QemuAnswers):
        return
    values: set[str] = set()
    for cfg, run in pairs:
        confs = (cfg.current(), cfg.with_pending()) if cfg.has_pending else (cfg.current(),)
        for conf in confs:
            value = effective_cpu(ctx.predict(conf, ctx.env))
            if value is not None:
                values.add(value)
        if run.vm is not None and run.vm.cpu_arg is not None:
            values.add(run.vm.cpu_arg)
    ctx.oracle.prefetch({v for v in values if v.split(",")[0] not in exp.PASSTHROUGH_MODELS})


def build_context(
    host: Host,
    opts: VmOptions,
    findings: list[Finding],
    named: bool,
    facts: HostFacts | None = None,
) -> VmContext:
    """Host facts (probed here unless given), Proxmox versions and custom models -> the shared
    `VmContext`."""
    from nestctl.host.probe import probe_host  # noqa: PLC0415
    from nestctl.vm.cpuarg import predict_cpu  # noqa: PLC0415
    from nestctl.vm.profiles import vendor_model  # noqa: PLC0415

    if facts is None:
        facts = probe_host(host)
    cpuinfo = facts.cpuinfo
    if cpuinfo is None:
        findings.append(
            unknown("vm.host.cpuinfo", "cannot read the host's /proc/cpuinfo: vendor unknown")
        )
    elif facts.nested_live is None:
        findings.append(
            unknown(
                "vm.host.nested-unknown",
                "the host's live nested value is unknown (KVM module not loaded?)",
                "nestctl host",
            )
        )
    elif facts.nested_live is False:
        findings.append(
            error(
                "vm.host.nested-off",
                "the host's KVM has nested=N: no VM can give its guest vmx/svm",
                "nestctl host enable",
            )
        )
    env = _env(host, opts, findings)
    qemu_server = env.qemu_server_version
    flags = cpuinfo.flags if cpuinfo else frozenset()
    return VmContext(
        env=env,
        predict=predict_cpu,
        host_vendor=facts.vendor if cpuinfo else None,
        nested_live=facts.nested_live,
        nested_virt_supported=qemu_server is None or qemu_server >= (9, 0, 27),
        oracle=_oracle_for(host, opts.use_qemu, facts.vendor if cpuinfo else None),
        cluster_vendors=opts.cluster_vendors,
        vendor_model=vendor_model(facts.vendor, flags),
        named=named,
    )


def _env(host: Host, opts: VmOptions, findings: list[Finding]) -> CpuEnv:
    """The predictor's environment: dpkg versions (or the overrides), cpuinfo, custom models."""
    from nestctl.vm import versions  # noqa: PLC0415

    qemu = versions.parse_version_arg(opts.qemu_version) if opts.qemu_version else None
    pve = versions.parse_version_arg(opts.pve_version) if opts.pve_version else None
    env, got, problems = versions.cpu_env_from_host(host, qemu_version=qemu, pve_version=pve)
    findings += [warning("vm.env.problem", p) for p in problems]
    if qemu is None and got.pve_qemu_kvm is None:
        findings.append(
            info(
                "vm.versions.qemu-unknown",
                "installed QEMU version unknown (no pve-qemu-kvm in the dpkg database): "
                "assuming 11.0 (--qemu-version sets it)",
            )
        )
    if pve is None and got.qemu_server is None:
        findings.append(
            info(
                "vm.versions.pve-unknown",
                "qemu-server version unknown (not in the dpkg database): assuming the newest "
                "behaviour modelled, 9.2 (--pve-version sets it)",
            )
        )
    return env


def _guest_view(
    host: Host, r: VmResult, cfg: VmConfig, run: RunningCheck, ctx: VmContext
) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The guest's own view through the QEMU guest agent (`"via": "agent"`), or None and why."""
    vmid = r.vmid
    if not r.running:
        return None, [info("vm.guest.not-running", f"VM {vmid}: not running: no guest to ask.")]
    from nestctl.guest.agent import GuestAgent, GuestAgentError, agent_socket_path  # noqa: PLC0415
    from nestctl.guest.agent_machine import AgentMachine  # noqa: PLC0415
    from nestctl.guest.facts import HostSide  # noqa: PLC0415
    from nestctl.guest.report import guest_report  # noqa: PLC0415

    socket = agent_socket_path(host, vmid)
    if not socket.exists():
        return None, [
            info(
                "vm.guest.no-agent",
                f"VM {vmid}: no guest agent socket ({host.hostpath(socket)}): the guest's own "
                f"view needs agent: 1 in the config and qemu-guest-agent running in the guest.",
                f"qm set {vmid} --agent 1",
            )
        ]
    conf = cfg.current()
    side = HostSide(
        vmid=vmid,
        running_cpu=r.running_cpu_arg,
        exposes_virt=r.nested.exposed,
        host_nested=ctx.nested_live,
        machine=run.vm.machine if run.vm else None,
        memory_mib=_int(conf.get("memory", "").split(",")[0].removeprefix("current=")),
        ostype=conf.get("ostype"),
        accel="tcg" if run.vm and run.vm.accel_tcg else "kvm",
        restart_pending=r.restart_required,
    )
    why: str | None = None
    try:
        with GuestAgent(socket, timeout=5.0) as agent:
            machine = AgentMachine(agent)
            rep = guest_report(machine, os=machine.os_kind, host_side=side)
            if machine.failure is not None:
                why = str(machine.failure)
    except GuestAgentError as exc:
        why = str(exc)
    if why is not None:
        return None, [
            unknown("vm.guest.agent-failed", f"VM {vmid}: the guest agent did not answer: {why}")
        ]
    obj = dict(rep.payload["guest"])
    obj["via"] = "agent"
    notes = [f.with_message(f"VM {vmid} (guest): {f.message}") for f in rep.findings]
    return obj, notes


def _join_guest_view(r: VmResult) -> None:
    """The guest's own view replaces the prediction as the chain's last link.

    What the guest sees outranks what we predicted: a visible flag without a usable /dev/kvm
    (e.g. svm behind an Intel vendor string) is a broken guest link too.
    """
    if r.guest is None:
        return
    if r.guest.get("os") == "windows":
        state = "ok" if r.guest.get("kvm_usable") else "unknown"
    elif r.guest.get("os") is None:  # the agent could not tell the OS: nothing was probed
        state = "unknown"
    elif r.guest.get("virt_flag") is None:
        state = "broken"
    else:
        usable = r.guest.get("kvm_usable")  # None: the guest could not be checked, not "no"
        state = "ok" if usable else "unknown" if usable is None else "broken"
    r.chain["guest"] = state
    r.broken_link = next((k for k, v in r.chain.items() if v == "broken"), None)


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _pidfile_vmids(host: Host) -> set[int]:
    """VMIDs with a pid file: one directory listing instead of a failed open per VM."""
    out: set[int] = set()
    for d in PID_DIRS:
        for name in host.listdir(d).names:
            stem, dot, ext = name.partition(".")
            if dot and ext == "pid" and stem.isdigit():
                out.add(int(stem))
    return out


def collect(host: Host, opts: VmOptions, *, host_facts: HostFacts | None = None) -> Report:
    """The whole `nestctl vm` report for the VMs asked (default: every VM on this node).

    `host_facts` saves probing the host a second time when the caller (doctor) has them.
    """
    from nestctl.vm.config import load_vm_configs, local_node  # noqa: PLC0415

    findings: list[Finding] = []
    named = bool(opts.vmids)
    if not host.is_dir("/etc/pve"):
        findings.append(
            unknown(
                "vm.no-proxmox",
                f"no /etc/pve under {host.root}: not a Proxmox VE node (or pmxcfs is not "
                f"mounted), so there are no VM configs to check",
                "systemctl status pve-cluster",
            )
        )
    ctx = build_context(host, opts, findings, named, host_facts)
    configs = load_vm_configs(
        host, all_nodes=opts.all_nodes, vmids=list(opts.vmids) if opts.vmids else None
    )
    here = local_node(host)
    with_pidfile = _pidfile_vmids(host)
    pairs: list[tuple[VmConfig, RunningCheck]] = []
    for cfg in configs:
        if not cfg.readable:
            findings.append(
                error(
                    "vm.not-found",
                    f"VM {cfg.vmid}: "
                    + "; ".join(cfg.problems)
                    + ("" if opts.all_nodes else " (--all-nodes looks on every node)"),
                )
            )
            continue
        if cfg.node not in (None, here):
            run = RunningCheck(False, reason="on another node")
        elif cfg.vmid in with_pidfile:
            run = check_running(host, cfg.vmid)
        else:
            run = RunningCheck(False, reason="no pid file")
        pairs.append((cfg, run))
    _prefetch(ctx, pairs)
    results: list[VmResult] = []
    for cfg, run in pairs:
        result = analyse_vm(cfg, run, ctx)
        if opts.guest:
            result.guest, notes = _guest_view(host, result, cfg, run, ctx)
            result.findings += notes
            _join_guest_view(result)
        results.append(result)
    # Top level: what decides the verdict; per-VM notes (info) stay with their VM.
    vm_findings = [f for r in results for f in r.findings if f.severity is not Severity.INFO]
    payload = report_payload(results, guest=opts.guest)
    report = Report(
        title="VMs",
        payload=payload,
        findings=findings + vm_findings,
        sections=sections(results) if opts.sections else [],
    )
    report.summaries = {v: summary(results) for v in Verdict}
    return report


# -- `vm enable`: plan, apply through `qm`, optionally restart and verify ---------------------


@dataclass
class EnableOptions:
    vmid: int
    profile: str
    migratable: bool = False
    dry_run: bool = False
    restart: bool = False


def enable_report(host: Host, opts: VmOptions, eopts: EnableOptions) -> Report:
    """Plan (and unless --dry-run apply) `vm enable` for one VM on this node."""
    from nestctl.vm.config import load_vm_configs  # noqa: PLC0415
    from nestctl.vm.profiles import HostCpu, plan_enable  # noqa: PLC0415

    findings: list[Finding] = []
    ctx = build_context(host, opts, findings, named=True)
    vmid = eopts.vmid
    configs = [c for c in load_vm_configs(host, vmids=[vmid]) if c.readable]
    payload: dict[str, Any] = {
        "vmid": vmid,
        "profile": eopts.profile,
        "dry_run": eopts.dry_run,
        "commands": [],
        "applied": False,
        "blocked": None,
        "manual": [],
        "restart": None,
        "results": [],
    }
    title = f"VM {vmid}: enable {eopts.profile}"
    if not configs:
        findings.append(
            error("vm.not-found", f"VM {vmid}: no config at /etc/pve/qemu-server/{vmid}.conf")
        )
        payload["blocked"] = "no such VM on this node"
        return Report(title, payload, findings)
    cfg = configs[0]
    run = check_running(host, vmid)
    flags = ctx.env.host_flags or frozenset()
    plan = plan_enable(
        vmid,
        cfg.with_pending(),
        eopts.profile,
        HostCpu(ctx.host_vendor, flags),
        migratable=eopts.migratable,
        nested_virt=ctx.nested_virt_supported,
        running=run.running,
        custom_models=ctx.env.custom_models,
    )
    # A running VM needs Proxmox to stop and start it when this plan changes something, or when
    # an earlier change still waits in [PENDING] (or the process runs an older -cpu).
    stale = run.running and (bool(_pending_restart_keys(cfg)) or _running_differs(cfg, run, ctx))
    needs_restart = run.running and (plan.argv is not None or stale)
    findings += [f for f in plan.findings if f.code != "vm.enable.restart" or not eopts.restart]
    commands: list[tuple[str, ...]] = [plan.argv] if plan.argv else []
    if needs_restart and eopts.restart:
        commands.append(("qm", "reboot", str(vmid)))
    payload.update(commands=[list(c) for c in commands], blocked=plan.blocked, manual=plan.manual)
    rows: list[tuple[str, str]] = [("command", shlex.join(c)) for c in commands]
    rows += [("manual step", m) for m in plan.manual]
    sections_ = [Section("Plan", tuple(rows) or (("command", "nothing to change"),))]
    if plan.blocked is not None:
        findings = [f for f in findings if f.code != "vm.enable.restart"]
        if not any(f.code == "vm.enable.locked" for f in findings):
            findings.append(
                error(
                    "vm.enable.blocked",
                    f"VM {vmid}: not changed: {plan.blocked}.",
                    "\n".join(plan.manual) or None,
                )
            )
        return Report(title, payload, findings, sections_)
    if plan.argv is None:
        findings.append(info("vm.enable.nothing", f"VM {vmid}: already set for {eopts.profile}."))
    if needs_restart and not eopts.restart:
        findings = [f for f in findings if f.code != "vm.enable.restart"]
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
    if eopts.dry_run or not commands:
        return Report(title, payload, findings, sections_)
    findings += _apply(host, commands, payload)
    if payload["applied"] and eopts.restart and needs_restart:
        old_pid = run.vm.pid if run.vm else None
        findings += _verify_restart(host, ctx, vmid, payload, old_pid)
    return Report(title, payload, findings, sections_)


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
