"""`nestctl vm enable`: plan the smallest `qm set` that makes a VM nested-ready for a profile.

Pure planning over the VM's config (with pending applied), the host CPU and whether this node's
qemu-server knows the `nested-virt` flag (>= 9.0.27, PVE 9.1). Nothing already right is set again.
The CLI applies it through `Host.run(["qm", "set", ...])`; Proxmox's files are never written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from nestctl.findings import Finding, error, info, warning
from nestctl.parse import cpu_vendor, parse_uint, proxmox_bool
from nestctl.vm.cpumodels import x86_vendors
from nestctl.vm.lint import CpuProp, is_windows, parse_cpu_prop, print_cpu_prop

PROFILES = ("linux-kvm", "windows-hyperv", "windows-wsl2-docker", "pve-lab")
WINDOWS_PROFILES = frozenset({"windows-hyperv", "windows-wsl2-docker"})
#: Hyper-V (and so WSL2 and Docker Desktop) wants this much RAM without ballooning below it.
HYPERV_MIN_MEMORY_MIB = 8192
#: Proxmox's default `memory` when the key is absent (MiB).
DEFAULT_MEMORY_MIB = 512
NESTED_VIRT_SINCE = (9, 0, 27)  # qemu-server version that added the nested-virt VM flag

#: Intel models, newest first, with host /proc/cpuinfo flags each needs. Only models without TSX
#: (hle/rtm are often disabled by microcode or the kernel), so `enforce` does not stop QEMU.
_INTEL_LADDER: tuple[tuple[str, frozenset[str]], ...] = (
    ("Cascadelake-Server-noTSX", frozenset({"avx512_vnni", "avx512f", "avx512bw", "pku"})),
    ("Skylake-Server-noTSX-IBRS", frozenset({"avx512f", "avx512bw", "avx512vl", "clwb"})),
    ("Broadwell-noTSX", frozenset({"avx2", "adx", "rdseed", "smap"})),
    ("Haswell-noTSX", frozenset({"avx2", "bmi1", "bmi2", "fma", "movbe"})),
    ("SandyBridge", frozenset({"avx", "aes", "pclmulqdq", "xsave"})),
    ("Nehalem", frozenset({"sse4_2", "popcnt"})),
)
_AMD_LADDER: tuple[tuple[str, frozenset[str]], ...] = (
    # EPYC-v4 is the Zen 1 baseline every EPYC/Ryzen host runs (Proxmox's own example).
    ("EPYC-v4", frozenset({"avx2", "sha_ni", "clzero", "rdseed", "adx"})),
    ("Opteron_G5", frozenset({"fma4", "tbm", "avx"})),
    ("Opteron_G3", frozenset({"sse4a", "popcnt"})),
)


def vendor_model(vendor: str | None, flags: frozenset[str]) -> str | None:
    """A Proxmox CPU model of the host's vendor that this host surely runs, newest first."""
    ladder = {"intel": _INTEL_LADDER, "amd": _AMD_LADDER}.get((vendor or "").lower())
    for model, needs in ladder or ():
        if needs <= flags:
            return model
    return None


def model_vendor(model: str) -> str | None:
    """ "intel", "amd" or None (generic, abstract, custom or unknown) for a built-in model."""
    vendor = cpu_vendor(x86_vendors(None).get(model))
    return vendor if vendor != "other" else None


@dataclass
class HostCpu:
    vendor: str | None  # "intel" | "amd" | "other" | None
    flags: frozenset[str] = frozenset()

    @property
    def virt_flag(self) -> str | None:
        return {"intel": "vmx", "amd": "svm"}.get(self.vendor or "")


@dataclass
class Plan:
    """What `vm enable` would do to one VM."""

    vmid: int
    profile: str
    options: list[tuple[str, str]] = field(default_factory=list)  # ("--cpu", "host"), ...
    findings: list[Finding] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # steps for the admin (e.g. a model stanza)
    blocked: str | None = None  # why nothing can be applied now

    @property
    def argv(self) -> tuple[str, ...] | None:
        """The one `qm set` command, or None when nothing needs setting."""
        if not self.options:
            return None
        out = ["qm", "set", str(self.vmid)]
        for opt, val in self.options:
            out += [opt, val]
        return tuple(out)

    def to_json(self) -> dict[str, object]:
        return {
            "vmid": self.vmid,
            "profile": self.profile,
            "commands": [list(self.argv)] if self.argv else [],
            "manual": self.manual,
            "blocked": self.blocked,
        }


def custom_model_stanza(name: str, reported: str, flag: str) -> str:
    """The cpu-models.conf section for a custom model carrying vmx/svm (PVE < 9.1)."""
    return f"cpu-model: {name}\n    flags +{flag}\n    reported-model {reported}\n"


