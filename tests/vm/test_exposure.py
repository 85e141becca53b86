"""Will the guest see VMX/SVM? KVM's rules, the host's nested value, and a QEMU oracle's answer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nestctl.qemu.cpuvalue import parse_cpu_arg
from nestctl.vm.exposure import decide
from tests.e2e.required import require_program

PVE = "+kvm_pv_eoi,+kvm_pv_unhalt"


@pytest.mark.parametrize(
    ("cpu", "vendor", "exposed", "flag"),
    [
        (f"host,{PVE}", "intel", True, "vmx"),
        (f"host,{PVE}", "amd", True, "svm"),
        (f"host,{PVE},-vmx-mbec", "intel", True, "vmx"),  # a vmx sub-feature, not vmx itself
        (f"max,enforce,{PVE}", "amd", True, "svm"),
        (f"kvm64,enforce,{PVE},+lahf_lm,+sep", "intel", False, None),  # backend default
        (f"kvm64,enforce,{PVE},+lahf_lm,+sep,+vmx", "intel", True, "vmx"),  # D06 nested-virt
        (f"qemu64,+aes,enforce,{PVE},+pni,+popcnt", "amd", False, None),  # x86-64-v2-AES
        (f"EPYC-v4,enforce,{PVE},vendor=AuthenticAMD", "amd", False, None),  # svm off under KVM
        (f"EPYC-v4,enforce,{PVE},+svm,vendor=AuthenticAMD", "amd", True, "svm"),  # D10
        (f"Cooperlake-v2,enforce,{PVE},vendor=GenuineIntel,+vmx", "intel", True, "vmx"),
        (f"host,{PVE},-vmx", "intel", False, None),
        ("host,+vmx,-vmx", "intel", False, None),  # QEMU: every -feat beats every +feat
        ("host,-vmx,+vmx", "intel", False, None),
        ("kvm64,vmx=on", "intel", True, "vmx"),
        ("kvm64,vmx=on,-vmx", "intel", False, None),
        (f"kvm64,enforce,{PVE},+svm", "intel", False, None),  # svm on an Intel host: never
        (f"host,{PVE}", "other", None, None),
    ],
)
def test_kvm_rules(cpu: str, vendor: str, exposed: bool | None, flag: str | None) -> None:
    result = decide(cpu, vendor, nested_live=True)
    assert (result.exposed, result.flag) == (exposed, flag), result.reason
    assert result.source == "table"


def test_host_nested_off_exposes_nothing_even_with_host() -> None:
    result = decide(f"host,{PVE}", "intel", nested_live=False)
    assert result.exposed is False
    assert "nested=N" in result.reason
    assert not result.refuses_start  # host has no enforce: the guest silently lacks vmx


def test_enforce_with_a_flag_kvm_cannot_give_stops_qemu() -> None:
    assert decide("kvm64,enforce,+vmx", "intel", nested_live=False).refuses_start
    assert decide("kvm64,enforce,+svm", "intel", nested_live=True).refuses_start


def test_unknown_nested_leaves_the_answer_open() -> None:
    result = decide(f"host,{PVE}", "amd", nested_live=None)
    assert result.exposed is None
    assert result.flag == "svm"


def test_no_cpu_argument_is_qemu64() -> None:
    assert decide(None, "amd", nested_live=True).exposed is False


@dataclass(frozen=True)
class FakeAnswer:
    vmx: bool | None
    svm: bool | None
    error: str | None = None
    source: str = "qemu 7.2.0 tcg"
    accel: str = "tcg"


def test_tcg_answer_does_not_override_kvm_semantics() -> None:
    # QEMU under TCG keeps svm for EPYC; under KVM (a Proxmox VM) svm is off without +svm.
    answer = FakeAnswer(vmx=False, svm=True)
    result = decide("EPYC-v4,enforce,vendor=AuthenticAMD", "amd", True, oracle=answer)
    assert result.exposed is False
    assert result.source == "qemu 7.2.0 tcg"


def test_qemu_refusal_wins() -> None:
    answer = FakeAnswer(None, None, error="unable to find CPU model 'Frobnicator'")
    result = decide("Frobnicator", "intel", True, oracle=answer)
    assert result.exposed is False
    assert result.qemu_error == "unable to find CPU model 'Frobnicator'"


def test_software_emulated_vm_uses_tcg_rules() -> None:
    # kvm: 0 (or a template): TCG never emulates vmx, and qemu64 carries svm.
    assert decide("qemu64", "intel", False, kvm=False).exposed is True
    assert decide("qemu64", "intel", False, kvm=False).flag == "svm"
    assert decide("kvm64,+vmx", "intel", True, kvm=False).exposed is False
    assert (
        decide("qemu64", "intel", True, kvm=False, oracle=FakeAnswer(False, False)).exposed is False
    )
    # A table fallback (KVM semantics) is not taken for a TCG answer.
    table = FakeAnswer(False, False, source="table", accel="kvm")
    assert decide("qemu64", "intel", True, kvm=False, oracle=table).exposed is True


def test_host_without_kvm_does_not_start() -> None:
    # Proxmox emits `host` for kvm: 0 (derived case D31); QEMU refuses it under TCG.
    result = decide("host", "intel", True, kvm=False)
    assert result.exposed is False
    assert result.qemu_error == "CPU model 'host' requires KVM or HVF"


def test_parse_keeps_qemu_precedence() -> None:
    v = parse_cpu_arg("host,vmx=off,+vmx,enforce,level=30")
    assert v.model == "host"
    assert v.state("vmx") is True
    assert v.enforce
    assert v.settings["level"] == "30"


@pytest.mark.e2e
def test_real_qemu_oracle_agrees_on_kvm_semantics() -> None:
    require_program("qemu-system-x86_64")  # CI (NESTCTL_E2E_REQUIRED) fails instead of skipping
    from nestctl.qemu.cpuprobe import QemuCpuOracle  # noqa: PLC0415

    oracle = QemuCpuOracle()
    plain = oracle.ask("EPYC,enforce,+kvm_pv_eoi,vendor=AuthenticAMD")
    assert plain.error is None
    assert decide(plain.cpu_arg, "amd", True, oracle=plain).exposed is False
    wanted = oracle.ask("EPYC,enforce,+kvm_pv_eoi,+svm,vendor=AuthenticAMD")
    result = decide(wanted.cpu_arg, "amd", True, oracle=wanted)
    assert result.exposed is True
    assert result.source.startswith("qemu ")
    bad = oracle.ask("NoSuchModel-v9")
    assert decide("NoSuchModel-v9", "intel", True, oracle=bad).qemu_error
