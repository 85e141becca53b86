"""Guest findings: a kvm-ok-style verdict, with the fix on the layer that must change.

Layers, outermost first: the host's KVM module (`nestctl host enable` on the Proxmox node), the VM's
CPU type (`qm set <vmid> --cpu host`), the VM's cold restart (`qm reboot <vmid>` from the host: a
reboot inside the guest keeps the old CPU), and the guest itself (its kvm module, its groups, its
Windows features). Windows verdicts combine the host side with outcomes inside the guest, because
inside a VM Windows' own "can I run Hyper-V" answers say nothing (windows-guest.md).
"""

from __future__ import annotations

from nestctl.findings import Finding, error, info, unknown, warning
from nestctl.guest.facts import (
    Accel,
    Blocker,
    GuestFacts,
    HostSide,
    LinuxFacts,
    ProductVerdict,
    Status,
    WindowsFacts,
)
from nestctl.guest.linux import QEMU_FAMILY
from nestctl.guest.windows import is_virtualization_error
from nestctl.host.virt import dmi_hypervisor

_NO_VMID = "the VM id cannot be seen from inside the guest: `qm list` on the host shows it"


def _vmid(hs: HostSide | None) -> str:
    return str(hs.vmid) if hs is not None and hs.vmid is not None else "<vmid>"


def fix_host_module(hs: HostSide | None) -> str:
    return f"on the Proxmox host: nestctl host enable, then qm reboot {_vmid(hs)}"


def fix_vm_cpu(hs: HostSide | None) -> str:
    vmid = _vmid(hs)
    text = f"on the Proxmox host: qm set {vmid} --cpu host, then qm reboot {vmid}"
    return text if hs is not None and hs.vmid is not None else f"{text} ({_NO_VMID})"


def fix_cold_restart(hs: HostSide | None) -> str:
    vmid = _vmid(hs)
    return f"on the Proxmox host: qm reboot {vmid} (a reboot inside the guest keeps the old CPU)"


def effective_level(level: int | None, hs: HostSide | None) -> int | None:
    """The host side knows whether the node itself is a guest; the inside does not."""
    if hs is not None and hs.parent_level is not None:
        return hs.parent_level + 1
    return level


def _host_side_blocks(hs: HostSide | None) -> Finding | None:
    """The outer layer that keeps vmx/svm from this VM, when the host side knows it."""
    if hs is None:
        return None
    if hs.host_nested is False:
        return error(
            "guest.host.nested-off",
            "the host's KVM module runs with nested=0, so no VM on it gets vmx/svm",
            fix_host_module(hs),
        )
    if hs.exposes_virt is False:
        cpu = hs.running_cpu or "its CPU type"
        return error(
            "guest.vm.cpu-no-virt",
            f"the VM runs with -cpu {cpu}, which gives the guest no vmx/svm",
            fix_vm_cpu(hs),
        )
    if hs.restart_pending:
        return error(
            "guest.vm.restart-pending",
            "the VM's configured CPU differs from the one it runs with: a cold restart applies it",
            fix_cold_restart(hs),
        )
    return None


# -- Linux -----------------------------------------------------------------------------------


def _no_flag(lf: LinuxFacts, hs: HostSide | None) -> Finding:
    blocker = _host_side_blocks(hs)
    if blocker is not None:
        return blocker
    msg = "no vmx/svm flag in /proc/cpuinfo: this VM's CPU does not expose hardware virtualization"
    if lf.accel == "tcg":
        msg += " (under TCG, QEMU emulates svm for AMD models but never vmx)"
    if hs is not None and hs.exposes_virt:
        return error("guest.cpu.no-virt-flag", msg, fix_cold_restart(hs))
    fix = "\n".join(
        (
            "check each layer on the Proxmox host, outermost first:",
            "1. host module: nestctl host enable",
            f"2. VM CPU type: qm set {_vmid(hs)} --cpu host"
            + ("" if hs is not None and hs.vmid is not None else f" ({_NO_VMID})"),
            f"3. VM cold restart: qm reboot {_vmid(hs)} (a reboot inside the guest is not enough)",
        )
    )
    return error("guest.cpu.no-virt-flag", msg, fix)


def _vendor_mismatch(lf: LinuxFacts, hs: HostSide | None) -> Finding | None:
    cpu = lf.cpu
    if cpu is None or cpu.virt_flag is None or cpu.vendor == "other":
        return None
    wrong = (cpu.virt_flag == "svm" and cpu.vendor == "intel") or (
        cpu.virt_flag == "vmx" and cpu.vendor == "amd"
    )
    if not wrong:
        return None
    return error(
        "guest.cpu.vendor-mismatch",
        f"the CPU shows {cpu.virt_flag} but its vendor is {cpu.vendor_id}: kvm_"
        f"{'amd' if cpu.virt_flag == 'svm' else 'intel'} refuses to load on that vendor, so "
        "/dev/kvm can never appear",
        fix_vm_cpu(hs),
    )


