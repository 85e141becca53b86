"""Each rule of Proxmox's -cpu assembly (reference §2-§3), one behaviour per test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.vm.config import parse_vm_config
from nestctl.vm.cpuarg import args_cpu, predict_cpu, quote_arg
from nestctl.vm.model import CpuEnv

INTEL = CpuEnv(host_flags=frozenset({"fpu", "vmx", "sse2"}))
AMD = CpuEnv(host_vendor="AuthenticAMD", host_flags=frozenset({"fpu", "svm"}))
PVE84 = CpuEnv(
    qemu_version=(9, 2, 0), qemu_server_version=(8, 3, 13), host_flags=frozenset({"vmx"})
)
PVE90 = CpuEnv(
    qemu_version=(10, 0, 2), qemu_server_version=(9, 0, 20), host_flags=frozenset({"vmx"})
)
WHITELIST_9 = (
    "VM-specific CPU flags must be a subset of: aes, amd-no-ssb, amd-ssbd, hv-evmcs, hv-tlbflush, "
    "ibpb, md-clear, nested-virt, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd"
)
DEFAULT = "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"


def cpu(conf: dict[str, str], env: CpuEnv = INTEL) -> str | None:
    return predict_cpu(conf, env).value


# -- defaults, models, sorting --


def test_backend_default_is_kvm64_whatever_the_ostype() -> None:
    assert cpu({}) == DEFAULT
    assert cpu({"ostype": "l26"}) == cpu({"ostype": "other"}) == DEFAULT


def test_flags_sort_in_ascii_order_with_vendor_before_vmx() -> None:
    value = cpu({"cpu": "Cooperlake-v2,flags=+nested-virt;+virt-ssbd"})
    assert value == (
        "Cooperlake-v2,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,vendor=GenuineIntel,+virt-ssbd,+vmx"
    )


def test_hyphen_sorts_before_underscore() -> None:
    value = cpu({"cpu": "host,flags=-hv-tlbflush", "ostype": "win10"})
    assert value is not None
    assert value.index("-hv-tlbflush") < value.index("hv_ipi")


def test_abstract_model_emits_qemu64_with_its_flags() -> None:
    assert cpu({"cpu": "x86-64-v3"}) == (
        "qemu64,+abm,+aes,+avx,+avx2,+bmi1,+bmi2,enforce,+f16c,+fma,+kvm_pv_eoi,+kvm_pv_unhalt,"
        "+movbe,+pni,+popcnt,+sse4.1,+sse4.2,+ssse3,+xsave"
    )


def test_deprecated_alias_is_replaced() -> None:
    assert cpu({"cpu": "Icelake-Client-noTSX"}) == (
        "Icelake-Server-noTSX,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,vendor=GenuineIntel"
    )


def test_unknown_builtin_and_custom_models_are_refused() -> None:
    assert predict_cpu({"cpu": "Skylake"}, INTEL).error == (
        "Built-in cputype 'Skylake' is not defined (missing 'custom-' prefix?)"
    )
    assert predict_cpu({"cpu": "custom-x"}, INTEL).error == "Custom cputype 'x' not found"


def test_opteron_and_solaris_pve_flags() -> None:
    assert cpu({"cpu": "Opteron_G5", "ostype": "solaris"}) == (
        "Opteron_G5,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,-rdtscp,vendor=AuthenticAMD,-x2apic"
    )


def test_machine_before_2_3_has_no_pv_flags_and_old_hyperv() -> None:
    p = predict_cpu({"machine": "pc-i440fx-2.2", "ostype": "win7"}, INTEL)
    assert p.value == "kvm64,enforce,hv_relaxed,hv_spinlocks=0xffff,+lahf_lm,+sep"


# -- the VM flag whitelist and merge --


def test_raw_vmx_in_vm_flags_is_refused_with_proxmox_message() -> None:
    p = predict_cpu({"cpu": "host,flags=+vmx"}, INTEL)
    assert (p.value, p.error) == (None, WHITELIST_9)


def test_merge_priority_and_warning_text_custom_over_pve() -> None:
    env = CpuEnv(custom_models={"m": {"flags": "-kvm_pv_unhalt", "reported-model": "host"}})
    p = predict_cpu({"cpu": "custom-m"}, env)
    assert p.value == "host,+kvm_pv_eoi,-kvm_pv_unhalt"
    assert p.warnings == (
        "warning: CPU flag/setting '-kvm_pv_unhalt' (set by custom CPU model) overwrites "
        "'+kvm_pv_unhalt' (set by PVE; to improve Linux guest spinlock performance)",
    )


def test_vm_flags_override_custom_model_flags() -> None:
    env = CpuEnv(custom_models={"m": {"flags": "+aes", "reported-model": "host"}})
    p = predict_cpu({"cpu": "custom-m,flags=-aes"}, env)
    assert p.value == "host,-aes,+kvm_pv_eoi,+kvm_pv_unhalt"
    assert p.warnings == (
        "warning: CPU flag/setting '-aes' (manually set for VM) overwrites "
        "'+aes' (set by custom CPU model)",
    )


def test_same_flag_twice_merges_silently() -> None:
    p = predict_cpu({"cpu": "x86-64-v2-AES,flags=+aes"}, INTEL)
    assert p.warnings == ()
    assert p.value is not None
    assert p.value.count("+aes") == 1


# -- nested-virt --


def test_nested_virt_resolves_from_host_flags() -> None:
    intel = predict_cpu({"cpu": "host,flags=+nested-virt"}, INTEL)
    amd = predict_cpu({"cpu": "host,flags=+nested-virt"}, AMD)
    assert intel.value == "host,+kvm_pv_eoi,+kvm_pv_unhalt,+vmx"
    assert intel.stdout == ("CPU flag 'nested-virt' resolved to 'vmx'",)
    assert amd.value == "host,+kvm_pv_eoi,+kvm_pv_unhalt,+svm"


def test_nested_virt_without_vmx_or_svm_on_host_is_dropped_with_warning() -> None:
    env = CpuEnv(host_flags=frozenset({"fpu", "sse2"}))
    p = predict_cpu({"cpu": "host,flags=+nested-virt"}, env)
    assert p.value == "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    assert p.warnings == (
        "WARN: ignoring 'nested-virt' CPU flag - unable to resolve from host CPU flags",
    )


def test_minus_nested_virt_removes_vmx_of_custom_model() -> None:
    env = CpuEnv(
        host_flags=frozenset({"vmx"}),
        custom_models={"m": {"flags": "+vmx", "reported-model": "host"}},
    )
    p = predict_cpu({"cpu": "custom-m,flags=-nested-virt"}, env)
    assert p.value == "host,+kvm_pv_eoi,+kvm_pv_unhalt,-vmx"
    assert p.warnings == (
        "warning: CPU flag/setting '-vmx' (manually set for VM) overwrites "
        "'+vmx' (set by custom CPU model)",
    )


# -- version differences (reference §2.7) --


def test_pve84_has_no_nested_virt_and_lists_its_own_whitelist() -> None:
    p = predict_cpu({"cpu": "host,flags=+nested-virt"}, PVE84)
    assert p.error == (
        "VM-specific CPU flags must be a subset of: pcid, spec-ctrl, ibpb, ssbd, virt-ssbd, "
        "amd-ssbd, amd-no-ssb, pdpe1gb, md-clear, hv-tlbflush, hv-evmcs, aes"
    )


def test_pve90_before_9_0_27_has_no_nested_virt_but_guest_phys_bits() -> None:
    assert predict_cpu({"cpu": "host,flags=+nested-virt"}, PVE90).error == WHITELIST_9.replace(
        " nested-virt,", ""
    )
    assert cpu({"cpu": "host,guest-phys-bits=40"}, PVE90) == (
        "host,+kvm_pv_eoi,+kvm_pv_unhalt,guest-phys-bits=40"
    )


def test_pve84_rejects_newer_cpu_keys() -> None:
    assert predict_cpu({"cpu": "host,level=30"}, PVE84).error == (
        "invalid key in comma-separated list property: level"
    )
    assert predict_cpu({"cpu": "host,guest-phys-bits=40"}, PVE84).error == (
        "invalid key in comma-separated list property: guest-phys-bits"
    )


def test_windows_11_differences_between_84_and_92() -> None:
    conf = {"cpu": "host", "ostype": "win11", "machine": "pc-q35-11.0+pve2"}
    newest = cpu(conf)
    assert newest is not None
    assert "-cet-ibt" in newest
    assert "hv_evmcs" in newest
    old = cpu({"cpu": "host", "ostype": "win11", "machine": "pc-q35-9.2+pve1"}, PVE84)
    assert old is not None
    assert "cet" not in old
    assert "evmcs" not in old
    assert "mbec" not in old


def test_pve84_has_a_shorter_model_list() -> None:
    assert predict_cpu({"cpu": "EPYC-Turin"}, PVE84).error == (
        "Built-in cputype 'EPYC-Turin' is not defined (missing 'custom-' prefix?)"
    )
    assert cpu({"cpu": "EPYC-Turin"}, AMD) == (
        "EPYC-Turin,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,vendor=AuthenticAMD"
    )


def test_vmx_mbec_only_for_host_on_machines_before_11_with_new_qemu() -> None:
    assert cpu({"cpu": "host", "machine": "pc-q35-10.1"}) == (
        "host,+kvm_pv_eoi,+kvm_pv_unhalt,-vmx-mbec"
    )
    assert cpu({"cpu": "host", "machine": "pc-q35-10.1"}, CpuEnv(qemu_version=(10, 1, 2))) == (
        "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    )


def test_hidden_on_8x_emits_kvm_off_for_any_arch() -> None:
    env = CpuEnv(qemu_version=(9, 2, 0), qemu_server_version=(8, 3, 13))
    assert cpu({"arch": "aarch64", "cpu": "max,hidden=1"}, env) == "max,kvm=off"
    assert cpu({"arch": "aarch64", "cpu": "max,hidden=1"}) == "max"


# -- Windows, hidden, x-vga, templates, kvm: 0, args --


def test_windows_pinned_to_5_1_without_meta_and_to_creation_qemu_with_it() -> None:
    assert predict_cpu({"ostype": "win10"}, INTEL).machine == "pc-i440fx-5.1+pve0"
    meta = {"ostype": "win10", "machine": "q35", "meta": "creation-qemu=9.2.0,ctime=1"}
    assert predict_cpu(meta, INTEL).machine == "pc-q35-9.2+pve0"
    old_meta = {"ostype": "win10", "meta": "creation-qemu=8.1.5"}
    assert predict_cpu(old_meta, INTEL).machine == "pc-i440fx-5.1+pve0"


def test_hv_vendor_id_only_for_windows() -> None:
    assert (
        cpu({"cpu": "host,hv-vendor-id=foo", "ostype": "l26"}) == "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    )
    win = cpu({"cpu": "host,hv-vendor-id=foo", "ostype": "win10"})
    assert win is not None
    assert "hv_vendor_id=foo" in win


def test_hidden_means_kvm_off_not_hiding_the_hypervisor_bit() -> None:
    assert cpu({"cpu": "host,hidden=yes"}) == "host,kvm=off,+kvm_pv_eoi,+kvm_pv_unhalt"


def test_x_vga_implies_kvm_off_and_proxmox_vendor_id_on_windows() -> None:
    conf = {"cpu": "host", "ostype": "win10", "hostpci0": "01:00.0,x-vga=1", "machine": "q35"}
    value = cpu(conf)
    assert value is not None
    assert "kvm=off" in value
    assert "hv_vendor_id=proxmox" in value
    assert cpu({"cpu": "host,hidden=0", "hostpci0": "01:00.0,x-vga=on"}) == (
        "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    )


def test_template_always_gets_qemu64() -> None:
    conf = {"template": "1", "cpu": "host,flags=+nested-virt", "machine": "q35", "ostype": "win11"}
    p = predict_cpu(conf, INTEL)
    assert (p.value, p.machine) == ("qemu64", "pc+pve0")


def test_kvm_0_keeps_host_without_pv_flags() -> None:
    assert cpu({"kvm": "0", "cpu": "host"}) == "host"
    assert cpu({"kvm": "0"}) == "qemu64"


def test_args_cpu_replaces_proxmox_cpu_last_one_wins() -> None:
    p = predict_cpu({"cpu": "host", "args": "-cpu kvm64 -smp 2 -cpu 'host,+vmx,kvm=off'"}, INTEL)
    assert p.value == "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    assert p.replaced_by_args == "host,+vmx,kvm=off"
    assert args_cpu("-hypervisor") is None
    assert args_cpu("-cpu 'unbalanced") is None


def test_32bit_cpu_with_ovmf_is_refused() -> None:
    p = predict_cpu({"cpu": "pentium3", "bios": "ovmf"}, INTEL)
    assert p.error == "OVMF (UEFI) BIOS is not supported on 32-bit CPU types"


def test_phys_bits_and_ovmf_warning() -> None:
    p = predict_cpu({"cpu": "kvm64,phys-bits=46", "bios": "ovmf"}, INTEL)
    assert p.value == f"{DEFAULT},phys-bits=46"
    assert p.warnings == (
        "WARN: OVMF firmware might limit CPU 'phys-bits' to 40 - enable the 'pdpe1gb' CPU flag "
        "to avoid this",
    )
    assert (
        predict_cpu({"cpu": "kvm64,phys-bits=46,flags=+pdpe1gb", "bios": "ovmf"}, INTEL).warnings
        == ()
    )
    assert (
        cpu({"cpu": "host,phys-bits=host"}) == "host,+kvm_pv_eoi,+kvm_pv_unhalt,host-phys-bits=true"
    )


def test_level_follows_the_model_name() -> None:
    assert cpu({"cpu": "kvm64,level=13"}) == "kvm64,level=13" + DEFAULT.removeprefix("kvm64")


def test_pending_change_with_delete_is_what_the_next_start_uses() -> None:
    text = "cpu: host\nostype: l26\n\n[PENDING]\ncpu: host,flags=+nested-virt\ndelete: ostype\n"
    conf = parse_vm_config(text, 100, "/etc/pve/qemu-server/100.conf")
    assert cpu(conf.current()) == "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    assert cpu(conf.with_pending()) == "host,+kvm_pv_eoi,+kvm_pv_unhalt,+vmx"
    deleted = parse_vm_config(
        "cpu: host\n[PENDING]\ndelete: cpu\n", 100, "/etc/pve/qemu-server/100.conf"
    )
    assert cpu(deleted.with_pending()) == DEFAULT


def test_machine_errors_come_before_cpu_errors() -> None:
    p = predict_cpu({"machine": "pc-q35-42.0", "cpu": "host,flags=+vmx"}, INTEL)
    assert p.error == (
        "Installed QEMU version '11.0.0' is too old to run machine type 'pc-q35-42.0+pve0', "
        "please upgrade node 'localhost'"
    )


def test_broken_property_strings_give_proxmox_messages() -> None:
    assert predict_cpu({"cpu": "host,host"}, INTEL).error == (
        "duplicate key in comma-separated list property: cputype"
    )
    assert predict_cpu({"cpu": "host,flags=vmx"}, INTEL).error == (
        "format error\nflags: value does not match the regex pattern"
    )
    assert predict_cpu({"machine": "pc,viommu=amd"}, INTEL).error is not None


# -- quoting --


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        (DEFAULT, DEFAULT),
        ("host,kvm=off", "'host,kvm=off'"),
        ("", "''"),
        ("a'b", "'a'\\''b'"),
        ("a b", "'a b'"),
    ],
)
def test_quote_arg_like_string_shellquote(value: str, quoted: str) -> None:
    assert quote_arg(value) == quoted


# -- the prediction cache --


def test_predictions_are_shared_only_between_equivalent_configs() -> None:
    a = predict_cpu({"cpu": "host", "cores": "2", "net0": "virtio=AA"}, INTEL)
    b = predict_cpu({"cpu": "host", "cores": "8", "net0": "e1000=BB"}, INTEL)
    assert a is b
    c = predict_cpu({"cpu": "host", "cores": "2", "net0": "virtio=AA"}, AMD)
    assert c is not a
    assert predict_cpu({"cpu": "host", "args": "-cpu max"}, INTEL).replaced_by_args == "max"
    assert predict_cpu({"cpu": "host", "args": "-cpu qemu64"}, INTEL).replaced_by_args == "qemu64"


def test_qemu_version_is_named_as_qemu_reports_it() -> None:
    env = CpuEnv(qemu_version=(9, 0, 0), qemu_version_text="9.0")
    assert predict_cpu({"machine": "pc-q35-10.0"}, env).error == (
        "Installed QEMU version '9.0' is too old to run machine type 'pc-q35-10.0+pve0', "
        "please upgrade node 'localhost'"
    )
    rc = CpuEnv(qemu_version=(10, 0, 90), qemu_version_text="10.0.90")
    p = predict_cpu({"machine": "pc-q35-10.1"}, rc)
    assert p.error is None
    assert p.warnings == (
        "warning: Installed QEMU version (10.0.90) is a release candidate, ignoring version checks",
    )


_KEYS = st.sampled_from(
    [
        "cpu",
        "ostype",
        "machine",
        "meta",
        "bios",
        "arch",
        "kvm",
        "template",
        "args",
        "hostpci0",
        "net0",
        "scsi20",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "host",
            "custom-x",
            "q35",
            "pc-q35-11.0+pve2",
            "win11",
            "ovmf",
            "aarch64",
            "0",
            "1",
            "x86-64-v2-AES,flags=+nested-virt",
            "creation-qemu=10.0",
            "01:00.0,x-vga=1",
            "-cpu 'max",
            "pc-i440fx-4.1.pxe",
            "kvm32",
            "host,level=x",
            "virt",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8), st.sampled_from([INTEL, AMD, PVE84, PVE90]))
def test_predict_never_raises(conf: dict[str, str], env: CpuEnv) -> None:
    p = predict_cpu(conf, env)
    assert (p.value is None) != (p.error is None)
