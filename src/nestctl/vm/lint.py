"""Lint what users copy from tutorials into VM configs (pure functions over config strings).

Each rule returns findings with a stable code, what goes wrong and the exact `qm` fix:
* `args:` that QEMU rejects (a bare `-hypervisor`) or that replace Proxmox's `-cpu` (what is lost);
* `hidden=1` taken for hiding the CPUID hypervisor bit (it only emits `kvm=off`);
* `nested-virt` on an x86-64-vN model for a Windows guest (Proxmox advises a vendor model);
* raw `+vmx`/`+svm` in a VM's flags, which Proxmox refuses (its message is carried);
* `cpu: host` in a cluster whose nodes have different CPU vendors (when that is known);
* a named CPU model of the other vendor than the host's (the guest's hypervisor refuses it).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from nestctl.findings import Finding, error, info, warning
from nestctl.parse import cpu_vendor, proxmox_bool
from nestctl.vm.cpuarg import args_cpu

ABSTRACT_PREFIX = "x86-64-v"


@dataclass(frozen=True, slots=True)
class CpuProp:
    """The VM's `cpu:` property string, read tolerantly (the predictor does the strict reading)."""

    cputype: str
    flags: tuple[str, ...]  # "+nested-virt", "-md-clear", ...
    props: dict[str, str]  # every key=value, cputype included

    @property
    def hidden(self) -> bool:
        return proxmox_bool(self.props.get("hidden")) is True


def parse_cpu_prop(value: str | None) -> CpuProp:
    props: dict[str, str] = {}
    for raw in (value or "").split(","):
        part = raw.strip()
        if not part:
            continue
        key, sep, val = part.partition("=")
        if sep:
            props[key.strip()] = val.strip()
        else:
            props.setdefault("cputype", key)
    cputype = props.get("cputype", "kvm64")
    flags = tuple(f for f in props.get("flags", "").split(";") if f)
    return CpuProp(cputype, flags, props)


def print_cpu_prop(prop: CpuProp, *, cputype: str, flags: list[str]) -> str:
    """The property string with a new cputype and flags, other keys kept in their order."""
    parts = [cputype]
    for key, val in prop.props.items():
        if key in ("cputype", "flags"):
            continue
        parts.append(f"{key}={val}")
    if flags:
        parts.insert(1, "flags=" + ";".join(flags))
    return ",".join(parts)


def is_windows(conf: Mapping[str, str]) -> bool:
    ostype = conf.get("ostype", "")
    return ostype.startswith("win") or ostype in ("wxp", "w2k", "w2k3", "w2k8", "wvista")


def split_args(args: str) -> tuple[list[str] | None, str | None]:
    """`args:` split shell-style as Proxmox does (Text::ParseWords); (None, why) when it cannot."""
    try:
        return shlex.split(args), None
    except ValueError as exc:
        return None, str(exc)


def lost_by_args(pve_cpu: str, replacement: str) -> tuple[str | None, list[str]]:
    """What Proxmox's own -cpu had that the `args:` -cpu does not: (model change, lost tokens)."""
    pve_model, _, pve_rest = pve_cpu.partition(",")
    new_model, _, new_rest = replacement.partition(",")
    new_tokens = set(new_rest.split(",")) if new_rest else set()
    lost = [t for t in pve_rest.split(",") if t and t not in new_tokens] if pve_rest else []
    model = f"{pve_model} -> {new_model}" if pve_model != new_model else None
    return model, lost


def lint_args(vmid: int, args: str | None, pve_cpu: str | None) -> list[Finding]:
    if not args:
        return []
    argv, why = split_args(args)
    if argv is None:
        return [
            error(
                "vm.args.unparsable",
                f"VM {vmid}: args cannot be split into words ({why}); QEMU will not start.",
                f"qm set {vmid} --delete args",
            )
        ]
    out: list[Finding] = []
    if "-hypervisor" in argv or "--hypervisor" in argv:
        rest = [a for a in argv if a not in ("-hypervisor", "--hypervisor")]
        model = (args_cpu(args) or pve_cpu or "kvm64").split(",")[0]
        fix = (
            f"qm set {vmid} --args {shlex.quote(shlex.join(rest))}"
            if rest
            else f"qm set {vmid} --delete args"
        )
        out.append(
            error(
                "vm.args.bare-hypervisor",
                f"VM {vmid}: args holds a bare -hypervisor; QEMU stops with "
                f"'qemu-system-x86_64: -hypervisor: invalid option' and the VM does not start. "
                f"'hypervisor' is a CPU flag: the working form is -cpu {model},-hypervisor "
                f"(which in turn replaces Proxmox's -cpu).",
                fix,
            )
        )
    replacement = args_cpu(args)
    if replacement is not None and pve_cpu is not None and replacement != pve_cpu:
        change, lost = lost_by_args(pve_cpu, replacement)
        parts = []
        if change:
            parts.append(f"the model changes ({change})")
        if lost:
            parts.append("Proxmox's " + ", ".join(lost) + " are dropped")
        what = "; ".join(parts) if parts else "nothing of Proxmox's value is dropped"
        out.append(
            warning(
                "vm.args.cpu-replaced",
                f"VM {vmid}: args -cpu {replacement} replaces Proxmox's -cpu {pve_cpu} "
                f"(QEMU uses the last -cpu): {what}. Later changes to the cpu option have no "
                f"effect while args holds a -cpu.",
                f"qm set {vmid} --delete args   # then set the CPU with: qm set {vmid} --cpu host",
            )
        )
    return out


