"""Fake Linux guest trees (what a guest's /proc, /sys and /etc look like) for the guest tests."""

from __future__ import annotations

#: A Proxmox VM with `cpu: host` on an AMD EPYC node, under KVM (an L1 guest).
AMD_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm rep_good nopl cpuid extd_apicid "
    "tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave "
    "avx f16c rdrand hypervisor lahf_lm cmp_legacy svm cr8_legacy abm sse4a misalignsse "
    "3dnowprefetch osvw topoext perfctr_core ssbd ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 "
    "smep bmi2 rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 npt nrip_save"
)


def cpuinfo(vendor: str, model: str, flags: str, cpus: int = 2) -> str:
    block = (
        "processor\t: {n}\nvendor_id\t: {vendor}\ncpu family\t: 23\nmodel\t\t: 49\n"
        "model name\t: {model}\nstepping\t: 0\ncpu MHz\t\t: 2994.372\ncache size\t: 512 KB\n"
        "flags\t\t: {flags}\nbogomips\t: 5988.74\n\n"
    )
    return "".join(block.format(n=n, vendor=vendor, model=model, flags=flags) for n in range(cpus))


def l1_kvm() -> dict[str, str | bytes]:
    """An L1 guest under KVM with svm, kvm_amd loaded, /dev/kvm, qemu and libvirt installed."""
    return {
        "/proc/cpuinfo": cpuinfo("AuthenticAMD", "AMD EPYC 7302 16-Core Processor", AMD_FLAGS),
        "/proc/self/status": "Name:\tnestctl\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 \n",
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        "/etc/group": "root:x:0:\nkvm:x:104:\nalice:x:1000:\n",
        "/dev/kvm": "",
        "/sys/module/kvm/parameters/halt_poll_ns": "200000\n",
        "/sys/module/kvm_amd/parameters/nested": "1\n",
        "/sys/class/dmi/id/sys_vendor": "QEMU\n",
        "/sys/class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
        "/sys/devices/system/clocksource/clocksource0/available_clocksource": (
            "kvm-clock tsc hpet acpi_pm \n"
        ),
        "/usr/bin/qemu-system-x86_64": "",
        "/usr/sbin/libvirtd": "",
    }


def tcg_guest() -> dict[str, str | bytes]:
    """QEMU -accel tcg -cpu qemu64: svm emulated, no kvm-clock (qemu-e2e.md table)."""
    tree = l1_kvm()
    flags = "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx "
    flags += (
        "fxsr sse sse2 ht syscall nx lm nopl cpuid pni cx16 hypervisor lahf_lm svm 3dnowprefetch"
    )
    tree["/proc/cpuinfo"] = cpuinfo("AuthenticAMD", "QEMU Virtual CPU version 2.5+", flags, 1)
    tree["/sys/devices/system/clocksource/clocksource0/available_clocksource"] = (
        "tsc hpet acpi_pm \n"
    )
    tree["/sys/class/dmi/id/product_name"] = "Standard PC (i440FX + PIIX, 1996)\n"
    return tree
