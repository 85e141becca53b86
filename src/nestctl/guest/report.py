"""The guest report: the JSON contract object, the human sections, and `guest_report`.

Contract (issue 5): ``{"os", "virt_flag", "dev_kvm", "kvm_usable", "accel", "level"}``, plus extra
keys (``hypervisor``, ``linux``/``windows`` details). The VM layer adds ``"via": "agent"``.
"""

from __future__ import annotations

import sys
from typing import Any

from nestctl.findings import Finding, Report, Section, Verdict
from nestctl.guest.facts import GuestFacts, HostSide, LinuxFacts, WindowsFacts
from nestctl.guest.rules import (
    effective_level,
    guest_findings,
    windows_accel,
    windows_level,
    windows_platform,
    windows_verdicts,
)
from nestctl.machine import Machine


def all_of(*values: bool | None) -> bool | None:
    """Three-valued AND: False if any is False, else None if any is unknown, else True.

    `bool(a and b)` would turn "could not check" into "no"."""
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def _linux_json(lf: LinuxFacts, hs: HostSide | None) -> dict[str, Any]:
    cpu = lf.cpu
    return {
        "os": "linux",
        "virt_flag": cpu.virt_flag if cpu else None,
        "dev_kvm": lf.dev_kvm,
        "kvm_usable": all_of(lf.dev_kvm, lf.access.usable),
        "accel": lf.accel,
        "level": effective_level(lf.level, hs),
        "hypervisor": lf.platform,
        "linux": {
            "vendor_id": cpu.vendor_id if cpu else None,
            "model_name": cpu.model_name if cpu else None,
            "hypervisor_flag": cpu.hypervisor if cpu else None,
            "kvm_access": {"usable": lf.access.usable, "reason": lf.access.reason},
            "kvm_module": lf.kvm_module,
            "kvm_module_known": lf.kvm_module_known,
            "module_nested": lf.module_nested,
            "dmi": {"sys_vendor": lf.dmi_vendor, "product_name": lf.dmi_product},
            "clocksources": list(lf.clocksources) if lf.clocksources is not None else None,
            "accel_evidence": [e.to_json() for e in lf.accel_evidence],
            "level_evidence": [e.to_json() for e in lf.level_evidence],
            "lab": {
                "qemu_binaries": None
                if lf.lab.qemu_binaries is None
                else list(lf.lab.qemu_binaries),
                "libvirtd_installed": lf.lab.libvirtd_installed,
                "libvirtd_state": lf.lab.libvirtd_state,
            },
            "unchecked": list(lf.unchecked),
            # A hypervisor itself (its VM hosts an inner layer): null when it could not be read.
            "pve_node": lf.role.pve_node if lf.role else None,
            "pve_evidence": list(lf.role.pve_evidence) if lf.role else [],
            "running_vms": None
            if lf.role is None or lf.role.running_vms is None
            else list(lf.role.running_vms),
        },
    }


def _windows_json(wf: WindowsFacts, hs: HostSide | None) -> dict[str, Any]:
    verdicts = windows_verdicts(wf, hs)
    usable = any(verdicts[k].status == "ready" for k in ("hyperv", "wsl2"))
    return {
        "os": "windows",
        "virt_flag": None,  # Windows has no /proc/cpuinfo; Win32_Processor is only a hint
        "dev_kvm": False,
        "kvm_usable": usable,  # on Windows: Hyper-V or WSL2 can run VMs now
        "accel": windows_accel(wf, hs),
        "level": windows_level(wf, hs),
        "hypervisor": windows_platform(wf),
        "windows": {
            "features": wf.features,
            "hypervisorlaunchtype": wf.launchtype,
            "services": wf.services,
            "running_vms": list(wf.running_vms) if wf.running_vms is not None else None,
            "hypervisor_events": list(wf.hypervisor_events)
            if wf.hypervisor_events is not None
            else None,
            "wsl": {
                "default_version": wf.wsl_default_version,
                "distros": [{"name": n, "state": s, "version": v} for n, s, v in wf.wsl_distros],
                "errors": list(wf.wsl_errors),
            },
            "hints": wf.hints,
            "verdicts": {k: v.to_json() for k, v in verdicts.items()},
        },
    }