def _no_device(lf: LinuxFacts, hs: HostSide | None) -> Finding:
    assert lf.cpu is not None
    module = "kvm_amd" if lf.cpu.virt_flag == "svm" else "kvm_intel"
    if lf.kvm_module is None:
        msg = f"{lf.cpu.virt_flag} is visible but {module} is not loaded, so there is no /dev/kvm"
        if lf.kvm_core_loaded:
            msg += f" (kvm is loaded without {module}: it may have been refused, see dmesg)"
        fix = (
            f"in this guest: modprobe {module}; if it fails (dmesg: 'no hardware support' or "
            f"'not supported'), this CPU model lacks what KVM needs: {fix_vm_cpu(hs)}"
        )
        return error("guest.kvm.module-not-loaded", msg, fix)
    return error(
        "guest.kvm.no-device",
        f"{lf.kvm_module} is loaded but /dev/kvm is missing (no devtmpfs or udev node)",
        "in this guest: mknod -m 0660 /dev/kvm c 10 232 && chgrp kvm /dev/kvm, or fix udev",
    )


def _access(lf: LinuxFacts) -> Finding:
    acc = lf.access
    if acc.usable is None:
        return unknown(
            "guest.kvm.access-unknown", f"/dev/kvm exists; whether it opens: {acc.reason}"
        )
    if not acc.usable:
        user = acc.user or "$USER"
        group = acc.group or "kvm"
        return error(
            "guest.kvm.no-permission",
            f"/dev/kvm exists but this user may not open it read-write: {acc.reason}",
            f"in this guest: sudo usermod -aG {group} {user}, then log out and in again",
        )
    return info("guest.kvm.usable", f"KVM acceleration can be used ({acc.reason})")


def _accel(lf: LinuxFacts, hs: HostSide | None) -> Finding | None:
    if lf.accel == "tcg":
        return warning(
            "guest.accel.tcg",
            "this guest runs under TCG software emulation, not KVM: it and its own VMs are slow",
            f"on the Proxmox host: qm set {_vmid(hs)} --kvm 1, then qm reboot {_vmid(hs)}",
        )
    if lf.accel == "other":
        return info("guest.accel.other", f"this guest runs under {lf.platform or 'a hypervisor'}")
    if lf.accel == "unknown":
        return info("guest.accel.unknown", "could not tell whether this guest runs under KVM")
    return None


def _level(level: int | None) -> Finding | None:
    if level is not None and level >= 2:
        return warning(
            "guest.level.deep",
            f"this guest is already a level-{level} guest: VMs it starts are level {level + 1}; "
            "more than two levels of nesting is slow and fragile",
        )
    return None


def _module_nested(lf: LinuxFacts) -> Finding | None:
    if lf.kvm_module is None or lf.module_nested is not False:
        return None
    return info(
        "guest.kvm.nested-off",
        f"this guest's {lf.kvm_module} has nested=0: VMs it runs cannot host VMs in turn",
        f"in this guest, with no VMs running: echo 'options {lf.kvm_module} nested=1' "
        f"> /etc/modprobe.d/kvm-nested.conf && modprobe -r {lf.kvm_module} && "
        f"modprobe {lf.kvm_module}",
    )


def _lab(lf: LinuxFacts) -> list[Finding]:
    lab = lf.lab
    out: list[Finding] = []
    if lab.qemu_binaries is not None and not lab.qemu_binaries:
        out.append(
            warning(
                "guest.lab.no-qemu",
                "no qemu-system-* binary: this guest cannot start VMs yet",
                "in this guest: apt install qemu-system-x86 (or your distribution's QEMU package)",
            )
        )
    if lab.libvirtd_installed is None:
        pass  # reported once, with the reason, by the unchecked finding
    elif not lab.libvirtd_installed:
        out.append(info("guest.lab.no-libvirt", "libvirt is not installed (optional)"))
    elif lab.libvirtd_state is None:
        out.append(info("guest.lab.libvirtd-unchecked", f"libvirtd: {lab.libvirtd_detail}"))
    elif lab.libvirtd_state != "active":
        out.append(
            warning(
                "guest.lab.libvirtd-inactive",
                f"libvirtd is installed but {lab.libvirtd_state}",
                "in this guest: systemctl enable --now libvirtd",
            )
        )
    return out


