"""`vm enable` plans: the smallest `qm set` per profile, on PVE 8.4 (no nested-virt) and 9.2."""

from __future__ import annotations

import pytest

from nestctl.vm.profiles import (
    PROFILES,
    HostCpu,
    custom_model_stanza,
    plan_enable,
    vendor_model,
)

EPYC_FLAGS = frozenset(["svm", "avx2", "sha_ni", "clzero", "rdseed", "adx", "sse4_2", "popcnt"])
CASCADE_FLAGS = frozenset(
    [
        "vmx",
        "avx512_vnni",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "pku",
        "clwb",
        "avx2",
        "adx",
        "rdseed",
        "smap",
        "sse4_2",
        "popcnt",
    ]
)
INTEL = HostCpu("intel", CASCADE_FLAGS)
AMD = HostCpu("amd", EPYC_FLAGS)
LINUX = {"name": "lab", "ostype": "l26", "memory": "2048", "cpu": "x86-64-v2-AES"}
WINDOWS = {
    "name": "win",
    "ostype": "win11",
    "memory": "4096",
    "balloon": "2048",
    "cpu": "x86-64-v2-AES",
}


def argv(conf: dict[str, str], profile: str, host: HostCpu, **kw: object) -> tuple[str, ...] | None:
    return plan_enable(100, conf, profile, host, **kw).argv  # type: ignore[arg-type]


# -- PVE 9.2 (nested-virt known) -------------------------------------------------------------


def test_pve9_linux_kvm_host_only() -> None:
    assert argv(LINUX, "linux-kvm", INTEL, nested_virt=True) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "host",
    )


def test_pve9_linux_kvm_migratable_vendor_model_with_nested_virt() -> None:
    assert argv(LINUX, "linux-kvm", AMD, nested_virt=True, migratable=True) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "EPYC-v4,flags=+nested-virt",
    )
    assert argv(LINUX, "linux-kvm", INTEL, nested_virt=True, migratable=True) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "Cascadelake-Server-noTSX,flags=+nested-virt",
    )


def test_pve9_windows_hyperv() -> None:
    assert argv(WINDOWS, "windows-hyperv", INTEL, nested_virt=True) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "host",
        "--machine",
        "q35",
        "--memory",
        "8192",
        "--balloon",
        "0",
    )


def test_pve9_windows_wsl2_docker_migratable_keeps_pinned_machine_version() -> None:
    conf = {**WINDOWS, "machine": "pc-i440fx-8.1", "memory": "16384", "balloon": "0"}
    plan = plan_enable(100, conf, "windows-wsl2-docker", AMD, nested_virt=True, migratable=True)
    assert plan.argv == (
        "qm",
        "set",
        "100",
        "--cpu",
        "EPYC-v4,flags=+nested-virt",
        "--machine",
        "pc-q35-8.1",
    )
    warn = [f for f in plan.findings if f.code == "vm.enable.machine-q35"]
    assert "re-enumerates its devices" in warn[0].message
    assert warn[0].fix == "qm snapshot 100 before-nestctl-q35"


def test_pve9_pve_lab_tells_about_virtio_blk_but_does_not_move_disks() -> None:
    conf = {**LINUX, "virtio0": "local-zfs:vm-100-disk-0,size=32G", "scsihw": "virtio-scsi-pci"}
    plan = plan_enable(100, conf, "pve-lab", INTEL, nested_virt=True)
    assert plan.argv == ("qm", "set", "100", "--cpu", "host")
    zfs = [f for f in plan.findings if f.code == "vm.enable.virtio-blk-zfs"]
    assert "virtio0" in zfs[0].message
    assert zfs[0].fix is not None
    assert "--scsihw virtio-scsi-single" in zfs[0].fix


def test_nothing_already_right_is_set_again() -> None:
    conf = {"ostype": "win11", "cpu": "host", "machine": "pc-q35-9.2+pve1", "memory": "8192"}
    assert argv(conf, "windows-hyperv", INTEL, nested_virt=True) is None
    conf = {"ostype": "l26", "cpu": "EPYC-Rome,flags=+nested-virt"}
    # An AMD model already of the host's vendor is kept; only nested-virt was needed.
    assert argv(conf, "linux-kvm", AMD, nested_virt=True, migratable=True) is None
    assert argv({"cpu": "EPYC-Rome"}, "linux-kvm", AMD, nested_virt=True, migratable=True) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "EPYC-Rome,flags=+nested-virt",
    )