def lint_hidden(vmid: int, prop: CpuProp) -> list[Finding]:
    if not prop.hidden:
        return []
    return [
        info(
            "vm.cpu.hidden-not-hypervisor-bit",
            f"VM {vmid}: hidden=1 only adds kvm=off, which hides the KVM signature (CPUID leaf "
            f"0x40000000). The guest still sees the CPUID 'hypervisor' bit; hidden=1 does not "
            f"clear it, and it changes nothing about vmx/svm.",
        )
    ]


def lint_nested_virt_abstract(
    vmid: int, conf: Mapping[str, str], prop: CpuProp, suggestion: str | None
) -> list[Finding]:
    if "+nested-virt" not in prop.flags or not prop.cputype.startswith(ABSTRACT_PREFIX):
        return []
    if not is_windows(conf):
        return []
    model = suggestion or "<a model of the host's vendor, e.g. EPYC-v4 or Cooperlake-v2>"
    return [
        warning(
            "vm.cpu.nested-virt-abstract-windows",
            f"VM {vmid}: nested-virt on {prop.cputype} for a Windows guest. Proxmox advises a CPU "
            f"model of the host's vendor, not x86-64-vN: otherwise nested virtualization can "
            f"still be limited inside Windows (Hyper-V, WSL2).",
            f"qm set {vmid} --cpu {model},flags=+nested-virt",
        )
    ]


def lint_raw_virt_flags(vmid: int, prop: CpuProp, has_nested_virt: bool) -> list[Finding]:
    """Raw +vmx/+svm in VM flags: the fix (Proxmox's refusal message comes from the predictor)."""
    raw = [f for f in prop.flags if f.lstrip("+-") in ("vmx", "svm")]
    if not raw:
        return []
    kept = [f for f in prop.flags if f not in raw]
    if has_nested_virt:
        kept.append("+nested-virt")
        fix = f"qm set {vmid} --cpu " + print_cpu_prop(prop, cputype=prop.cputype, flags=kept)
        how = "use the nested-virt flag instead"
    else:
        fix = f"qm set {vmid} --cpu " + print_cpu_prop(prop, cputype="host", flags=kept)
        how = "use cpu host, or a custom CPU model carrying +vmx/+svm (PVE 8.x has no nested-virt)"
    return [
        error(
            "vm.cpu.raw-virt-flag",
            f"VM {vmid}: flags {';'.join(raw)} are not allowed in a VM's cpu option and Proxmox "
            f"refuses the config: {how}.",
            fix,
        )
    ]


def lint_model_vendor(vmid: int, prop: CpuProp, host_vendor: str | None) -> list[Finding]:
    """A named model of the other vendor: Proxmox forces its vendor string, KVM the host's flag.

    The guest then sees e.g. GenuineIntel with svm; Linux's kvm_amd ("not amd or hygon") and
    kvm_intel both refuse such a CPU, so nesting fails even though the flag is there.
    """
    from nestctl.vm.cpumodels import x86_vendors  # noqa: PLC0415 - tables built on first use

    model = cpu_vendor(x86_vendors(None).get(prop.cputype))
    if model not in ("intel", "amd") or host_vendor not in ("intel", "amd") or model == host_vendor:
        return []
    names = {"intel": "Intel", "amd": "AMD"}
    return [
        warning(
            "vm.cpu.vendor-mismatch",
            f"VM {vmid}: {prop.cputype} is an {names[model]} model on an {names[host_vendor]} "
            f"host: the guest sees an {names[model]} vendor string with the host's "
            f"{'svm' if host_vendor == 'amd' else 'vmx'}, and hypervisors inside it (KVM, "
            f"Hyper-V) refuse such a CPU.",
            f"qm set {vmid} --cpu host",
        )
    ]


def lint_cluster_vendors(vmid: int, prop: CpuProp, vendors: set[str] | None) -> list[Finding]:
    """`cpu: host` where nodes have different CPU vendors (skipped when vendors are unknown)."""
    if prop.cputype != "host" or not vendors or len(vendors) < 2:
        return []
    return [
        warning(
            "vm.cpu.host-mixed-cluster",
            f"VM {vmid}: cpu host in a cluster with CPU vendors {', '.join(sorted(vendors))}: "
            f"the VM cannot move between them (live migration fails, and a cold move changes "
            f"the CPU the guest sees, vmx against svm).",
            f"qm set {vmid} --cpu <a model all nodes support>,flags=+nested-virt",
        )
    ]


def lint_config(
    vmid: int,
    conf: Mapping[str, str],
    *,
    pve_cpu: str | None,
    has_nested_virt: bool,
    vendor_model: str | None = None,
    cluster_vendors: set[str] | None = None,
    host_vendor: str | None = None,
) -> list[Finding]:
    """Every lint rule over one VM config (the values the next start uses)."""
    prop = parse_cpu_prop(conf.get("cpu"))
    return [
        *lint_args(vmid, conf.get("args"), pve_cpu),
        *lint_hidden(vmid, prop),
        *lint_nested_virt_abstract(vmid, conf, prop, vendor_model),
        *lint_raw_virt_flags(vmid, prop, has_nested_virt),
        *lint_cluster_vendors(vmid, prop, cluster_vendors),
        *lint_model_vendor(vmid, prop, host_vendor),
    ]