def linux_findings(lf: LinuxFacts, hs: HostSide | None = None) -> list[Finding]:
    out: list[Finding] = []
    if lf.cpu is None:
        out.append(
            unknown(
                "guest.cpuinfo.unreadable",
                f"cannot read the CPU flags: {lf.cpuinfo_problem}",
                "run nestctl guest where /proc is mounted",
            )
        )
    elif lf.cpu.virt_flag is None and lf.dev_kvm is not True:
        out.append(_no_flag(lf, hs))  # the flag's absence is checked; it explains either way
    elif (mismatch := _vendor_mismatch(lf, hs)) is not None and lf.dev_kvm is not True:
        out.append(mismatch)
    elif lf.dev_kvm is False and (lf.kvm_module_known or lf.kvm_module is not None):
        out.append(_no_device(lf, hs))
    if lf.dev_kvm:
        out.append(_access(lf))
    extra = (_accel(lf, hs), _level(effective_level(lf.level, hs)), _module_nested(lf))
    out.extend(f for f in extra if f is not None)
    out.extend(_lab(lf))
    if lf.unchecked:
        out.append(unchecked_finding(lf.unchecked, lf.blocker))
    return out


def unchecked_finding(what: tuple[str, ...], blocker: Blocker | None) -> Finding:
    """ONE finding for every fact left unknown, naming what would let nestctl check them."""
    why = f": {blocker.reason}" if blocker is not None else ""
    return unknown(
        "guest.check.incomplete",
        f"could not check {', '.join(what)}{why}",
        blocker.fix if blocker is not None else None,
    )


# -- Windows ---------------------------------------------------------------------------------

_ENABLED = "Enabled"
_PENDING = ("EnablePending", "DisablePending")


def _feature(wf: WindowsFacts, *names: str) -> str | None:
    """The state of the first named feature Windows reported; "Absent" when none was listed."""
    if wf.features is None:
        return None
    for name in names:
        if name in wf.features:
            return wf.features[name]
    return "Absent"


def _host_note(hs: HostSide | None) -> tuple[str, tuple[str, ...]]:
    """What the host side says about virtualization for this VM, and whether it was used."""
    if hs is None or hs.exposes_virt is None:
        return "whether this VM exposes vmx/svm cannot be told from inside Windows", ()
    cpu = f"-cpu {hs.running_cpu}" if hs.running_cpu else "its -cpu"
    exposed = "exposes" if hs.exposes_virt else "does not expose"
    return f"the VM runs with {cpu}, which {exposed} vmx/svm", ("host side",)


def _hypervisor_off(wf: WindowsFacts) -> str | None:
    if wf.launchtype is not None and wf.launchtype.lower() == "off":
        return "bcdedit hypervisorlaunchtype is Off: the hypervisor does not start at boot"
    if wf.hypervisor_events and wf.hypervisor_events[0] == 5:
        return (
            "the hypervisor logged event ID 5 last (launch aborted: auto-launch is disabled; "
            "the event may predate this boot)"
        )
    return None


def _feature_gate(
    wf: WindowsFacts,
    state: str | None,
    name: str,
    feature: str,
    *,
    note: str,
    host: tuple[str, ...],
) -> ProductVerdict | None:
    """The verdict when an optional feature (or the hypervisor's launch) stops a product, or None
    when the feature is enabled and the hypervisor is not switched off."""
    if state is None:
        return ProductVerdict("unknown", f"features unreadable: {wf.features_problem}", host)
    if state in _PENDING:
        return ProductVerdict(
            "not-ready", f"{name} is {state}: restart Windows", ("guest outcome",)
        )
    if state != _ENABLED:
        return ProductVerdict(
            "not-enabled", f"{feature} is {state}; {note}", (*host, "guest outcome")
        )
    off = _hypervisor_off(wf)
    if off is not None:
        return ProductVerdict("not-ready", f"{name} is enabled but {off}", ("guest outcome",))
    return None


