"""Fake host trees, one per real case (cloud-init test_ds_identify style: name -> files).

Each tree holds only what the probes read: /proc, /sys, /etc, /run, /var. Values are shaped like the
real files (sysfs values end in a newline; /proc/<pid>/cmdline is NUL-separated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import write_tree

Files = dict[str, str | bytes]

INTEL_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx "
    "fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts "
    "rep_good nopl xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx "
    "smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt aes "
    "xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb invpcid_single ssbd ibrs "
    "ibpb stibp tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 "
    "erms invpcid"
)
AMD_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse "
    "sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc "
    "cpuid extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma cx16 sse4_1 sse4_2 movbe "
    "popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a "
    "misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core perfctr_nb bpext npt "
    "lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold"
)


def cpuinfo(vendor_id: str, model: str, flags: str, cpus: int = 2) -> str:
    blocks = []
    for n in range(cpus):
        blocks.append(
            f"processor\t: {n}\nvendor_id\t: {vendor_id}\ncpu family\t: 6\nmodel\t\t: 85\n"
            f"model name\t: {model}\nstepping\t: 4\nflags\t\t: {flags}\n"
        )
    return "\n".join(blocks) + "\n"


def loadable_module(name: str, params: dict[str, str], refcnt: int = 0) -> Files:
    files: Files = {
        f"/sys/module/{name}/initstate": "live\n",
        f"/sys/module/{name}/refcnt": f"{refcnt}\n",
    }
    for key, value in params.items():
        files[f"/sys/module/{name}/parameters/{key}"] = value + "\n"
    return files


def proc_modules(*names: str) -> str:
    """/proc/modules listing `names` (size, refcount, users, state, address as the kernel shows)."""
    return "".join(f"{n} 380928 0 - Live 0x0000000000000000\n" for n in names)


PVE8_CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet\n"
PVE8_LIB_MODPROBE: Files = {
    # What a Proxmox VE 8 host ships under /lib/modprobe.d (trimmed to what matters here).
    "/lib/modprobe.d/aliases.conf": "alias net-pf-3 off\nalias net-pf-6 off\n",
    "/lib/modprobe.d/blacklist_pve-kernel-6.8.12-4-pve.conf": "blacklist nvidiafb\n",
    "/lib/modprobe.d/systemd.conf": "options bonding max_bonds=0\noptions dummy numdummies=0\n",
}


def intel_host(
    nested: str = "Y",
    *,
    release: str = "6.8.12-4-pve",
    cmdline: str = PVE8_CMDLINE,
    refcnt: int = 0,
    extra: Files | None = None,
) -> Files:
    files: Files = {
        "/proc/cpuinfo": cpuinfo(
            "GenuineIntel", "Intel(R) Xeon(R) Silver 4110 CPU @ 2.10GHz", INTEL_FLAGS
        ),
        "/proc/sys/kernel/osrelease": release + "\n",
        "/proc/cmdline": cmdline,
        "/dev/kvm": "",
        "/proc/modules": proc_modules("kvm_intel", "kvm", "irqbypass"),
        "/sys/module/kvm/initstate": "live\n",
        "/sys/module/kvm/refcnt": "1\n",
        "/sys/class/dmi/id/sys_vendor": "Supermicro\n",
        "/sys/class/dmi/id/product_name": "Super Server\n",
        **PVE8_LIB_MODPROBE,
        **loadable_module(
            "kvm_intel",
            {"nested": nested, "ept": "Y", "enable_shadow_vmcs": "Y", "enable_apicv": "Y"},
            refcnt,
        ),
    }
    files.update(extra or {})
    return files


def amd_host(nested: str = "1", *, extra: Files | None = None) -> Files:
    files: Files = {
        "/proc/cpuinfo": cpuinfo("AuthenticAMD", "AMD EPYC 7302P 16-Core Processor", AMD_FLAGS),
        "/proc/sys/kernel/osrelease": "6.8.12-4-pve\n",
        "/proc/cmdline": PVE8_CMDLINE,
        "/dev/kvm": "",
        "/proc/modules": proc_modules("kvm_amd", "kvm", "ccp"),
        "/sys/module/kvm/initstate": "live\n",
        "/sys/class/dmi/id/sys_vendor": "Supermicro\n",
        "/sys/class/dmi/id/product_name": "H12SSL-i\n",
        **PVE8_LIB_MODPROBE,
        **loadable_module("kvm_amd", {"nested": nested, "npt": "Y", "avic": "N"}),
    }
    files.update(extra or {})
    return files


def qemu_cmdline(vmid: int, binary: str = "/usr/bin/kvm") -> bytes:
    argv = [
        binary,
        "-id",
        str(vmid),
        "-name",
        f"vm{vmid},debug-threads=on",
        "-no-shutdown",
        "-chardev",
        f"socket,id=qmp,path=/var/run/qemu-server/{vmid}.qmp,server=on,wait=off",
        "-pidfile",
        f"/var/run/qemu-server/{vmid}.pid",
        "-daemonize",
        "-smp",
        "4,sockets=1",
        "-cpu",
        "host,+kvm_pv_eoi,+kvm_pv_unhalt",
        "-m",
        "4096",
        "-machine",
        "type=pc-q35-8.1+pve0",
    ]
    return ("\0".join(argv) + "\0").encode()


def firmware_disabled() -> Files:
    """Dell server, VT-x switched off in the BIOS: kernel >= 5.6 drops vmx and logs why."""
    flags = INTEL_FLAGS.replace(" vmx", "").replace(" tpr_shadow flexpriority ept vpid ept_ad", "")
    return {
        "/proc/cpuinfo": cpuinfo("GenuineIntel", "Intel(R) Xeon(R) E-2236 CPU @ 3.40GHz", flags),
        "/proc/sys/kernel/osrelease": "6.8.12-4-pve\n",
        "/proc/cmdline": PVE8_CMDLINE,
        "/sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
        "/sys/class/dmi/id/product_name": "PowerEdge R240\n",
        "/var/log/kern.log": (
            "Nov 24 08:00:01 pve kernel: [    0.000000] Linux version 6.8.12-4-pve\n"
            "Nov 24 08:00:01 pve kernel: [    0.052171] x86/cpu: VMX (outside TXT) disabled"
            " by BIOS\n"
            "Nov 24 08:00:05 pve kernel: [    4.120034] kvm_intel: VMX not supported by CPU 0\n"
        ),
        **PVE8_LIB_MODPROBE,
    }


def cloud_vm() -> Files:
    """An Amazon EC2 m5.large: a Nitro (KVM) guest that gets no VMX."""
    flags = INTEL_FLAGS.replace(" vmx", "").replace(" tpr_shadow flexpriority ept vpid ept_ad", "")
    return {
        "/proc/cpuinfo": cpuinfo(
            "GenuineIntel", "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", flags + " hypervisor"
        ),
        "/proc/sys/kernel/osrelease": "6.1.0-27-cloud-amd64\n",
        "/proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz-6.1.0-27-cloud-amd64 ro console=ttyS0\n",
        "/sys/class/dmi/id/sys_vendor": "Amazon EC2\n",
        "/sys/class/dmi/id/product_name": "m5.large\n",
    }


def pve_in_pve() -> Files:
    """A Proxmox VE L1 inside Proxmox VE (cpu: host), nesting passed through and on."""
    return intel_host(
        "Y",
        extra={
            "/proc/cpuinfo": cpuinfo(
                "GenuineIntel",
                "Intel(R) Xeon(R) Silver 4110 CPU @ 2.10GHz",
                INTEL_FLAGS + " hypervisor",
            ),
            "/sys/class/dmi/id/sys_vendor": "QEMU\n",
            "/sys/class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
        },
    )


def pvm_dev_vm() -> Files:
    """A microVM (no DMI) whose /dev/kvm comes from a built-in kvm_pvm; no vmx/svm at all."""
    flags = AMD_FLAGS.replace(" svm", "").replace(" npt", "") + " hypervisor"
    return {
        "/proc/cpuinfo": cpuinfo("AuthenticAMD", "AMD EPYC", flags),
        "/proc/sys/kernel/osrelease": "6.18.44-fc-v782\n",
        "/proc/cmdline": "console=ttyS0 quiet nomodule nested_pvm=1 -- --firecracker-init\n",
        "/dev/kvm": "",
        "/proc/modules": "",  # booted with `nomodule`: nothing loadable is loaded
        "/sys/module/kvm/parameters/halt_poll_ns": "200000\n",
        "/sys/module/kvm_pvm/parameters/verbose": "0\n",
        "/var/log/dmesg": (
            "[    0.000000] Hypervisor detected: KVM\n"
            "[    0.050990] Booting paravirtualized kernel on KVM\n"
        ),
        "/lib/modprobe.d/systemd.conf": "options bonding max_bonds=0\n",
    }


def running_vms() -> Files:
    """Intel host, nested off, VMs 100 and 101 running, a stale pid file, other QEMU processes."""
    other_kvm = "\0".join(["/usr/bin/qemu-system-x86_64", "-accel", "kvm", "-m", "512"]) + "\0"
    tcg = "\0".join(["/usr/bin/qemu-system-x86_64", "-accel", "tcg", "-m", "512"]) + "\0"
    fd_holder = "\0".join(["/opt/qemu/bin/qemu-system-x86_64", "-m", "256"]) + "\0"
    return intel_host(
        "N",
        refcnt=4,
        extra={
            "/etc/modprobe.d/kvm-intel.conf": "options kvm-intel nested=Y\n",
            "/var/run/qemu-server/100.pid": "4242\n",
            "/var/run/qemu-server/100.qmp": "",
            "/var/run/qemu-server/101.pid": "4343\n",
            "/var/run/qemu-server/102.pid": "9999\n",  # stale: no such process
            "/proc/4242/cmdline": qemu_cmdline(100),
            "/proc/4343/cmdline": qemu_cmdline(101),
            "/proc/5000/cmdline": other_kvm.encode(),
            "/proc/5001/cmdline": fd_holder.encode(),
            "/proc/5002/cmdline": tcg.encode(),
            "/proc/1/cmdline": b"/sbin/init\0",
        },
    )


#: name -> (files, expected JSON subset of "host", finding codes that must appear, exit code).
SCENARIOS: dict[str, tuple[Files, dict[str, Any], set[str], int]] = {
    "intel-pve8-nested-off": (
        intel_host("N", extra={"/etc/modprobe.d/kvm-intel.conf": "options kvm_intel nested=0\n"}),
        {
            "vendor": "intel",
            "virt_flag": "vmx",
            "virtualized": False,
            "kvm_module": "kvm_intel",
            "dev_kvm": True,
            "nested": {
                "live": False,
                "after_reboot": False,
                "decided_by": "/etc/modprobe.d/kvm-intel.conf:1",
            },
            "running_vms": [],
            "level": "L0",
        },
        {"host.nested.off"},
        1,
    ),
    "intel-nested-on": (
        intel_host("Y"),
        {
            "vendor": "intel",
            "nested": {
                "live": True,
                "after_reboot": True,
                "decided_by": "kernel default (Linux >= 4.20)",
            },
            "refcount": 0,
            "performance": {"ept": True, "enable_shadow_vmcs": True, "enable_apicv": True},
        },
        set(),
        0,
    ),
    "amd-nested-1": (
        amd_host("1", extra={"/etc/modprobe.d/kvm-amd.conf": "options kvm-amd nested=1\n"}),
        {
            "vendor": "amd",
            "virt_flag": "svm",
            "kvm_module": "kvm_amd",
            "nested": {
                "live": True,
                "after_reboot": True,
                "decided_by": "/etc/modprobe.d/kvm-amd.conf:1",
            },
            "performance": {"npt": True, "avic": False},
        },
        {"host.perf.avic-off"},
        0,
    ),
    "later-file-turns-nested-off": (
        intel_host(
            "Y",
            extra={
                "/etc/modprobe.d/kvm-intel.conf": "options kvm-intel nested=Y\n",
                "/etc/modprobe.d/zz-local.conf": (
                    "# local tuning\n\noptions kvm_intel nested=0 ept=1\n"
                ),
            },
        ),
        {
            "nested": {
                "live": True,
                "after_reboot": False,
                "decided_by": "/etc/modprobe.d/zz-local.conf:3",
            }
        },
        {"host.nested.off-after-reboot", "host.modprobe.conflict"},
        1,
    ),
    "kernel-cmdline-override": (
        intel_host(
            "N",
            cmdline=PVE8_CMDLINE.strip() + " kvm-intel.nested=0 intel_iommu=on\n",
            extra={"/etc/modprobe.d/kvm-intel.conf": "options kvm_intel nested=1\n"},
        ),
        {"nested": {"live": False, "after_reboot": False, "decided_by": "kernel command line"}},
        {"host.nested.off", "host.nested.cmdline"},
        1,
    ),
    "running-vms": (
        running_vms(),
        {
            "running_vms": [100, 101],
            "vm_pids": {"100": 4242, "101": 4343},
            "other_kvm_processes": [
                {"pid": 5000, "argv0": "/usr/bin/qemu-system-x86_64", "why": "accel=kvm"},
                {"pid": 5001, "argv0": "/opt/qemu/bin/qemu-system-x86_64", "why": "/dev/kvm open"},
            ],
            "nested": {
                "live": False,
                "after_reboot": True,
                "decided_by": "/etc/modprobe.d/kvm-intel.conf:1",
            },
        },
        {"host.nested.off", "host.vms.running", "host.vms.other-qemu"},
        1,
    ),
    "firmware-disabled-vt-x": (
        firmware_disabled(),
        {
            "vendor": "intel",
            "virt_flag": None,
            "kvm_module": None,
            "dev_kvm": False,
            "virtualized": False,
            "nested": {"live": None, "after_reboot": None, "decided_by": None},
        },
        {"host.cpu.virt-disabled-in-firmware"},
        1,
    ),
    "cloud-vm-without-nesting": (
        cloud_vm(),
        {
            "virt_flag": None,
            "virtualized": True,
            "hypervisor": "Amazon EC2",
            "level": "L1+",
            "kvm_module": None,
            "dev_kvm": False,
        },
        {"host.cpu.virt-not-passed-through", "host.virtualized"},
        1,
    ),
    "proxmox-in-proxmox-l1": (
        pve_in_pve(),
        {
            "virt_flag": "vmx",
            "virtualized": True,
            "hypervisor": "QEMU",
            "level": "L1+",
            "kvm_module": "kvm_intel",
            "nested": {"live": True, "after_reboot": True},
        },
        {"host.virtualized"},
        0,
    ),
    "dev-vm-kvm-pvm": (
        pvm_dev_vm(),
        {
            "vendor": "amd",
            "virt_flag": None,
            "virtualized": True,
            "hypervisor": "KVM",
            "kvm_module": "kvm_pvm",
            "dev_kvm": True,
            "kvm_modules": ["kvm_pvm"],
            "nested": {"live": None, "after_reboot": None},
        },
        {"host.cpu.virt-not-passed-through", "host.kvm.other-module"},
        1,
    ),
}

#: Symlinks some scenarios need besides files: name -> {link host path: target}.
SYMLINKS: dict[str, dict[str, str]] = {
    "running-vms": {"/proc/5001/fd/3": "/dev/kvm", "/proc/5001/fd/0": "/dev/null"},
}


def build(root: Path, name: str) -> Path:
    """Write scenario `name` under `root` (files and symlinks); returns `root`."""
    write_tree(root, SCENARIOS[name][0])
    for link, target in SYMLINKS.get(name, {}).items():
        real = root / link.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.symlink_to(target)
    return root
