"""Turn host facts into findings: stable codes, plain messages, exact fixes. Pure functions.

Codes are a public contract (documented in docs/host.md); never rename one.
"""

from __future__ import annotations

from collections.abc import Callable

from nestctl.findings import Finding, error, info, unknown, warning
from nestctl.host.kvm import PERFORMANCE_PARAMS
from nestctl.host.pidfiles import PIDFILE_FIX
from nestctl.host.probe import HostFacts

_FLAG_NAME = {"intel": "VT-x (vmx)", "amd": "AMD-V (svm)"}
_FIRMWARE_NAME = {"intel": "Intel VT-x / Virtualization Technology", "amd": "SVM Mode / AMD-V"}


def _cpu(f: HostFacts) -> list[Finding]:
    if f.cpuinfo is None:
        return [
            unknown(
                "host.proc.unreadable",
                f"/proc/cpuinfo cannot be read ({f.cpuinfo_error}); nothing about the CPU is known",
                "run nestctl on the host itself, or point --root at a tree that has /proc",
            )
        ]
    out: list[Finding] = []
    if f.vendor == "other":
        out.append(
            unknown(
                "host.cpu.vendor-unknown",
                f"CPU vendor {f.cpuinfo.vendor_id or '(none given)'!r} is neither Intel nor AMD; "
                "nestctl checks nested KVM on Intel VT-x and AMD-V only",
            )
        )
    if f.virt_flag is not None:
        return out
    log = f.kernel_log
    flag = _FLAG_NAME.get(f.vendor or "", "vmx/svm")
    if log is not None and log.firmware_lines:
        out.append(
            error(
                "host.cpu.virt-disabled-in-firmware",
                f"{flag} is switched off in the firmware: the kernel log ({log.source}) says "
                f"{log.firmware_lines[-1]!r}",
                f"enable {_FIRMWARE_NAME.get(f.vendor or '', 'hardware virtualization')} in the "
                "BIOS/UEFI setup, then power-cycle the machine",
            )
        )
    elif f.virtualized:
        by = f.hypervisor or "an unnamed hypervisor"
        out.append(
            error(
                "host.cpu.virt-not-passed-through",
                f"this host is itself a VM ({by}) and its CPU shows no vmx/svm: the outer "
                "hypervisor does not pass hardware virtualization through",
                "on the outer host, enable nesting for this VM (Proxmox: nestctl host enable "
                "there, then qm set <vmid> --cpu host and restart the VM; clouds: pick an "
                "instance type that supports nested virtualization)",
            )
        )
    else:
        where = (
            f"no 'disabled by BIOS' message in {log.source}"
            if log is not None and log.source
            else "the kernel log is not readable, so a firmware switch cannot be ruled out"
        )
        out.append(
            error(
                "host.cpu.no-virt-extensions",
                f"/proc/cpuinfo shows neither vmx nor svm ({where}): this CPU offers no hardware "
                "virtualization, or it is switched off in the firmware",
                "check the BIOS/UEFI setup for Intel VT-x or AMD SVM; a CPU without it cannot run "
                "KVM",
            )
        )
    return out


def _virtualized(f: HostFacts) -> list[Finding]:
    if f.virtualized is None:
        if f.cpuinfo is None:
            return []  # host.proc.unreadable says it
        # It matters only when it would explain a missing vmx/svm.
        make = unknown if f.virt_flag is None else info
        return [
            make(
                "host.virtualization-unknown",
                "whether this host is itself a VM could not be checked "
                f"({'; '.join(f.virtualization.evidence)})",
                "run nestctl as root on the host itself",
            )
        ]
    if not f.virtualized:
        return []
    by = f.hypervisor or "an unnamed hypervisor"
    return [
        info(
            "host.virtualized",
            f"this host is a virtual machine ({by}; level {f.level}): its own VMs are nested "
            f"one level deeper ({'; '.join(f.virtualization.evidence)})",
        )
    ]