def _clean_flags(prop: CpuProp, *, keep_nested_virt: bool) -> list[str]:
    drop = {"vmx", "svm"} | (set() if keep_nested_virt else {"nested-virt"})
    return [f for f in prop.flags if f.lstrip("+-") not in drop]


def _find_custom(models: Mapping[str, Mapping[str, str]], reported: str, flag: str) -> str | None:
    for name, model in sorted(models.items()):
        flags = set(model.get("flags", "").split(";"))
        if model.get("reported-model", "kvm64") == reported and f"+{flag}" in flags:
            return name
    return None


def _plan_cpu(
    plan: Plan,
    conf: Mapping[str, str],
    host: HostCpu,
    *,
    migratable: bool,
    nested_virt: bool,
    custom_models: Mapping[str, Mapping[str, str]],
) -> None:
    vmid = plan.vmid
    prop = parse_cpu_prop(conf.get("cpu"))
    current = conf.get("cpu")
    flag = host.virt_flag
    if not migratable:
        flags = _clean_flags(prop, keep_nested_virt=nested_virt)
        flags = [f for f in flags if f != "-nested-virt"]
        target = print_cpu_prop(prop, cputype="host", flags=flags)
    elif flag is None:
        plan.blocked = "the host CPU vendor is unknown: cannot choose a migratable vendor model"
        return
    elif nested_virt:
        keep = model_vendor(prop.cputype) == host.vendor and not prop.cputype.startswith("custom-")
        model = prop.cputype if keep else vendor_model(host.vendor, host.flags)
        if model is None:
            plan.blocked = "no built-in CPU model is known to fit this host's CPU flags"
            return
        flags = [f for f in _clean_flags(prop, keep_nested_virt=True) if f != "-nested-virt"]
        if "+nested-virt" not in flags:
            flags.append("+nested-virt")
        target = print_cpu_prop(prop, cputype=model, flags=flags)
    else:
        model = vendor_model(host.vendor, host.flags)
        if model is None:
            plan.blocked = "no built-in CPU model is known to fit this host's CPU flags"
            return
        name = _find_custom(custom_models, model, flag)
        if name is None:
            name = f"nested-{model.lower()}"
            stanza = custom_model_stanza(name, model, flag)
            plan.manual.append(
                "Add this custom CPU model to /etc/pve/virtual-guest/cpu-models.conf (a cluster "
                "file Proxmox owns; this node's Proxmox has no API for it, so nestctl does not "
                "write it), then run the qm set command:\n" + stanza
            )
            plan.blocked = f"custom CPU model '{name}' does not exist yet"
        flags = _clean_flags(prop, keep_nested_virt=False)
        target = print_cpu_prop(prop, cputype=f"custom-{name}", flags=flags)
    if target != (current or "kvm64"):
        plan.options.append(("--cpu", target))
    if conf.get("kvm", "1") in ("0", "off", "no", "false"):
        plan.options.append(("--kvm", "1"))
        plan.findings.append(
            info("vm.enable.kvm", f"VM {vmid}: KVM is off (kvm: 0); nesting needs it on.")
        )
    if "-cpu" in conf.get("args", ""):
        plan.findings.append(
            warning(
                "vm.enable.args-cpu",
                f"VM {vmid}: args holds its own -cpu, which replaces the one set here; "
                f"the change has no effect until that -cpu is removed from args.",
                f"qm set {vmid} --delete args",
            )
        )


def _q35(machine: str | None) -> str | None:
    """The q35 machine keeping a pinned version and other properties, or None if already q35."""
    parts = (machine or "").split(",") if machine else []
    idx, mtype = 0, "pc"
    for i, part in enumerate(parts):
        key, sep, val = part.partition("=")
        if not sep or key == "type":
            idx, mtype = i, (val if sep else key)
            break
    if mtype == "q35" or mtype.startswith("pc-q35-"):
        return None
    m = re.fullmatch(r"pc-i440fx-(\d+\.\d+(?:\+pve\d+)?)", mtype, re.ASCII)
    new = f"pc-q35-{m.group(1)}" if m else "q35"
    if not parts:
        return new
    key, sep, _ = parts[idx].partition("=")
    parts[idx] = f"type={new}" if sep else new
    return ",".join(parts)


def _memory_mib(value: str | None) -> int | None:
    if value is None:
        return DEFAULT_MEMORY_MIB
    for part in value.split(","):
        key, sep, val = part.partition("=")
        raw = val if sep else key
        if not sep or key == "current":
            return parse_uint(raw)
    return None