def guest_json(
    facts: GuestFacts, findings: list[Finding], host_side: HostSide | None = None
) -> dict[str, Any]:
    """The contract object for one guest (`findings` are reported beside it, not inside)."""
    del findings  # the object holds facts; kept in the signature so callers pass both
    if facts.windows is not None:
        return _windows_json(facts.windows, host_side)
    if facts.linux is not None:
        return _linux_json(facts.linux, host_side)
    # Nothing was gathered: every answer is unknown, none is "no".
    return {
        "os": None if facts.os == "unknown" else facts.os,
        "virt_flag": None,
        "dev_kvm": None,
        "kvm_usable": None,
        "accel": "unknown",
        "level": None,
    }


def _sections(facts: GuestFacts, obj: dict[str, Any]) -> list[Section]:
    def show(value: object) -> str:
        return (
            "unknown"
            if value is None
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )

    rows = [
        ("os", show(obj["os"])),
        ("virt flag", show(obj["virt_flag"]) if obj["virt_flag"] else "none"),
        ("/dev/kvm", show(obj["dev_kvm"])),
        ("usable", show(obj["kvm_usable"])),
        ("runs under", f"{obj['accel']} ({show(obj.get('hypervisor'))})"),
        ("nesting level", show(obj["level"])),
    ]
    if facts.linux is not None:
        lf = facts.linux
        if lf.kvm_module in ("kvm_intel", "kvm_amd"):
            module = f"{lf.kvm_module} (nested={show(lf.module_nested)})"
        elif lf.kvm_module:
            module = f"{lf.kvm_module} (no nested parameter)"
        else:
            module = "none" if lf.kvm_module_known else "unknown"
        rows.append(("KVM module", module))
        rows.append(("access", lf.access.reason))
        binaries = lf.lab.qemu_binaries
        qemu = (
            "qemu-system unknown" if binaries is None else ", ".join(binaries) or "no qemu-system"
        )
        rows.append(("lab", f"{qemu}; libvirtd {show(lf.lab.libvirtd_state)}"))
        if lf.role is not None:
            vms = lf.role.running_vms
            running = "unknown" if vms is None else str(len(vms))
            rows.append(("Proxmox VE node", show(lf.role.pve_node)))
            rows.append(("VMs running", running))
    sections = [Section("Guest", tuple(rows))]
    if facts.linux is not None:
        ev = [(e.certainty, e.signal) for e in facts.linux.accel_evidence]
        sections.append(Section("Evidence", tuple(ev)))
    if facts.windows is not None:
        verdicts = obj["windows"]["verdicts"]
        sections.append(
            Section(
                "Windows",
                tuple((k, f"{v['status']}: {v['reason']}") for k, v in verdicts.items()),
            )
        )
    return sections


def detect_os() -> str:
    return "windows" if sys.platform == "win32" else "linux"


def guest_report(
    machine: Machine,
    *,
    os: str | None = None,
    host_side: HostSide | None = None,
    try_wsl: bool = False,
) -> Report:
    """Probe `machine` as a Linux or Windows guest and judge it (kvm-ok-style verdict).

    `os` "unknown" (the agent could not tell) probes nothing: guessing Linux would read a Windows
    guest's missing /proc as "no virtualization"."""
    kind = os or detect_os()
    if kind == "unknown":
        facts = GuestFacts(os="unknown")
    elif kind == "windows":
        from nestctl.guest.windows import probe_windows  # noqa: PLC0415

        facts = probe_windows(machine, try_wsl=try_wsl)
    else:
        from nestctl.guest.linux import probe_linux  # noqa: PLC0415

        facts = probe_linux(machine)
    findings = guest_findings(facts, host_side, blocker=getattr(machine, "blocker", None))
    obj = guest_json(facts, findings, host_side)
    return Report(
        title="guest",
        payload={"guest": obj},
        findings=findings,
        sections=_sections(facts, obj),
        summaries={
            Verdict.READY: "this guest can run VMs with hardware acceleration",
            Verdict.NOT_READY: "this guest cannot run accelerated VMs",
            Verdict.UNKNOWN: "could not check whether this guest can run accelerated VMs",
        },
    )
