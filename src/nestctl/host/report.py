"""`nestctl host` as a `Report`: the JSON contract (``{"host": {...}}``) and the human view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nestctl.findings import Report, Section, Verdict
from nestctl.host.probe import HostFacts, probe_host
from nestctl.host.rules import host_findings

if TYPE_CHECKING:
    from nestctl.machine import Host

SUMMARIES = {
    Verdict.READY: "nested virtualization is on and will stay on",
    Verdict.NOT_READY: "nested virtualization is not ready (see the errors below)",
    Verdict.UNKNOWN: "some facts could not be determined",
}


def host_payload(f: HostFacts) -> dict[str, Any]:
    """The ``host`` object of the JSON contract (documented keys first, extras after)."""
    after = f.nested_after_reboot
    mod = next((m for m in f.kvm_modules if m.name == f.kvm_module), None)
    return {
        "vendor": f.vendor,
        "virt_flag": f.virt_flag,
        "virtualized": f.virtualized,
        "kvm_module": f.kvm_module,
        "dev_kvm": f.dev_kvm,
        "nested": {
            "live": f.nested_live,
            "after_reboot": after.value,
            "decided_by": after.decided_by,
            "live_raw": f.nested_live_raw,
            "after_reboot_raw": after.raw,
            "settings": [{"where": s.where, "value": s.value} for s in after.settings],
        },
        # null when some VM's state is unknown: a partial list would say "not running" for it.
        "running_vms": sorted(f.running.vms) if f.running.complete else None,
        # Extras (stable too, but not part of the minimum).
        "cpu_model": f.cpuinfo.model_name if f.cpuinfo else None,
        "vendor_id": f.cpuinfo.vendor_id if f.cpuinfo else None,
        "hypervisor": f.hypervisor,
        "level": f.level,
        "kernel": f.kernel_release,
        "kvm_modules": [m.name for m in f.kvm_modules],
        "kvm_module_builtin": mod.builtin if mod else None,
        "refcount": mod.refcount if mod else None,
        "performance": dict(f.performance),
        "vm_pids": {str(k): v for k, v in f.running.vms.items()},
        "other_kvm_processes": [
            {"pid": p.pid, "argv0": p.argv0, "why": p.why} for p in f.running.others
        ],
        "modprobe_files": [c.path for c in f.modprobe_config.files],
        "running_vms_unknown": sorted(f.running.unknown),
    }


def _yes_no(value: bool | None, unknown: str = "unknown") -> str:
    if value is None:
        return unknown
    return "yes" if value else "no"


def _on_off(value: bool | None) -> str:
    if value is None:
        return "unknown"
    return "on" if value else "off"


def _what_host(f: HostFacts) -> str:
    if f.virtualized is None:
        return f"unknown ({'; '.join(f.virtualization.evidence)})"
    if f.virtualized:
        return f"a VM: {f.hypervisor or 'unnamed hypervisor'} (level {f.level})"
    return "bare metal (L0)"


def host_sections(f: HostFacts) -> list[Section]:
    cpu = f.cpuinfo
    mod = f.module
    after = f.nested_after_reboot
    cpu_rows = [
        (
            "vendor",
            f"{f.vendor} ({cpu.vendor_id})" if cpu and cpu.vendor_id else f.vendor or "unknown",
        ),
        ("model", (cpu.model_name or "unknown") if cpu else "unknown"),
        ("virtualization flag", f.virt_flag or "none (neither vmx nor svm)"),
        ("this host is", _what_host(f)),
        ("kernel", f.kernel_release or "unknown"),
    ]
    kvm_rows = [
        ("module", f.kvm_module or "none loaded"),
        ("/dev/kvm", "unknown" if f.dev_kvm is None else "present" if f.dev_kvm else "absent"),
    ]
    shown = mod or (f.kvm_modules[0] if f.kvm_modules else None)
    if shown is not None:
        kind = (
            f"unknown ({shown.builtin_evidence})"
            if shown.builtin is None
            else "built in"
            if shown.builtin
            else f"loadable, refcount {shown.refcount}"
        )
        kvm_rows.append(("kind", kind))
    if f.virt_flag is None and f.cpuinfo is not None:
        na = "does not apply (no vmx/svm)"
        nested_rows = [("now", na), ("after reboot", na)]
    else:
        live = _on_off(f.nested_live) + (f" ({f.nested_live_raw})" if f.nested_live_raw else "")
        nested_rows = [
            ("now", live),
            ("after reboot", _on_off(after.value)),
            ("decided by", after.decided_by or "unknown"),
        ]
    for param, value in f.performance.items():
        nested_rows.append((param, _on_off(value)))
    vms = ", ".join(f"{k} (pid {v})" for k, v in f.running.vms.items())
    if not f.running.complete:
        unknown = ", ".join(str(v) for v in f.running.unknown) or "some"
        vms = (vms + "; " if vms else "") + f"unknown for {unknown}"
    vm_rows = [
        ("Proxmox VMs", vms or "none"),
        ("other QEMU with KVM", ", ".join(str(p.pid) for p in f.running.others) or "none"),
    ]
    return [
        Section("CPU", tuple(cpu_rows)),
        Section("KVM", tuple(kvm_rows)),
        Section("nested", tuple(nested_rows)),
        Section("running VMs", tuple(vm_rows)),
    ]


def report_from_facts(f: HostFacts) -> Report:
    return Report(
        title="host",
        payload={"host": host_payload(f)},
        findings=host_findings(f),
        sections=host_sections(f),
        summaries=dict(SUMMARIES),
    )


def host_report(host: Host) -> Report:
    """Probe `host` and build the `nestctl host` report (public: `doctor` calls this)."""
    return report_from_facts(probe_host(host))
