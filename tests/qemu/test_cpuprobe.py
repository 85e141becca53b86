"""The -cpu oracle: what TCG can be asked, the KVM-semantics fallback table, and (e2e) real QEMU."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

import pytest

from nestctl.qemu import cpuprobe
from nestctl.qemu.cache import CpuAnswerCache
from nestctl.qemu.cpuprobe import (
    CpuAnswer,
    QemuCpuOracle,
    parse_cpu_arg,
    table_answer,
    tcg_askable,
)

#: Real-QEMU tests: skipped on a machine without QEMU, failed in CI (NESTCTL_E2E_REQUIRED).
needs_qemu = pytest.mark.usefixtures("qemu_binary")

# -- tcg_askable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu_arg", "askable"),
    [
        ("kvm64", "kvm64"),
        ("host,+kvm_pv_eoi,+kvm_pv_unhalt", "host"),
        # Proxmox's Windows string: enlightenments and enforce go, vendor and flags stay.
        (
            "kvm64,enforce,hv_ipi,hv_relaxed,hv_reset,hv_runtime,hv_spinlocks=0x1fff,"
            "hv_stimer,hv_synic,hv_time,hv_vapic,hv_vpindex,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,"
            "+sep",
            "kvm64,+lahf_lm,+sep",
        ),
        ("x86-64-v2-AES,+nested-virt", "x86-64-v2-AES"),
        ("Skylake-Server,+vmx,-vmx-mbec,+cet-ss,kvm=off", "Skylake-Server,+vmx,kvm=off"),
        ("EPYC,hv-passthrough,kvmclock=on,+svm", "EPYC,+svm"),
        ("max,-svm,-hypervisor", "max,-svm,-hypervisor"),
    ],
)
def test_tcg_askable_drops_only_what_tcg_cannot_answer(cpu_arg: str, askable: str) -> None:
    assert tcg_askable(cpu_arg) == askable


def test_feature_precedence_is_qemus() -> None:
    # feat=on|off in order, then every +feat, then every -feat (minus wins whatever the order).
    feats = parse_cpu_arg("kvm64,-vmx,+vmx,svm=off,+svm,hypervisor=on,hypervisor=off").features()
    assert feats["vmx"] is False
    assert feats["svm"] is True
    assert feats["hypervisor"] is False


# -- table_answer (KVM semantics) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu_arg", "vendor", "vmx", "svm"),
    [
        ("host", "GenuineIntel", True, False),
        ("host", "amd", False, True),
        ("max", "AuthenticAMD", False, True),
        ("host", None, None, None),
        ("host,-vmx", "intel", False, False),
        ("kvm64", "amd", False, False),
        ("qemu64", "amd", False, False),  # svm off under KVM unless +svm
        ("qemu64,+svm", "amd", False, True),
        ("EPYC", "amd", False, False),
        ("EPYC-Rome,+svm", "amd", False, True),
        ("Opteron_G5,+svm", "amd", False, True),
        ("Skylake-Client", "intel", False, False),
        ("Skylake-Client,+vmx", "intel", True, False),
        ("Skylake-Client,+vmx,-vmx", "intel", False, False),
        ("Skylake-Client,+vmx", "amd", False, False),  # KVM on AMD offers no vmx
        ("kvm64,+svm", "intel", False, False),  # nor svm on Intel
        ("core2duo", "intel", True, False),  # QEMU defines it with vmx
    ],
)
def test_table_answer(cpu_arg: str, vendor: str | None, vmx: bool | None, svm: bool | None) -> None:
    answer = table_answer(cpu_arg, vendor)
    assert (answer.vmx, answer.svm) == (vmx, svm)
    assert answer.source == "table"
    assert answer.accel == "kvm"
    assert answer.error is None


def test_table_hypervisor_bit() -> None:
    assert table_answer("kvm64", "intel").hypervisor is True
    assert table_answer("host,-hypervisor", "intel").hypervisor is False


def test_answer_json_round_trip() -> None:
    answer = CpuAnswer(
        "kvm64,+svm",
        vmx=False,
        svm=True,
        hypervisor=True,
        vendor="GenuineIntel",
        filtered=("x2apic",),
        source="qemu 7.2.22 tcg",
        qemu_version="7.2.22",
        accel="tcg",
        asked="kvm64,+svm",
        notes=("n",),
    )
    assert CpuAnswer.from_json(answer.to_json()) == answer
    assert answer.virt_flag == "svm"


def test_no_qemu_falls_back_to_the_table(tmp_path: Path) -> None:
    oracle = QemuCpuOracle(str(tmp_path / "qemu-system-x86_64"))
    answer = oracle.ask("host", vendor_hint="GenuineIntel")
    assert (answer.source, answer.vmx, answer.svm) == ("table", True, False)
    assert any("missing" in n for n in answer.notes)
    assert oracle.started == 0


@pytest.mark.runs_commands  # really tries to exec the file (the kernel refuses it)
def test_binary_that_cannot_start_falls_back(tmp_path: Path) -> None:
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text("not a program")
    fake.chmod(0o644)  # exists but cannot be executed
    answer = QemuCpuOracle(str(fake)).ask("qemu64,+svm", vendor_hint="amd")
    assert (answer.source, answer.svm) == ("table", True)
    assert any("cannot start" in n for n in answer.notes)


# -- real QEMU (TCG only) ---------------------------------------------------------------------


class SpawnSpy:
    def __init__(self) -> None:
        self.values: list[str] = []
        self.real = cpuprobe.spawn_qemu

    def __call__(self, argv: list[str], errfile: IO[bytes]) -> subprocess.Popen[bytes]:
        assert argv[argv.index("-accel") + 1] == "tcg"
        self.values.append(argv[argv.index("-cpu") + 1])
        return self.real(argv, errfile)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> SpawnSpy:
    s = SpawnSpy()
    monkeypatch.setattr(cpuprobe, "spawn_qemu", s)
    return s


@pytest.mark.e2e
@needs_qemu
def test_qemu_answers_and_the_cache_saves_the_second_start(spy: SpawnSpy, tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    values = ["qemu64", "kvm64", "kvm64,+svm", "max,-svm", "qemu64", "kvm64,+svm,enforce"]
    answers = QemuCpuOracle(cache=CpuAnswerCache(path)).ask_many(values)
    # Once per distinct askable value: the duplicate and the enforce variant start nothing more.
    assert sorted(spy.values) == sorted(["qemu64", "kvm64", "kvm64,+svm", "max,-svm"])
    got = {v: (a.svm, a.vmx, a.hypervisor, a.vendor) for v, a in answers.items()}
    assert got["qemu64"] == (True, False, True, "AuthenticAMD")
    assert got["kvm64"] == (False, False, True, "GenuineIntel")
    assert got["kvm64,+svm"] == (True, False, True, "GenuineIntel")
    assert got["max,-svm"][0] is False
    assert answers["kvm64,+svm,enforce"].dropped == ("enforce",)
    assert answers["kvm64,+svm,enforce"].cpu_arg == "kvm64,+svm,enforce"
    assert all(a.source.startswith("qemu 7") and a.source.endswith("tcg") for a in answers.values())

    spy.values.clear()
    again = QemuCpuOracle(cache=CpuAnswerCache(path))
    assert again.ask("kvm64,+svm") == answers["kvm64,+svm"]
    assert again.ask_many(values) == answers
    assert spy.values == []
    assert again.started == 0


@pytest.mark.e2e
@needs_qemu
def test_another_qemu_build_is_asked_again(
    spy: SpawnSpy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.json"
    QemuCpuOracle(cache=CpuAnswerCache(path)).ask("kvm64")
    assert spy.values == ["kvm64"]
    real_identity = cpuprobe.binary_identity
    monkeypatch.setattr(cpuprobe, "binary_identity", lambda b: (real_identity(b) or "") + "-new")
    QemuCpuOracle(cache=CpuAnswerCache(path)).ask("kvm64")
    assert spy.values == ["kvm64", "kvm64"]


@pytest.mark.e2e
@needs_qemu
@pytest.mark.parametrize(
    ("cpu_arg", "error"),
    [
        ("nosuch-model", "unable to find CPU model 'nosuch-model'"),
        ("qemu64,+nosuchflag", "Property 'qemu64-x86_64-cpu.nosuchflag' not found"),
        ("kvm64,+vmx,enforce,level=abc", "level"),
    ],
)
def test_refused_values_carry_qemus_own_words(cpu_arg: str, error: str, tmp_path: Path) -> None:
    answer = QemuCpuOracle(cache=CpuAnswerCache(tmp_path / "c.json")).ask(cpu_arg)
    assert answer.error is not None
    assert error in answer.error
    assert (answer.vmx, answer.svm, answer.hypervisor) == (None, None, None)
    assert answer.source.startswith("qemu")


@pytest.mark.e2e
@needs_qemu
def test_tcg_filters_vmx_and_says_so(tmp_path: Path) -> None:
    answer = QemuCpuOracle(cache=CpuAnswerCache(tmp_path / "c.json")).ask("Skylake-Client,+vmx")
    assert answer.vmx is False
    assert "vmx" in answer.filtered
    assert not [f for f in answer.filtered if f.startswith("vmx-")]  # MSR capability bits left out
    assert any("never offers vmx" in n for n in answer.notes)


@pytest.mark.e2e
@needs_qemu
def test_host_under_tcg_is_answered_by_the_table(spy: SpawnSpy) -> None:
    answer = QemuCpuOracle().ask("host", vendor_hint="AuthenticAMD")
    assert (answer.source, answer.svm, answer.vmx) == ("table", True, False)
    assert spy.values == []


@pytest.mark.e2e
@needs_qemu
def test_a_refusal_names_the_qemu_version_seen_in_the_same_batch(tmp_path: Path) -> None:
    answers = QemuCpuOracle(cache=CpuAnswerCache(tmp_path / "c.json")).ask_many(
        ["nosuch-model", "kvm64"]
    )
    assert answers["nosuch-model"].error is not None
    assert answers["nosuch-model"].source == answers["kvm64"].source
    assert answers["nosuch-model"].qemu_version == answers["kvm64"].qemu_version
