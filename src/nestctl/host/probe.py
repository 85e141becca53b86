"""Gather the host's facts through `Host`: pure reads, no judgement (that is `rules`).

`probe_host` is the public entry point (used by `nestctl host`, `nestctl doctor` and the VM layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from nestctl.host import kernel, kvm, modprobe, virt, vms
from nestctl.host.cpuinfo import CpuInfo, parse_cpuinfo
from nestctl.host.kcmdline import CmdlineParam, parse_kernel_cmdline
from nestctl.host.klog import KernelLog, read_kernel_log
from nestctl.host.values import kernel_param_bool

if TYPE_CHECKING:
    from nestctl.machine import FileRead, Host


class NestedAfterReboot(NamedTuple):
    """`nested` at the next load of the module, and what decides it."""

    value: bool | None
    decided_by: (
        str | None
    )  # "/etc/modprobe.d/x.conf:3", "kernel command line", "kernel default ..."
    raw: str | None = None  # the winning raw value, when a file or the command line sets it
    invalid: bool = False  # the winning value is one the kernel rejects (module would not load)
    settings: tuple[modprobe.Setting, ...] = ()  # every setting, in the order applied


class HostFacts(NamedTuple):  # not a dataclass: start-up pays for building each one
    root: str
    live: bool
    cpuinfo: CpuInfo | None  # None: /proc/cpuinfo missing or unreadable
    cpuinfo_error: str | None
    vendor: str | None  # "intel", "amd", "other" (contract spelling); None: cpuinfo unreadable
    virt_flag: str | None  # "vmx", "svm" or None
    virtualization: virt.Virtualization
    kernel_release: str | None
    kernel_version: tuple[int, int] | None
    kvm_modules: tuple[kvm.KvmModule, ...]  # every kvm_* vendor module sysfs shows
    kvm_module: str | None  # the module providing KVM ("kvm_intel", "kvm_amd", "kvm_pvm", ...)
    expected_module: str | None  # kvm_intel / kvm_amd for this CPU vendor
    expected_builtin: bool | None  # compiled into the kernel; None: the evidence disagrees
    dev_kvm: bool | None  # None: could not check (not permitted to look in /dev)
    nested_live: bool | None
    nested_live_raw: str | None
    nested_live_status: str  # "ok", "missing", "unreadable", "garbage", "no-module"
    nested_after_reboot: NestedAfterReboot
    modprobe_config: modprobe.ModprobeConfig
    module_directives: tuple[modprobe.Directive, ...]  # lines naming the expected module
    cmdline: tuple[CmdlineParam, ...]
    cmdline_readable: bool
    running: vms.RunningVms
    kernel_log: KernelLog | None  # read only when it can explain something (no vmx/svm, no module)
    performance: dict[str, bool | None]
    modules_readable: bool = True  # /sys/module could be listed (else kvm_modules is unknown)

    # Convenience names other layers use.
    @property
    def virtualized(self) -> bool | None:
        return self.virtualization.virtualized

    @property
    def hypervisor(self) -> str | None:
        return self.virtualization.hypervisor

    @property
    def level(self) -> str | None:
        return self.virtualization.level

    @property
    def running_vms(self) -> dict[int, int]:
        return self.running.vms

    @property
    def module(self) -> kvm.KvmModule | None:
        """The sysfs view of the expected vendor module, if loaded (or built in)."""
        for m in self.kvm_modules:
            if m.name == self.expected_module:
                return m
        return None


def _after_reboot(
    module: str | None,
    config: modprobe.ModprobeConfig,
    cmdline: list[CmdlineParam],
    *,
    version: tuple[int, int] | None,
    builtin: bool | None,
    cpu_ready: bool,
) -> NestedAfterReboot:
    if module is None or not cpu_ready:
        return NestedAfterReboot(None, None)  # no vmx/svm: the module cannot load at all
    if builtin is None:
        # modprobe.d applies only to a loadable module: the answer holds only if both agree.
        loadable = _after_reboot(
            module, config, cmdline, version=version, builtin=False, cpu_ready=cpu_ready
        )
        compiled = _after_reboot(
            module, config, cmdline, version=version, builtin=True, cpu_ready=cpu_ready
        )
        return loadable if loadable.value is compiled.value else NestedAfterReboot(None, None)
    if builtin:  # modprobe.d does not apply to a module compiled into the kernel
        config = modprobe.ModprobeConfig((), ())
    res = modprobe.resolve_param(config, cmdline, module, "nested")
    if res.decided_by is not None:
        value = kernel_param_bool(res.raw, int_typed=module in kvm.INT_TYPED_NESTED)
        return NestedAfterReboot(value, res.decided_by, res.raw, value is None, res.settings)
    default = kernel.nested_default(module, version)
    if module == "kvm_amd":
        where = "kernel default (kvm_amd: on)"
    elif default is None:
        where = "kernel default (kernel version unknown)"
    else:
        where = "kernel default (Linux >= 4.20)" if default else "kernel default (Linux < 4.20)"
    return NestedAfterReboot(default, where)


def _provably_unused(module: kvm.KvmModule | None) -> bool:
    """No process holds KVM: the loadable vendor module has refcount 0 and no dependants."""
    return (
        module is not None
        and module.builtin is False
        and module.refcount == 0
        and not module.holders
    )


def _stripped(read: FileRead) -> str | None:
    text = read.text.strip() if read.ok and read.text else None
    return text or None


def _virtualization(
    host: Host, cpuinfo: CpuInfo | None, log: KernelLog | None
) -> virt.Virtualization:
    hv_read = host.read("/sys/hypervisor/type")
    vendor_read = host.read("/sys/class/dmi/id/sys_vendor")
    product_read = host.read("/sys/class/dmi/id/product_name")
    hypervisor_flag = bool(cpuinfo and cpuinfo.hypervisor)
    hv_type, sys_vendor, product = map(_stripped, (hv_read, vendor_read, product_read))
    clocks = None
    if hypervisor_flag and not (sys_vendor or product or hv_type):
        clocks = host.read_text(
            "/sys/devices/system/clocksource/clocksource0/available_clocksource"
        )
    return virt.classify(
        virt.VirtEvidence(
            hypervisor_flag,
            hv_type,
            sys_vendor,
            product,
            log.hypervisor if log else None,
            clocks,
            cpu_known=cpuinfo is not None,
            # DMI read or absent (ARM boards, microVMs): either way a checked answer.
            dmi_known=all(r.status.known for r in (hv_read, vendor_read, product_read)),
        )
    )


def probe_host(host: Host) -> HostFacts:
    cpu_read = host.read("/proc/cpuinfo")
    cpuinfo = parse_cpuinfo(cpu_read.text) if cpu_read.ok and cpu_read.text is not None else None
    cpuinfo_error = None
    if cpuinfo is None:
        cpuinfo_error = cpu_read.error or cpu_read.status.value
    vendor = cpuinfo.vendor if cpuinfo else None  # unknown, never "other"
    virt_flag = cpuinfo.virt_flag if cpuinfo else None

    release_text = host.read_text("/proc/sys/kernel/osrelease")
    release = release_text.strip() if release_text and release_text.strip() else None
    version = kernel.parse_release(release)

    names = kvm.vendor_module_names(host)
    proc_modules = kvm.loaded_modules(host) if names else None
    modules = tuple(
        kvm.read_module(host, n, release=release, proc_modules=proc_modules) for n in names or ()
    )
    expected = kvm.VENDOR_MODULES.get(vendor) if vendor else None
    expected_loaded = next((m for m in modules if m.name == expected), None)
    expected_builtin: bool | None = False
    if expected_loaded is not None:
        kvm_module: str | None = expected_loaded.name
        expected_builtin = expected_loaded.builtin
    else:
        kvm_module = modules[0].name if modules else None
        # A built-in module with parameters always shows in /sys/module, loaded or failed: one
        # that is not there is not built in.
        if names is None:
            expected_builtin = None
    dev_kvm = host.exists("/dev/kvm").present

    if expected_loaded is None:
        live, live_raw, live_status = None, None, "no-module"
    elif expected_loaded.nested is None:
        live, live_raw, live_status = None, None, "missing"
    else:
        pv = expected_loaded.nested
        live, live_raw, live_status = pv.value, pv.raw, pv.status

    cmd_text = host.read_text("/proc/cmdline")
    cmdline = parse_kernel_cmdline(cmd_text) if cmd_text is not None else []
    config = modprobe.read_config(host)
    after = _after_reboot(
        expected,
        config,
        cmdline,
        version=version,
        builtin=expected_builtin,
        cpu_ready=virt_flag is not None,
    )
    directives = tuple(config.for_module(expected)) if expected else ()

    # The kernel log tells "disabled by BIOS" apart from "no such CPU feature", and explains a
    # module that will not load. In a VM without vmx/svm the answer is "not passed through"
    # whatever the log says, so there the (slow) dmesg run is skipped; log files are still read.
    hypervisor_flag = bool(cpuinfo and cpuinfo.hypervisor)
    no_flag = cpuinfo is not None and virt_flag is None
    no_module = virt_flag is not None and expected_loaded is None
    log = None
    if no_flag or no_module:
        log = read_kernel_log(host, run_dmesg=no_module or not hypervisor_flag)
    virtualization = _virtualization(host, cpuinfo, log)
    perf = {k: v.value for k, v in expected_loaded.performance.items()} if expected_loaded else {}

    return HostFacts(
        root=str(host.root),
        live=host.live,
        cpuinfo=cpuinfo,
        cpuinfo_error=cpuinfo_error,
        vendor=vendor,
        virt_flag=virt_flag,
        virtualization=virtualization,
        kernel_release=release,
        kernel_version=version,
        kvm_modules=modules,
        kvm_module=kvm_module,
        expected_module=expected,
        expected_builtin=expected_builtin,
        dev_kvm=dev_kvm,
        nested_live=live,
        nested_live_raw=live_raw,
        nested_live_status=live_status,
        nested_after_reboot=after,
        modprobe_config=config,
        module_directives=directives,
        cmdline=tuple(cmdline),
        cmdline_readable=cmd_text is not None,
        running=vms.running_vms(host, scan_processes=not _provably_unused(expected_loaded)),
        kernel_log=log,
        performance=perf,
        modules_readable=names is not None,
    )
