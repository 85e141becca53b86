"""Lint rules for what users copy from tutorials into VM configs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.findings import Severity
from nestctl.vm.lint import lint_config, lost_by_args, parse_cpu_prop

PVE_CPU = "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"
WIN_CPU = (
    "kvm64,enforce,hv_ipi,hv_relaxed,hv_reset,hv_runtime,hv_spinlocks=0x1fff,hv_stimer,"
    "hv_synic,hv_time,hv_vapic,hv_vpindex,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"
)


def codes(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [f.code for f in findings]


def test_bare_hypervisor_in_args_stops_qemu() -> None:
    found = lint_config(100, {"args": "-hypervisor"}, pve_cpu=PVE_CPU, has_nested_virt=True)
    assert codes(found) == ["vm.args.bare-hypervisor"]
    f = found[0]
    assert f.severity is Severity.ERROR
    assert "qemu-system-x86_64: -hypervisor: invalid option" in f.message
    assert "-cpu kvm64,-hypervisor" in f.message
    assert f.fix == "qm set 100 --delete args"


def test_bare_hypervisor_among_other_args_keeps_the_rest() -> None:
    found = lint_config(
        100, {"args": "-hypervisor -smbios type=0,vendor=x"}, pve_cpu=PVE_CPU, has_nested_virt=True
    )
    assert found[0].fix == "qm set 100 --args '-smbios type=0,vendor=x'"


def test_args_cpu_says_exactly_what_is_lost() -> None:
    found = lint_config(
        101, {"ostype": "win10", "args": "-cpu host,+vmx"}, pve_cpu=WIN_CPU, has_nested_virt=True
    )
    assert codes(found) == ["vm.args.cpu-replaced"]
    msg = found[0].message
    assert "the model changes (kvm64 -> host)" in msg
    assert "enforce, hv_ipi, hv_relaxed" in msg
    assert "hv_spinlocks=0x1fff" in msg
    assert "+kvm_pv_eoi" in msg


def test_lost_by_args_keeps_what_the_args_value_repeats() -> None:
    change, lost = lost_by_args(PVE_CPU, "kvm64,enforce,+kvm_pv_eoi,+vmx")
    assert change is None
    assert lost == ["+kvm_pv_unhalt", "+lahf_lm", "+sep"]


def test_args_equal_to_pve_cpu_is_not_reported() -> None:
    assert lint_config(1, {"args": f"-cpu {PVE_CPU}"}, pve_cpu=PVE_CPU, has_nested_virt=True) == []


def test_unparsable_args() -> None:
    found = lint_config(1, {"args": "-cpu 'host"}, pve_cpu=PVE_CPU, has_nested_virt=True)
    assert codes(found) == ["vm.args.unparsable"]


def test_hidden_is_not_the_hypervisor_bit() -> None:
    found = lint_config(1, {"cpu": "host,hidden=1"}, pve_cpu=None, has_nested_virt=True)
    assert codes(found) == ["vm.cpu.hidden-not-hypervisor-bit"]
    assert "kvm=off" in found[0].message
    assert "'hypervisor' bit" in found[0].message


def test_nested_virt_on_abstract_model_for_windows() -> None:
    conf = {"ostype": "win11", "cpu": "x86-64-v2-AES,flags=+nested-virt"}
    found = lint_config(1, conf, pve_cpu=None, has_nested_virt=True, vendor_model="EPYC-v4")
    assert codes(found) == ["vm.cpu.nested-virt-abstract-windows"]
    assert found[0].fix == "qm set 1 --cpu EPYC-v4,flags=+nested-virt"
    # Linux guests are not warned: Proxmox's advice is about Windows.
    conf["ostype"] = "l26"
    assert lint_config(1, conf, pve_cpu=None, has_nested_virt=True) == []


def test_raw_vmx_flag_fix_depends_on_proxmox_version() -> None:
    conf = {"cpu": "kvm64,flags=+vmx;+md-clear"}
    new = lint_config(1, conf, pve_cpu=None, has_nested_virt=True)
    assert codes(new) == ["vm.cpu.raw-virt-flag"]
    assert new[0].fix == "qm set 1 --cpu kvm64,flags=+md-clear;+nested-virt"
    old = lint_config(1, conf, pve_cpu=None, has_nested_virt=False)
    assert old[0].fix == "qm set 1 --cpu host,flags=+md-clear"
    assert "custom CPU model" in old[0].message


def test_cpu_host_in_a_mixed_vendor_cluster() -> None:
    conf = {"cpu": "host"}
    found = lint_config(
        1, conf, pve_cpu=None, has_nested_virt=True, cluster_vendors={"intel", "amd"}
    )
    assert codes(found) == ["vm.cpu.host-mixed-cluster"]
    # Unknown or single-vendor clusters: nothing to say.
    assert lint_config(1, conf, pve_cpu=None, has_nested_virt=True, cluster_vendors=None) == []
    assert lint_config(1, conf, pve_cpu=None, has_nested_virt=True, cluster_vendors={"amd"}) == []


def test_model_of_the_other_vendor() -> None:
    conf = {"cpu": "Cooperlake-v2,flags=+nested-virt"}
    found = lint_config(1, conf, pve_cpu=None, has_nested_virt=True, host_vendor="amd")
    assert codes(found) == ["vm.cpu.vendor-mismatch"]
    assert "Intel model on an AMD host" in found[0].message
    assert lint_config(1, conf, pve_cpu=None, has_nested_virt=True, host_vendor="intel") == []
    generic = {"cpu": "kvm64"}
    assert lint_config(1, generic, pve_cpu=None, has_nested_virt=True, host_vendor="amd") == []


def test_cpu_prop_tolerates_garbage() -> None:
    prop = parse_cpu_prop(",,host,,flags=+a;;-b,=x")
    assert prop.cputype == "host"
    assert prop.flags == ("+a", "-b")
    assert parse_cpu_prop(None).cputype == "kvm64"


# -- never a traceback, whatever the config holds -------------------------------------------

_KEYS = ["cpu", "args", "ostype", "machine", "memory", "balloon", "kvm", "lock", "virtio0", "name"]
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_CONF = st.dictionaries(
    st.sampled_from(_KEYS),
    _TEXT
    | st.sampled_from(
        [
            "host",
            "kvm64,flags=+vmx;+nested-virt",
            "x86-64-v2-AES,hidden=1",
            "-hypervisor",
            "win11",
            "pc-i440fx-8.1",
            "0",
            "4096",
            "current=x",
            "'",
            "-cpu host,+vmx",
        ]
    ),
)


@given(conf=_CONF, vendors=st.sets(st.sampled_from(["intel", "amd"])))
@settings(max_examples=300, deadline=None)
def test_lint_and_plans_never_raise(conf: dict[str, str], vendors: set[str]) -> None:
    from nestctl.vm.profiles import PROFILES, HostCpu, plan_enable  # noqa: PLC0415

    for f in lint_config(
        100, conf, pve_cpu=conf.get("cpu"), has_nested_virt=True, cluster_vendors=vendors
    ):
        assert f.code.startswith("vm.")
    for profile in PROFILES:
        for nested_virt in (True, False):
            plan = plan_enable(
                100,
                conf,
                profile,
                HostCpu("amd", frozenset({"svm"})),
                migratable=True,
                nested_virt=nested_virt,
            )
            assert plan.argv is None or plan.argv[:3] == ("qm", "set", "100")


@given(
    cpu=_TEXT,
    vendor=st.sampled_from(["intel", "amd", "other", None]),
    nested=st.sampled_from([True, False, None]),
    kvm=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_exposure_never_raises(
    cpu: str, vendor: str | None, nested: bool | None, kvm: bool
) -> None:
    from nestctl.vm.exposure import decide  # noqa: PLC0415

    result = decide(cpu, vendor, nested, kvm=kvm)
    assert result.flag in ("vmx", "svm", None)
    assert result.exposed in (True, False, None)
