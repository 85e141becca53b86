"""Is this host itself a virtual machine, and of what? (cpuinfo, /sys/hypervisor, DMI, kernel log)

The CPUID hypervisor bit is the strongest sign; DMI names the product (and catches hypervisors that
hide the bit); /sys/hypervisor/type names Xen; the kernel's "Hypervisor detected: X" line names the
hypervisor when nothing else does (Firecracker and other microVMs have no DMI at all), and so do the
clock sources a guest kernel registers (kvm-clock, hyperv_clocksource_*, xen): cheaper than a log.
"""

from __future__ import annotations

from typing import NamedTuple

#: (DMI sys_vendor or product_name substring, lower case) -> hypervisor name.
_DMI_VENDORS: tuple[tuple[str, str], ...] = (
    ("qemu", "QEMU"),
    ("kvm", "KVM"),
    ("vmware", "VMware"),
    ("virtualbox", "VirtualBox"),
    ("innotek", "VirtualBox"),
    ("microsoft corporation", "Microsoft Hyper-V"),
    ("xen", "Xen"),
    ("amazon ec2", "Amazon EC2"),
    ("google", "Google Compute Engine"),
    ("openstack", "OpenStack"),
    ("digitalocean", "DigitalOcean"),
    ("hetzner", "Hetzner Cloud"),
    ("parallels", "Parallels"),
    ("bochs", "Bochs"),
    ("bhyve", "bhyve"),
    ("alibaba cloud", "Alibaba Cloud"),
    ("oraclecloud", "Oracle Cloud"),
)

#: Clock sources only a guest of that hypervisor registers (name before "_clocksource").
_CLOCKSOURCES = {"kvm-clock": "KVM", "hyperv": "Microsoft Hyper-V", "xen": "Xen"}


class VirtEvidence(NamedTuple):
    hypervisor_flag: bool
    hypervisor_type: str | None  # /sys/hypervisor/type
    sys_vendor: str | None
    product_name: str | None
    log_hypervisor: str | None  # "KVM" from "Hypervisor detected: KVM"
    clocksources: str | None  # /sys/devices/system/clocksource/clocksource0/available_clocksource
    # Whether the absence of a sign means something: /proc/cpuinfo was read (the hypervisor bit
    # is the main sign), and DMI and /sys/hypervisor were read or are absent.
    cpu_known: bool = True
    dmi_known: bool = True


class Virtualization(NamedTuple):
    virtualized: bool | None  # None: no sign of a hypervisor, but the signs could not be read
    hypervisor: str | None  # a product name, or None when bare metal or unnamed
    level: str | None  # "L0" bare metal, "L1+" a VM (L1 or deeper: a guest cannot see how deep)
    evidence: tuple[str, ...]  # what showed it, for the human view


def dmi_hypervisor(sys_vendor: str | None, product_name: str | None) -> str | None:
    """The hypervisor a DMI vendor/product pair names, or None for real hardware."""
    product = (product_name or "").strip().lower()
    vendor = (sys_vendor or "").strip().lower()
    if product.endswith(".metal") or product.endswith("-metal"):
        return None  # cloud bare-metal instances keep the cloud's vendor string
    if vendor == "microsoft corporation" and "virtual machine" not in product:
        return None  # Surface and other Microsoft hardware
    if vendor == "red hat" and product in ("kvm", "rhev hypervisor", "openstack compute"):
        return "KVM"
    for needle, name in _DMI_VENDORS:
        if needle in vendor or needle in product:
            return name
    return None


def classify(ev: VirtEvidence) -> Virtualization:
    evidence: list[str] = []
    if ev.hypervisor_flag:
        evidence.append("CPU flag 'hypervisor' in /proc/cpuinfo")
    if ev.hypervisor_type:
        evidence.append(f"/sys/hypervisor/type is {ev.hypervisor_type!r}")
    dmi_name = dmi_hypervisor(ev.sys_vendor, ev.product_name)
    if dmi_name:
        evidence.append(f"DMI: {ev.sys_vendor or '?'} / {ev.product_name or '?'}")
    virtualized = bool(evidence)
    name = dmi_name
    if name is None and ev.hypervisor_type:
        name = "Xen" if ev.hypervisor_type.lower() == "xen" else ev.hypervisor_type
    if name is None and virtualized and ev.log_hypervisor:
        name = ev.log_hypervisor
        evidence.append(f"kernel log: Hypervisor detected: {ev.log_hypervisor}")
    if name is None and virtualized and ev.clocksources:
        for clock in ev.clocksources.split():
            name = _CLOCKSOURCES.get(clock.split("_clocksource")[0])
            if name:
                evidence.append(f"clock source {clock}")
                break
    if virtualized:
        return Virtualization(True, name, "L1+", tuple(evidence))
    if not (ev.cpu_known and ev.dmi_known):
        missing = [
            what
            for what, known in (("/proc/cpuinfo", ev.cpu_known), ("DMI", ev.dmi_known))
            if not known
        ]
        return Virtualization(None, None, None, (f"{' and '.join(missing)} unreadable",))
    return Virtualization(False, None, "L0", ())