def _kvm(f: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    expected = f.expected_module
    if not f.modules_readable:
        return [
            unknown(
                "host.kvm.modules-unreadable",
                "/sys/module cannot be listed: which KVM module is loaded is unknown",
                "run nestctl on the host itself, or point --root at a tree that has /sys",
            )
        ]
    others = [m.name for m in f.kvm_modules if m.name != expected]
    if others and f.module is None:
        out.append(
            info(
                "host.kvm.other-module",
                f"KVM here comes from {', '.join(others)}, not kvm_intel/kvm_amd; "
                + (
                    "/dev/kvm could not be checked"
                    if f.dev_kvm is None
                    else "/dev/kvm is present"
                    if f.dev_kvm
                    else "/dev/kvm is absent"
                )
                + "; such a module has no `nested` parameter to check",
            )
        )
    if expected is None or f.virt_flag is None:
        return out
    mod = f.module
    log = f.kernel_log
    if mod is None and log is not None and log.firmware_lines:
        # Older kernels keep vmx in /proc/cpuinfo and only refuse to load kvm_intel.
        out.append(
            error(
                "host.cpu.virt-disabled-in-firmware",
                f"{expected} is not loaded and the kernel log ({log.source}) says "
                f"{log.firmware_lines[-1]!r}: {_FLAG_NAME.get(f.vendor or '', 'vmx/svm')} is "
                "switched off in the firmware",
                f"enable {_FIRMWARE_NAME.get(f.vendor or '', 'hardware virtualization')} in the "
                "BIOS/UEFI setup, then power-cycle the machine",
            )
        )
    elif mod is None:
        out.append(
            error(
                "host.kvm.module-not-loaded",
                f"{expected} is not loaded, although the CPU shows {f.virt_flag}",
                f"modprobe {expected}  (if it fails, check the kernel log for 'disabled by BIOS')",
            )
        )
    elif mod.builtin is None:
        out.append(
            unknown(
                "host.kvm.builtin-unknown",
                f"whether {expected} is built into the kernel cannot be told "
                f"({mod.builtin_evidence}), so whether modprobe.d applies to it is unknown",
                f"run nestctl on the host itself (lsmod | grep {expected}; "
                "grep kvm /lib/modules/$(uname -r)/modules.builtin)",
            )
        )
    elif mod.builtin:
        out.append(
            info(
                "host.kvm.builtin",
                f"{expected} is built into the kernel: modprobe.d does not apply to it and it "
                "cannot be reloaded; only the kernel command line sets its parameters",
            )
        )
    if f.dev_kvm is None and mod is not None:
        out.append(
            unknown(
                "host.kvm.dev-kvm-unknown",
                "whether /dev/kvm exists could not be checked (no permission to look in /dev)",
                "run nestctl as root",
            )
        )
    if f.dev_kvm is False and mod is not None:
        out.append(
            error(
                "host.kvm.no-dev-kvm",
                f"{expected} is loaded but /dev/kvm does not exist",
                "check the kernel log for KVM errors, and udev (ls -l /dev/kvm; udevadm trigger)",
            )
        )
    return out


def _enable_fix(f: HostFacts) -> str:
    """How to turn nested on for good: our command, or the kernel command line where it rules."""
    module = f.expected_module or "kvm_intel"
    value = "1" if module == "kvm_amd" else "Y"
    where = (
        "(/etc/kernel/cmdline, then proxmox-boot-tool refresh; or GRUB_CMDLINE_LINUX in "
        "/etc/default/grub, then update-grub), then reboot"
    )
    if f.nested_after_reboot.decided_by == "kernel command line":
        return f"set {module}.nested={value} on the kernel command line {where}"
    if f.expected_builtin:
        return (
            f"{module} is built in: add {module}.nested={value} to the kernel command line {where}"
        )
    return "nestctl host enable"


def _nested_live(f: HostFacts) -> list[Finding]:
    mod = f.module
    if mod is None or f.virt_flag is None:
        return []
    after = f.nested_after_reboot
    status = f.nested_live_status
    if status == "missing":
        return [
            unknown(
                "host.nested.no-parameter",
                f"/sys/module/{mod.name}/parameters/nested does not exist, so the live value is "
                "unknown",
            )
        ]
    if status in ("unreadable", "garbage"):
        what = (
            "cannot be read"
            if status == "unreadable"
            else f"holds {f.nested_live_raw!r}, which is not Y/N/1/0"
        )
        return [
            unknown(
                "host.nested.unreadable",
                f"/sys/module/{mod.name}/parameters/nested {what}",
                "run as root on the host itself" if status == "unreadable" else None,
            )
        ]
    if f.nested_live is False:
        if after.value is True:
            message = (
                f"nested is off in the running {mod.name}, but set to on for the next load "
                f"({after.decided_by}): it takes effect after a module reload or a reboot"
            )
            fix = (
                f"reboot ({mod.name} is built in and cannot be reloaded)"
                if mod.builtin
                else "nestctl host enable  (reloads the module when no VM runs; otherwise reboot)"
            )
        else:
            message = f"nested virtualization is off in {mod.name} (live value {f.nested_live_raw})"
            fix = _enable_fix(f)
        return [error("host.nested.off", message, fix)]
    return []


def _nested_after_reboot(f: HostFacts) -> list[Finding]:
    expected = f.expected_module
    if expected is None or f.virt_flag is None:
        return []
    after = f.nested_after_reboot
    out: list[Finding] = []
    if after.invalid:
        out.append(
            error(
                "host.nested.invalid-value",
                f"{after.decided_by} gives {expected} nested={after.raw!r}, a value the kernel "
                f"rejects: {expected} would fail to load",
                "nestctl host enable  (or fix the value: "
                + ("nested=1" if expected == "kvm_amd" else "nested=Y")
                + ")",
            )
        )
    elif after.value is None:
        why = (
            f"whether {expected} is built in is unknown, and modprobe.d applies only if it is not"
            if f.expected_builtin is None
            else "the kernel version cannot be read (/proc/sys/kernel/osrelease), so the "
            "built-in default of `nested` is unknown"
        )
        out.append(unknown("host.nested.after-reboot-unknown", why))
    elif after.value is False and f.nested_live is not False:
        out.append(
            error(
                "host.nested.off-after-reboot",
                f"nested will be off after the next reboot: {after.decided_by} turns it off",
                _enable_fix(f),
            )
        )
    if after.decided_by == "kernel command line":
        words = [p.word for p in f.cmdline if p.module == expected and p.param == "nested"]
        out.append(
            info(
                "host.nested.cmdline",
                f"the kernel command line sets {words[-1] if words else 'nested'}, which wins over "
                "every modprobe.d file",
                "edit /etc/kernel/cmdline (systemd-boot: proxmox-boot-tool refresh) or "
                "GRUB_CMDLINE_LINUX in /etc/default/grub (update-grub) to change it",
            )
        )
    values = {s.value for s in after.settings if s.directive is not None}
    if len(values) > 1:
        places = ", ".join(f"{s.where} nested={s.value}" for s in after.settings)
        out.append(
            warning(
                "host.modprobe.conflict",
                f"several modprobe.d lines set {expected} nested, with different values: {places}; "
                f"the last one ({after.settings[-1].where}) wins",
                "nestctl host enable  (or disable): one managed file, the others commented out",
            )
        )
    return out


def _modprobe(f: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    expected = f.expected_module
    if f.modprobe_config.unreadable:
        out.append(
            unknown(
                "host.modprobe.unreadable",
                "modprobe.d files cannot be read: "
                + ", ".join(f.modprobe_config.unreadable)
                + "; `nested` after reboot may be wrong",
                "run as root",
            )
        )
    if not f.cmdline_readable and f.cpuinfo is not None:
        out.append(
            unknown(
                "host.cmdline.unreadable",
                "/proc/cmdline cannot be read; a kernel command-line override cannot be ruled out",
            )
        )
    for d in f.module_directives:
        if not d.valid:
            out.append(
                warning(
                    "host.modprobe.bad-line",
                    f"{d.where}: modprobe ignores this malformed {d.keyword!r} line for {expected}",
                )
            )
        elif d.keyword == "blacklist":
            out.append(
                warning(
                    "host.modprobe.blacklist",
                    f"{d.where} blacklists {expected}: it is not loaded automatically at boot",
                    f"remove or comment out the line in {d.path}",
                )
            )
        elif d.keyword in ("install", "remove"):
            out.append(
                warning(
                    f"host.modprobe.{d.keyword}",
                    f"{d.where}: `{d.keyword} {expected}` runs "
                    f"{' '.join(d.args)!r} instead of the plain module "
                    + ("load" if d.keyword == "install" else "removal")
                    + "; the options may not apply as computed",
                )
            )
        elif d.keyword == "softdep":
            out.append(info("host.modprobe.softdep", f"{d.where}: softdep {' '.join(d.args)}"))
    return out


def _performance(f: HostFacts) -> list[Finding]:
    mod = f.module
    if mod is None:
        return []
    out: list[Finding] = []
    for param in PERFORMANCE_PARAMS.get(mod.name, ()):
        if f.performance.get(param) is False:
            # Without EPT/NPT every guest page-table change traps: the big one. The others cost
            # less (APIC virtualization, shadow VMCS for L2 exits) and are off by default on
            # many CPUs (AMD avic), so they are only worth an info.
            make = warning if param in ("ept", "npt") else info
            out.append(
                make(
                    f"host.perf.{param}-off",
                    f"{mod.name} {param} is off: nested guests run slower",
                    f"remove {param}=0 (or N) from modprobe.d and the kernel command line, then "
                    "reload the module or reboot",
                )
            )
    return out


def _vms(f: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    if f.running.vms:
        ids = ", ".join(str(v) for v in f.running.vms)
        out.append(
            info(
                "host.vms.running",
                f"running VMs hold KVM (a module reload must wait for them): {ids}",
            )
        )
    if f.running.others:
        procs = ", ".join(f"{p.pid} ({p.argv0}, {p.why})" for p in f.running.others)
        out.append(info("host.vms.other-qemu", f"other QEMU processes hold KVM: {procs}"))
    if not f.running.complete:
        why = [f"VM {vmid}: {reason}" for vmid, reason in f.running.unknown.items()]
        why += list(f.running.problems)
        # A warning, not "could not check": which VMs run matters for a reload, not for whether
        # nesting is ready, so a normal user's `nestctl host` keeps its verdict.
        out.append(
            warning(
                "host.vms.unknown",
                "whether some Proxmox VMs run could not be checked: " + "; ".join(why),
                PIDFILE_FIX,
            )
        )
    return out


RULES: tuple[Callable[[HostFacts], list[Finding]], ...] = (
    _cpu,
    _virtualized,
    _kvm,
    _nested_live,
    _nested_after_reboot,
    _modprobe,
    _performance,
    _vms,
)


def host_findings(facts: HostFacts) -> list[Finding]:
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(facts))
    return findings
