"""Where a result was measured: level, hypervisor, accel, CPU, EPT/NPT, shadow VMCS, clock source,
mitigations and steal time, read through `Host` with the host and guest layers' own parsers.

Without these a ratio cannot be explained. Each setting is `{"value": true|false|null, "source"}`:
null means it could not be read (never "off").
"""

from __future__ import annotations

import os
import platform
from typing import Any, NamedTuple

from nestctl.bench.stub import Stub
from nestctl.guest.linux import classify_platform, detect_accel
from nestctl.host import kvm, virt
from nestctl.host.cpuinfo import CpuInfo, parse_cpuinfo
from nestctl.host.kcmdline import split_cmdline
from nestctl.machine import Host

CLOCK_DIR = "/sys/devices/system/clocksource/clocksource0"
VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"
#: Clock sources whose every read leaves the guest (an MMIO or port access the hypervisor emulates).
EXITING_CLOCKS = frozenset({"hpet", "acpi_pm", "pit", "jiffies"})
#: Clock sources read through the vDSO without an exit.
VDSO_CLOCKS = frozenset(
    {"tsc", "kvm-clock", "hyperv_clocksource_tsc_page", "xen", "arch_sys_counter"}
)
#: CPUID 0x40000000 vendor signatures.
SIGNATURES = {
    "KVMKVMKVM": ("KVM", "kvm"),
    "TCGTCGTCGTCG": ("QEMU TCG", "tcg"),
    "Microsoft Hv": ("Microsoft Hyper-V", "other"),
    "VMwareVMware": ("VMware", "other"),
    "XenVMMXenVMM": ("Xen", "other"),
    "VBoxVBoxVBox": ("VirtualBox", "other"),
    " lrpepyh  vr": ("Parallels", "other"),
    "bhyve bhyve ": ("bhyve", "other"),
}


def _line(host: Host, path: str) -> str | None:
    text = host.read_text(path)
    value = text.strip() if text else ""
    return value or None


def _seen(present: bool) -> str:
    return "present" if present else "absent"


def setting(value: bool | None, source: str) -> dict[str, Any]:
    return {"value": value, "source": source}


def vmx_flags(cpuinfo_text: str) -> frozenset[str]:
    """The first processor's "vmx flags" line (Linux >= 5.8): ept, shadow_vmcs, ... offered."""
    for line in cpuinfo_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "vmx flags":
            return frozenset(value.split())
    return frozenset()


def _module(host: Host) -> kvm.KvmModule | None:
    for name in ("kvm_intel", "kvm_amd"):
        if host.is_dir(f"/sys/module/{name}"):
            return kvm.read_module(host, name)
    return None


def ept_npt(
    cpu: CpuInfo | None, vflags: frozenset[str], module: kvm.KvmModule | None
) -> dict[str, Any]:
    """Whether this machine's KVM gives its guests hardware-assisted paging (EPT/NPT)."""
    if module is not None:
        param = "ept" if module.name == "kvm_intel" else "npt"
        pv = module.performance.get(param)
        if pv is not None and pv.value is not None:
            return setting(pv.value, f"{module.name} parameter {param}={pv.raw}")
    if cpu is None:
        return setting(None, "/proc/cpuinfo unreadable")
    if cpu.vendor == "amd" and "svm" in cpu.flags:
        offered = "npt" in cpu.flags
        return setting(
            offered, f"CPU flag npt {'present' if offered else 'absent'} (KVM not loaded)"
        )
    if cpu.vendor == "intel" and "vmx" in cpu.flags and vflags:
        offered = "ept" in vflags
        return setting(
            offered, f"vmx flag ept {'present' if offered else 'absent'} (KVM not loaded)"
        )
    return setting(None, "no KVM module loaded and no vmx/svm paging flag to read")


def shadow_vmcs(
    cpu: CpuInfo | None, vflags: frozenset[str], module: kvm.KvmModule | None
) -> dict[str, Any]:
    """Shadow VMCS for this machine's guests' own guests (Intel only; AMD has no such thing)."""
    if cpu is not None and cpu.vendor == "amd":
        return setting(None, "AMD: SVM has no shadow VMCS (not applicable)")
    if module is not None and module.name == "kvm_intel":
        pv = module.performance.get("enable_shadow_vmcs")
        if pv is not None and pv.value is not None:
            return setting(pv.value, f"kvm_intel parameter enable_shadow_vmcs={pv.raw}")
    if vflags:
        offered = "shadow_vmcs" in vflags
        return setting(offered, f"vmx flag shadow_vmcs {_seen(offered)}")
    return setting(None, "no kvm_intel module and no vmx flags to read")


def enlightened_vmcs(host: Host, module: kvm.KvmModule | None) -> dict[str, Any]:
    if module is None or module.name != "kvm_intel":
        return setting(None, "only kvm_intel running on Hyper-V uses an enlightened VMCS")
    pv = kvm.read_param(host, "kvm_intel", "enlightened_vmcs")
    if pv.value is None:
        return setting(None, "kvm_intel has no enlightened_vmcs parameter (not on Hyper-V)")
    return setting(pv.value, f"kvm_intel parameter enlightened_vmcs={pv.raw}")


def clock(host: Host) -> dict[str, Any]:
    current = _line(host, f"{CLOCK_DIR}/current_clocksource")
    available = _line(host, f"{CLOCK_DIR}/available_clocksource")
    exits = None
    if current in EXITING_CLOCKS:
        exits = True
    elif current in VDSO_CLOCKS:
        exits = False
    return {
        "clocksource": current,
        "clocksource_exits": exits,
        "clocksources_available": available.split() if available else None,
    }