def hyperv_verdict(wf: WindowsFacts, hs: HostSide | None) -> ProductVerdict:
    note, host = _host_note(hs)
    if _host_side_blocks(hs) is not None:
        return ProductVerdict("not-ready", note, ("host side",))
    state = _feature(
        wf, "Microsoft-Hyper-V-Hypervisor", "Microsoft-Hyper-V-All", "Microsoft-Hyper-V"
    )
    gate = _feature_gate(wf, state, "Hyper-V", "Hyper-V feature", note=note, host=host)
    if gate is not None:
        return gate
    if wf.running_vms:
        return ProductVerdict(
            "ready", f"Hyper-V VMs are running: {', '.join(wf.running_vms)}", ("guest outcome",)
        )
    vmms = (wf.services or {}).get("vmms")
    if vmms is not None and vmms != "Running":
        return ProductVerdict(
            "not-ready",
            f"Hyper-V is enabled but its vmms service is {vmms}: the hypervisor may not have "
            f"launched; {note}",
            (*host, "guest outcome"),
        )
    if hs is not None and hs.exposes_virt:
        return ProductVerdict(
            "ready",
            f"Hyper-V is enabled, its launch is not switched off, and {note}",
            (*host, "guest outcome"),
        )
    # vmms runs even when the hypervisor did not launch (Docker's "one of the Hyper-V components
    # is not running"), so it proves nothing here; only a running VM or the host side does.
    return ProductVerdict(
        "unknown", f"Hyper-V is enabled, no Hyper-V VM is running to prove it works; {note}", host
    )


def _wsl_failed(wf: WindowsFacts) -> str | None:
    """The first virtualization error WSL printed, with its name ("0x80370102 (HCS_E_...)")."""
    errors = [c for c in wf.wsl_errors if is_virtualization_error(c)]
    codes = [c for c in errors if c.startswith("0x")] or errors
    if not codes:
        return None
    names = [c for c in errors if not c.startswith("0x")]
    return codes[0] + (f" ({names[0]})" if names and names[0] != codes[0] else "")


def wsl2_verdict(wf: WindowsFacts, hs: HostSide | None) -> ProductVerdict:
    note, host = _host_note(hs)
    if _host_side_blocks(hs) is not None:
        return ProductVerdict("not-ready", note, ("host side",))
    failed = _wsl_failed(wf)
    if failed is not None:
        return ProductVerdict(
            "not-ready",
            f"WSL2 failed with {failed}: Virtual Machine Platform is off or no virtualization "
            f"reaches this VM; {note}",
            (*host, "guest outcome"),
        )
    if any(state == "Running" and version == 2 for _n, state, version in wf.wsl_distros):
        return ProductVerdict("ready", "a WSL2 distribution is running", ("guest outcome",))
    vmp = _feature(wf, "VirtualMachinePlatform")
    vmp_name = "Virtual Machine Platform"
    gate = _feature_gate(wf, vmp, vmp_name, vmp_name, note=note, host=host)
    if gate is not None:
        return gate
    if hs is not None and hs.exposes_virt:
        return ProductVerdict(
            "ready", f"Virtual Machine Platform is enabled and {note}", (*host, "guest outcome")
        )
    return ProductVerdict(
        "unknown",
        f"Virtual Machine Platform is enabled, WSL2 not seen running ('nestctl guest --try-wsl' "
        f"starts it once); {note}",
        host,
    )


def docker_verdict(hyperv: ProductVerdict, wsl2: ProductVerdict) -> ProductVerdict:
    """Docker Desktop runs on WSL2 (default) or Hyper-V; Docker supports only ESXi/Azure VMs."""
    scope = "Docker supports Desktop in VMs only on VMware ESXi and Azure: unsupported here"
    statuses = (wsl2.status, hyperv.status)
    status: Status
    if "ready" in statuses:
        status = "ready"
    elif "unknown" in statuses:
        status = "unknown"
    elif statuses == ("not-enabled", "not-enabled"):
        status = "not-enabled"
    else:
        status = "not-ready"
    reason = f"WSL2 backend: {wsl2.status}; Hyper-V backend: {hyperv.status}; {scope}"
    return ProductVerdict(status, reason, ("WSL2 verdict", "Hyper-V verdict"))


def windows_verdicts(wf: WindowsFacts, hs: HostSide | None) -> dict[str, ProductVerdict]:
    hv = hyperv_verdict(wf, hs)
    wsl = wsl2_verdict(wf, hs)
    return {"hyperv": hv, "wsl2": wsl, "docker_desktop": docker_verdict(hv, wsl)}


_ENABLE = {
    "hyperv": "in Windows (admin PowerShell): Enable-WindowsOptionalFeature -Online -FeatureName "
    "Microsoft-Hyper-V-All, then restart Windows",
    "wsl2": "in Windows (admin): wsl.exe --install --no-distribution (enables Virtual Machine "
    "Platform), then restart Windows",
}
_NAMES = {"hyperv": "Hyper-V", "wsl2": "WSL2", "docker_desktop": "Docker Desktop"}


