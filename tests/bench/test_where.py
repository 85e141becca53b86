"""The measurement context read from fake host trees: EPT/NPT, shadow VMCS, clock, steal, TCG."""

from __future__ import annotations

from pathlib import Path

from nestctl.bench.where import contention, cpu_ticks, steal, vmx_flags, where
from nestctl.bench.workloads import mount_of
from nestctl.machine import Host
from tests.helpers import write_tree

INTEL = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n"
    "flags\t\t: fpu vmx constant_tsc\nvmx flags\t: vnmi ept vpid unrestricted_guest\n"
)
TCG_GUEST = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: QEMU Virtual CPU version 2.5+\n"
    "flags\t\t: fpu tsc hypervisor svm\n"
)
CLOCK = "/sys/devices/system/clocksource/clocksource0"


def test_an_intel_host_with_ept_on_and_shadow_vmcs_off(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "/proc/cpuinfo": INTEL,
            "/sys/module/kvm_intel/parameters/ept": "Y\n",
            "/sys/module/kvm_intel/parameters/enable_shadow_vmcs": "N\n",
            "/sys/module/kvm_intel/parameters/nested": "Y\n",
            f"{CLOCK}/current_clocksource": "hpet\n",
            f"{CLOCK}/available_clocksource": "tsc hpet acpi_pm\n",
            "/proc/cmdline": "BOOT_IMAGE=/vmlinuz mitigations=off quiet\n",
            "/sys/devices/system/cpu/vulnerabilities/meltdown": "Not affected\n",
        },
    )
    w = where(Host(root), "no stub", tsc_hz=None)
    assert w["level"] == "L0"
    assert w["accel"] == "none"
    assert w["ept_npt"] == {"value": True, "source": "kvm_intel parameter ept=Y"}
    assert w["shadow_vmcs"]["value"] is False
    assert w["clocksource"] == "hpet"
    assert w["clocksource_exits"] is True
    assert w["mitigations"] == {"cmdline": "off", "vulnerabilities": {"meltdown": "Not affected"}}


def test_unknown_is_never_no(tmp_path: Path) -> None:
    w = where(Host(write_tree(tmp_path, {"/etc/hostname": "x\n"})), "no stub", tsc_hz=None)
    assert w["ept_npt"]["value"] is None
    assert w["shadow_vmcs"]["value"] is None
    assert w["clocksource"] is None
    assert w["clocksource_exits"] is None
    assert w["level"] is None
    assert w["mitigations"]["vulnerabilities"] is None


def test_a_tcg_guest_is_recognised_without_the_cpuid_signature(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "/proc/cpuinfo": TCG_GUEST,
            "/sys/class/dmi/id/sys_vendor": "QEMU\n",
            "/sys/class/dmi/id/product_name": "Standard PC (i440FX + PIIX, 1996)\n",
            f"{CLOCK}/available_clocksource": "tsc hpet acpi_pm\n",
            f"{CLOCK}/current_clocksource": "tsc\n",
        },
    )
    w = where(Host(root), "executable memory refused", tsc_hz=None)
    assert w["accel"] == "tcg"
    assert w["level"] == "L1+"
    assert "TCG" in w["hypervisor"]


def test_the_vmx_flags_line_is_read_apart_from_flags() -> None:
    assert vmx_flags(INTEL) == frozenset({"vnmi", "ept", "vpid", "unrestricted_guest"})
    assert vmx_flags("flags: vmx\n") == frozenset()


def test_steal_time_from_proc_stat(tmp_path: Path) -> None:
    before_text = "cpu  100 0 50 800 0 0 0 10 0 0\ncpu0 1 2 3\n"
    after_text = "cpu  200 0 100 1600 0 0 0 60 0 0\n"
    host = Host(write_tree(tmp_path, {"/proc/stat": before_text}))
    before = cpu_ticks(host)
    (tmp_path / "proc" / "stat").write_text(after_text)
    after = cpu_ticks(host)
    s = steal(before, after)
    assert s["ticks"] == 50
    assert s["percent"] == 5.0  # 50 of 1,000 jiffies
    assert steal(before, None)["percent"] is None
    # busy: 1,000 - 800 idle - 50 steal = 150 ticks, 100 of them ours: others used 5%.
    assert contention(before, after, 100.0)["percent"] == 5.0
    assert contention(before, after, 500.0)["percent"] == 0.0


def test_mount_of_picks_the_longest_mount_point() -> None:
    mounts = "/dev/vda1 / ext4 rw 0 0\ntmpfs /var/tmp tmpfs rw 0 0\ntmpfs /var/tmpx tmpfs rw 0 0\n"
    assert mount_of("/var/tmp", mounts) == ("/var/tmp", "tmpfs", "tmpfs")
    assert mount_of("/var/tmpfoo/x", mounts) == ("/", "ext4", "/dev/vda1")