def mitigations(host: Host) -> dict[str, Any]:
    listing = host.listdir(VULN_DIR)
    vulns = None
    if listing.ok:  # a missing or unreadable directory is unknown, not "no vulnerabilities"
        vulns = {n: _line(host, f"{VULN_DIR}/{n}") for n in listing.names}
    cmd = host.read_text("/proc/cmdline")
    param = None
    if cmd is not None:
        for word in split_cmdline(cmd):
            key, eq, value = word.partition("=")
            if key == "mitigations" and eq:
                param = value  # the last one wins, as in the kernel
    return {"cmdline": param, "vulnerabilities": vulns}


class Ticks(NamedTuple):
    """The aggregate "cpu" line of /proc/stat, in clock ticks."""

    steal: int
    total: int  # user..steal (guest time is already inside user and nice)
    idle: int  # idle + iowait


def cpu_ticks(host: Host) -> Ticks | None:
    text = host.read_text("/proc/stat")
    for line in (text or "").splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" and len(fields) >= 9:
            try:
                ticks = [int(f) for f in fields[1:9]]
            except ValueError:
                return None
            return Ticks(ticks[7], sum(ticks), ticks[3] + ticks[4])
    return None


def steal(before: Ticks | None, after: Ticks | None) -> dict[str, Any]:
    if before is None or after is None or after.total <= before.total:
        return {"percent": None, "ticks": None, "source": "/proc/stat unreadable"}
    ticks = after.steal - before.steal
    return {
        "percent": round(100.0 * ticks / (after.total - before.total), 2),
        "ticks": ticks,
        "source": "/proc/stat during the run",
    }


def contention(before: Ticks | None, after: Ticks | None, own_ticks: float) -> dict[str, Any]:
    """How much of the CPUs other processes used during the run (ours subtracted): on a busy
    machine the medians are noisy whatever the level."""
    if before is None or after is None or after.total <= before.total:
        return {"percent": None, "source": "/proc/stat unreadable"}
    total = after.total - before.total
    busy = total - (after.idle - before.idle) - (after.steal - before.steal)
    others = max(busy - own_ticks, 0.0)
    return {
        "percent": round(100.0 * others / total, 1),
        "source": "/proc/stat busy time minus this benchmark's own CPU time",
    }


def accel_and_hypervisor(
    host: Host, cpu: CpuInfo | None, stub: Stub | str
) -> tuple[str, str | None, str | None, list[str]]:
    """(accel, hypervisor name, CPUID signature, evidence): KVM, TCG, another one, or none."""
    vendor = _line(host, "/sys/class/dmi/id/sys_vendor")
    product = _line(host, "/sys/class/dmi/id/product_name")
    sys_hv = _line(host, "/sys/hypervisor/type")
    clocks_text = host.read_text(f"{CLOCK_DIR}/available_clocksource")
    clocks = tuple(clocks_text.split()) if clocks_text is not None else None
    platform_name = classify_platform(vendor, product, sys_hv)
    detected, evidence = detect_accel(cpu, platform_name, clocks)
    accel: str = detected
    notes = [e.signal for e in evidence]
    hv = virt.classify(
        virt.VirtEvidence(bool(cpu and cpu.hypervisor), sys_hv, vendor, product, None, clocks_text)
    ).hypervisor
    signature = None
    if cpu is not None and cpu.hypervisor and isinstance(stub, Stub):
        signature = stub.hypervisor_signature()
        known = SIGNATURES.get(signature or "")
        if known is not None:
            # CPUID says it outright: QEMU's TCG answers "TCGTCGTCGTCG", KVM "KVMKVMKVM".
            hv, accel = (hv if known[1] == "kvm" and hv else known[0]), known[1]
            notes.insert(0, f"CPUID 0x40000000 signature {signature!r}")
    if accel == "tcg":
        hv = "QEMU (TCG software emulation)"
    return accel, hv, signature, notes


def where(host: Host, stub: Stub | str, *, tsc_hz: float | None) -> dict[str, Any]:
    """The measurement context of this machine (steal is filled in by the runner)."""
    text = host.read_text("/proc/cpuinfo")
    cpu = parse_cpuinfo(text) if text is not None else None
    vflags = vmx_flags(text or "")
    module = _module(host)
    accel, hv, signature, evidence = accel_and_hypervisor(host, cpu, stub)
    virtual = bool(cpu and cpu.hypervisor) or accel in ("kvm", "tcg", "other")
    out: dict[str, Any] = {
        "level": "L1+" if virtual else ("L0" if cpu is not None else None),
        "hypervisor": hv,
        "hypervisor_signature": signature,
        "accel": accel if virtual else "none",
        "accel_evidence": evidence,
        "cpu_model": cpu.model_name if cpu else None,
        "cpu_vendor": cpu.vendor if cpu else None,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kvm_module": module.name if module else None,
        "ept_npt": ept_npt(cpu, vflags, module),
        "shadow_vmcs": shadow_vmcs(cpu, vflags, module),
        "enlightened_vmcs": enlightened_vmcs(host, module),
        **clock(host),
        "mitigations": mitigations(host),
        "steal": None,
        "tsc_hz": round(tsc_hz) if tsc_hz else None,
        "kernel": _line(host, "/proc/sys/kernel/osrelease"),
        # A collected or mounted root (--root) names its own host.
        "hostname": (platform.node() or None) if host.live else _line(host, "/etc/hostname"),
        "python": platform.python_version(),
    }
    return out