def _plan_windows(plan: Plan, conf: Mapping[str, str]) -> None:
    vmid = plan.vmid
    if not is_windows(conf):
        plan.findings.append(
            warning(
                "vm.enable.not-windows",
                f"VM {vmid}: profile {plan.profile} is for Windows guests but ostype is "
                f"{conf.get('ostype', 'unset')}.",
                f"qm set {vmid} --ostype win11",
            )
        )
    new_machine = _q35(conf.get("machine"))
    if new_machine is not None:
        plan.options.append(("--machine", new_machine))
        plan.findings.append(
            warning(
                "vm.enable.machine-q35",
                f"VM {vmid}: the machine type changes to {new_machine} (Hyper-V, WSL2 and Docker "
                f"Desktop want q35). An installed Windows re-enumerates its devices after this "
                f"change (new disk and network controllers, activation may be asked again): take "
                f"a snapshot first.",
                f"qm snapshot {vmid} before-nestctl-q35",
            )
        )
    memory = _memory_mib(conf.get("memory"))
    if memory is None:
        plan.findings.append(
            warning("vm.enable.memory-unreadable", f"VM {vmid}: cannot read memory option.")
        )
    elif memory < HYPERV_MIN_MEMORY_MIB:
        plan.options.append(("--memory", str(HYPERV_MIN_MEMORY_MIB)))
    balloon = conf.get("balloon")
    balloon_mib = parse_uint(balloon)
    if balloon_mib is not None:
        value = balloon_mib
        if 0 < value < HYPERV_MIN_MEMORY_MIB:
            plan.options.append(("--balloon", "0"))


def _plan_pve_lab(plan: Plan, conf: Mapping[str, str]) -> None:
    vmid = plan.vmid
    disks = sorted(k for k in conf if re.fullmatch(r"virtio\d+", k, re.ASCII))
    if not disks:
        return
    steps = "\n".join(
        [f"qm set {vmid} --scsihw virtio-scsi-single"]
        + [
            f"# {d}: qm set {vmid} --delete {d}  (it becomes unusedN), then "
            f"qm set {vmid} --scsiN <that volume>,iothread=1 and fix --boot order"
            for d in disks
        ]
    )
    plan.findings.append(
        warning(
            "vm.enable.virtio-blk-zfs",
            f"VM {vmid}: disks {', '.join(disks)} are virtio-blk. ZFS inside a nested Proxmox "
            f"does not support virtio-blk disks; use SCSI on the virtio-scsi controller. Moving a "
            f"disk is not a one-liner (detach, re-attach as scsiN, fix the boot order), so nestctl "
            f"tells rather than does it.",
            steps,
        )
    )


def locked(plan: Plan, conf: Mapping[str, str]) -> bool:
    """Whether Proxmox holds a lock on the VM; if so the plan is blocked, with the finding
    saying so (nestctl never touches a locked VM)."""
    lock = conf.get("lock")
    if not lock:
        return False
    vmid = plan.vmid
    plan.blocked = f"VM is locked ({lock})"
    plan.findings.append(
        error(
            "vm.enable.locked",
            f"VM {vmid}: VM is locked ({lock}); nestctl does not touch a locked VM.",
            f"wait for the {lock} to finish, or if it is stale: qm unlock {vmid}",
        )
    )
    return True


def plan_enable(
    vmid: int,
    conf: Mapping[str, str],
    profile: str,
    host: HostCpu,
    *,
    migratable: bool = False,
    nested_virt: bool,
    running: bool | None = False,
    custom_models: Mapping[str, Mapping[str, str]] | None = None,
) -> Plan:
    """The smallest change making VM `vmid` nested-ready for `profile`.

    `conf` is the VM's config with pending changes applied; `nested_virt` says whether this node's
    qemu-server knows the flag (>= 9.0.27).
    """
    plan = Plan(vmid, profile)
    if profile not in PROFILES:
        plan.blocked = f"unknown profile {profile!r} (one of {', '.join(PROFILES)})"
        return plan
    if locked(plan, conf):
        return plan
    if proxmox_bool(conf.get("template")):
        plan.blocked = (
            "VM is a template (templates always run qemu64 without KVM): enable its clones"
        )
        return plan
    _plan_cpu(
        plan,
        conf,
        host,
        migratable=migratable,
        nested_virt=nested_virt,
        custom_models=custom_models or {},
    )
    if profile in WINDOWS_PROFILES:
        _plan_windows(plan, conf)
    if profile == "pve-lab":
        _plan_pve_lab(plan, conf)
    if running is None and plan.options:
        plan.findings.append(
            info(
                "vm.enable.running-unknown",
                f"VM {vmid}: whether it runs could not be checked; if it does, the cpu and "
                f"machine changes wait in [PENDING] until Proxmox stops and starts it.",
                f"qm reboot {vmid}  (if it runs)",
            )
        )
    if running and plan.options:
        plan.findings.append(
            info(
                "vm.enable.restart",
                f"VM {vmid} is running: the cpu and machine changes wait in [PENDING] until "
                f"Proxmox stops and starts it. A reboot inside the guest does not apply them.",
                f"qm reboot {vmid}",
            )
        )
    return plan
