"""Is this host a VM, and of what: DMI names, cloud bare metal, /sys/hypervisor, clock sources."""

from __future__ import annotations

import pytest

from nestctl.host.virt import VirtEvidence, classify, dmi_hypervisor


@pytest.mark.parametrize(
    ("vendor", "product", "name"),
    [
        ("QEMU", "Standard PC (i440FX + PIIX, 1996)", "QEMU"),
        ("Red Hat", "KVM", "KVM"),
        ("VMware, Inc.", "VMware Virtual Platform", "VMware"),
        ("innotek GmbH", "VirtualBox", "VirtualBox"),
        ("Microsoft Corporation", "Virtual Machine", "Microsoft Hyper-V"),
        ("Microsoft Corporation", "Surface Laptop 5", None),
        ("Xen", "HVM domU", "Xen"),
        ("Amazon EC2", "m5.large", "Amazon EC2"),
        ("Amazon EC2", "m5.metal", None),
        ("Google", "Google Compute Engine", "Google Compute Engine"),
        ("Dell Inc.", "PowerEdge R740", None),
        (None, None, None),
    ],
)
def test_dmi_names(vendor: str | None, product: str | None, name: str | None) -> None:
    assert dmi_hypervisor(vendor, product) == name


def ev(**kw: object) -> VirtEvidence:
    base: dict[str, object] = {
        "hypervisor_flag": False,
        "hypervisor_type": None,
        "sys_vendor": None,
        "product_name": None,
        "log_hypervisor": None,
        "clocksources": None,
    }
    base.update(kw)
    return VirtEvidence(**base)  # type: ignore[arg-type]


def test_bare_metal() -> None:
    v = classify(ev(sys_vendor="Supermicro", product_name="Super Server"))
    assert (v.virtualized, v.hypervisor, v.level) == (False, None, "L0")


def test_hidden_hypervisor_bit_still_seen_by_dmi() -> None:
    v = classify(ev(sys_vendor="QEMU", product_name="Standard PC (Q35 + ICH9, 2009)"))
    assert (v.virtualized, v.hypervisor, v.level) == (True, "QEMU", "L1+")


def test_xen_from_sys_hypervisor() -> None:
    v = classify(ev(hypervisor_type="xen"))
    assert (v.virtualized, v.hypervisor) == (True, "Xen")


def test_microvm_named_by_clock_source_or_log() -> None:
    v = classify(ev(hypervisor_flag=True, clocksources="tsc kvm-clock "))
    assert (v.virtualized, v.hypervisor) == (True, "KVM")
    assert "clock source kvm-clock" in v.evidence
    v = classify(ev(hypervisor_flag=True, clocksources="tsc hyperv_clocksource_tsc_page"))
    assert v.hypervisor == "Microsoft Hyper-V"
    v = classify(ev(hypervisor_flag=True, log_hypervisor="VMware"))
    assert v.hypervisor == "VMware"
    v = classify(ev(hypervisor_flag=True))
    assert (v.virtualized, v.hypervisor) == (True, None)


def test_clock_source_alone_does_not_make_a_vm() -> None:
    assert classify(ev(clocksources="tsc kvm-clock")).virtualized is False