def _product_fix(key: str, v: ProductVerdict, hs: HostSide | None) -> str | None:
    if "hypervisorlaunchtype is Off" in v.reason or "auto-launch" in v.reason:
        return "in Windows (admin): bcdedit /set hypervisorlaunchtype Auto, then restart Windows"
    if "restart Windows" in v.reason:
        return "restart Windows"
    if v.status == "not-enabled":
        return _ENABLE.get(key)
    if v.status == "not-ready" and "host side" not in v.rests_on:
        return f"if the VM's CPU type is not host: {fix_vm_cpu(hs)}"
    return None


def windows_findings(wf: WindowsFacts, hs: HostSide | None = None) -> list[Finding]:
    out: list[Finding] = []
    blocker = _host_side_blocks(hs)
    if blocker is not None:
        out.append(blocker)
    verdicts = windows_verdicts(wf, hs)
    any_ready = any(v.status == "ready" for k, v in verdicts.items() if k != "docker_desktop")
    for key in ("hyperv", "wsl2"):
        v = verdicts[key]
        code = f"guest.windows.{key}.{v.status}"
        msg = f"{_NAMES[key]}: {v.reason} (rests on: {', '.join(v.rests_on) or 'nothing'})"
        if v.status == "ready":
            out.append(info(code, msg))
        elif v.status == "unknown":
            out.append(info(code, msg) if any_ready else unknown(code, msg))
        elif v.status == "not-enabled" and any_ready:
            out.append(info(code, msg, _product_fix(key, v, hs)))
        elif blocker is None:
            out.append(error(code, msg, _product_fix(key, v, hs)))
    docker = verdicts["docker_desktop"]
    out.append(info(f"guest.windows.docker_desktop.{docker.status}", docker.reason))
    deep = _level(windows_level(wf, hs))
    if deep is not None:
        out.append(deep)
    if wf.is_admin is False and (wf.features is None or wf.launchtype is None):
        out.append(
            unknown(
                "guest.windows.not-admin",
                "features and bcdedit need an elevated prompt",
                "run nestctl guest from an Administrator prompt (the guest agent runs as SYSTEM)",
            )
        )
    if (hs is None or hs.exposes_virt is None) and blocker is None:
        out.append(
            info(
                "guest.windows.host-side-unknown",
                "inside a VM, HypervisorPresent, systeminfo and Get-ComputerInfo cannot tell "
                "whether nesting works; the host side can",
                "on the Proxmox host: nestctl vm <vmid> --guest",
            )
        )
    return out


def windows_platform(wf: WindowsFacts) -> str | None:
    """The virtual platform Win32_ComputerSystem's Manufacturer/Model name (SMBIOS, like DMI)."""
    return dmi_hypervisor(str(wf.hints.get("Manufacturer") or ""), str(wf.hints.get("Model") or ""))


def windows_accel(wf: WindowsFacts, hs: HostSide | None) -> Accel:
    if hs is not None and hs.accel is not None:
        return hs.accel
    platform = windows_platform(wf)
    if platform is not None and platform not in QEMU_FAMILY:
        return "other"
    if platform is None and wf.hints.get("HypervisorPresent") is False:
        return "none"
    return "unknown"  # under QEMU, KVM and TCG look alike from inside Windows


def windows_level(wf: WindowsFacts, hs: HostSide | None) -> int | None:
    """1 when the firmware names a virtual platform (HypervisorPresent is also true on metal
    with Hyper-V on); the host side knows better."""
    return effective_level(1 if windows_platform(wf) is not None else None, hs)


def guest_findings(
    facts: GuestFacts, host_side: HostSide | None = None, *, blocker: object = None
) -> list[Finding]:
    """The findings for a guest. `blocker` (a `Blocker` from the machine, if any) explains
    commands that could not run in a Windows guest, where every probe is a command."""
    if facts.windows is not None:
        out = windows_findings(facts.windows, host_side)
        if isinstance(blocker, Blocker):
            out.append(unchecked_finding(("Windows features, services and WSL",), blocker))
        return out
    if facts.linux is not None:
        return linux_findings(facts.linux, host_side)
    if facts.os == "unknown":
        return [
            unknown(
                "guest.os.unknown",
                "could not tell which OS the guest runs: guest-get-osinfo failed and "
                "/proc/sys/kernel/ostype is not readable, so nothing was probed",
                "in the guest: update qemu-guest-agent (guest-get-osinfo needs qemu-ga 2.10 or "
                "later) and make sure guest-get-osinfo is not in its block-rpcs",
            )
        ]
    return [unknown("guest.no-facts", "no facts were gathered from this guest")]