def test_other_cpu_properties_are_kept() -> None:
    conf = {"cpu": "x86-64-v3,flags=+md-clear;-nested-virt,phys-bits=host"}
    assert argv(conf, "linux-kvm", INTEL, nested_virt=True) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "host,flags=+md-clear,phys-bits=host",
    )


# -- PVE 8.4 (no nested-virt) ----------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_pve8_every_profile_sets_host(profile: str) -> None:
    plan = plan_enable(
        100, WINDOWS if "windows" in profile else LINUX, profile, INTEL, nested_virt=False
    )
    assert plan.argv is not None
    assert plan.argv[:5] == ("qm", "set", "100", "--cpu", "host")
    assert plan.blocked is None


def test_pve8_migratable_needs_a_custom_model_the_admin_adds() -> None:
    plan = plan_enable(100, LINUX, "linux-kvm", AMD, nested_virt=False, migratable=True)
    assert plan.argv == ("qm", "set", "100", "--cpu", "custom-nested-epyc-v4")
    assert plan.blocked == "custom CPU model 'nested-epyc-v4' does not exist yet"
    assert custom_model_stanza("nested-epyc-v4", "EPYC-v4", "svm") in plan.manual[0]
    assert (
        "cpu-model: nested-epyc-v4\n    flags +svm\n    reported-model EPYC-v4\n"
        in (plan.manual[0])
    )


def test_pve8_migratable_uses_an_existing_custom_model() -> None:
    models = {"mine": {"reported-model": "EPYC-v4", "flags": "+svm;+aes"}}
    plan = plan_enable(
        100, LINUX, "linux-kvm", AMD, nested_virt=False, migratable=True, custom_models=models
    )
    assert plan.argv == ("qm", "set", "100", "--cpu", "custom-mine")
    assert plan.blocked is None


def test_pve8_drops_nested_virt_it_would_refuse() -> None:
    conf = {"cpu": "kvm64,flags=+nested-virt;+pcid"}
    assert argv(conf, "linux-kvm", INTEL, nested_virt=False) == (
        "qm",
        "set",
        "100",
        "--cpu",
        "host,flags=+pcid",
    )


# -- refusals and notes ----------------------------------------------------------------------


def test_locked_vm_is_refused_with_proxmox_message() -> None:
    plan = plan_enable(100, {**LINUX, "lock": "backup"}, "linux-kvm", INTEL, nested_virt=True)
    assert plan.blocked == "VM is locked (backup)"
    assert plan.argv is None


def test_template_is_not_changed() -> None:
    plan = plan_enable(100, {**LINUX, "template": "1"}, "linux-kvm", INTEL, nested_virt=True)
    assert plan.argv is None
    assert plan.blocked is not None
    assert "template" in plan.blocked


def test_running_vm_gets_the_restart_note() -> None:
    plan = plan_enable(100, LINUX, "linux-kvm", INTEL, nested_virt=True, running=True)
    note = next(f for f in plan.findings if f.code == "vm.enable.restart")
    assert "reboot inside the guest does not apply" in note.message
    assert note.fix == "qm reboot 100"


def test_windows_profile_on_linux_vm_warns_and_kvm_off_is_turned_on() -> None:
    plan = plan_enable(100, {**LINUX, "kvm": "0"}, "windows-hyperv", INTEL, nested_virt=True)
    assert "vm.enable.not-windows" in [f.code for f in plan.findings]
    assert plan.argv is not None
    assert ("--kvm", "1") in plan.options


def test_vendor_model_is_conservative() -> None:
    assert vendor_model("intel", frozenset({"vmx", "avx2", "bmi1", "bmi2", "fma", "movbe"})) == (
        "Haswell-noTSX"
    )
    assert vendor_model("amd", frozenset({"svm", "sse4a", "popcnt"})) == "Opteron_G3"
    assert vendor_model("other", frozenset()) is None
    assert vendor_model("intel", frozenset({"vmx"})) is None
