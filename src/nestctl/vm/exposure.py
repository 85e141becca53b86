"""Will the guest see VMX/SVM? Decided from a `-cpu` value, the host vendor and live `nested`.

Under KVM (every Proxmox VM unless `kvm: 0`), what the guest gets is the model's features as QEMU
defines them, filtered by what KVM offers, which in turn depends on the host CPU and the `nested`
parameter of kvm_intel / kvm_amd. Rules (reference §6 and qemu-e2e "What TCG does not tell"):

* KVM can only offer the host's own flag: vmx on Intel, svm on AMD. `+svm` on an Intel host (or
  `+vmx` on AMD) never reaches the guest.
* `host` and `max` pass through what KVM offers.
* Named models (kvm64, qemu64, x86-64-vN via qemu64, EPYC, Skylake...) carry no vmx, and QEMU turns
  svm off for them under KVM (`kvm_default_props`) unless `+svm` is given.
* With the host's `nested=N`, KVM offers neither flag: nothing is exposed, even with `host`.
* QEMU's own rule for flags: `feat=on|off` first (last wins), then every `+feat`, then every `-feat`
  (so `-vmx` beats `+vmx` whatever the order).

TCG (`kvm: 0`) is different: no vmx at all, and svm as the model defines it. A QEMU oracle (the real
binary, asked under TCG) answers that directly and tells whether QEMU accepts the value at all; for
KVM guests its vmx/svm answer cannot be used as is, and the rules above decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nestctl.qemu.cpuvalue import CpuValue, parse_cpu_arg

#: Built-in models whose QEMU definition includes VMX (kept under KVM when the host offers it).
VMX_MODELS = frozenset({"coreduo", "core2duo"})
#: Built-in models whose QEMU definition includes SVM (what TCG shows; KVM turns it off).
_SVM_MODEL_PREFIXES = ("qemu64", "phenom", "Opteron_G", "EPYC", "athlon", "max")

PASSTHROUGH_MODELS = frozenset({"host", "max"})


class OracleAnswer(Protocol):
    """What `nestctl.qemu.cpuprobe.CpuAnswer` carries (the fields used here)."""

    @property
    def vmx(self) -> bool | None: ...
    @property
    def svm(self) -> bool | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def accel(self) -> str: ...

    # CpuAnswer also has `unasked` (why QEMU could not be asked); read with getattr so answers
    # made before it existed still fit.


@dataclass(frozen=True, slots=True)
class Exposure:
    exposed: bool | None
    flag: str | None  # "vmx" | "svm" | None
    source: str  # "table" or the oracle's source, e.g. "qemu 7.2.0 tcg"
    reason: str
    qemu_error: str | None = None  # QEMU refuses this -cpu value: the VM does not start
    refuses_start: bool = False  # enforce + a flag KVM cannot give: QEMU exits at start

    def to_json(self) -> dict[str, object]:
        return {"exposed": self.exposed, "flag": self.flag, "source": self.source}


def vendor_flag(host_vendor: str | None) -> str | None:
    """The virtualization flag a host's KVM can offer: vmx (Intel), svm (AMD), else None."""
    v = (host_vendor or "").lower()
    if v in ("intel", "genuineintel"):
        return "vmx"
    if v in ("amd", "authenticamd", "hygongenuine"):
        return "svm"
    return None


def model_has(model: str, flag: str) -> bool:
    """Whether QEMU's definition of a built-in model includes vmx/svm (before KVM's filtering)."""
    if flag == "vmx":
        return model in VMX_MODELS or model == "max"
    return model.startswith(_SVM_MODEL_PREFIXES)


#: QEMU's own refusal of `-cpu host` without KVM (Proxmox still emits `host` for `kvm: 0`).
HOST_NEEDS_KVM = "CPU model 'host' requires KVM or HVF"


def _tcg_decision(cpu: CpuValue, oracle: OracleAnswer | None) -> Exposure:
    if cpu.model == "host":
        return Exposure(
            False,
            None,
            "table",
            f"software emulation (kvm: 0) with -cpu host: QEMU stops with '{HOST_NEEDS_KVM}'",
            qemu_error=HOST_NEEDS_KVM,
        )
    if oracle is not None and oracle.accel == "tcg" and oracle.svm is not None:
        exposed = bool(oracle.svm)
        return Exposure(
            exposed,
            "svm" if exposed else None,
            oracle.source,
            "software emulation (kvm: 0): QEMU reports svm "
            + ("on" if exposed else "off")
            + "; TCG never emulates vmx",
        )
    state = cpu.state("svm")
    exposed = model_has(cpu.model, "svm") if state is None else state
    return Exposure(
        exposed,
        "svm" if exposed else None,
        oracle_source(oracle),  # "table", saying so when QEMU could not be asked
        "software emulation (kvm: 0): TCG never emulates vmx; svm "
        + ("is" if exposed else "is not")
        + f" part of {cpu.model!r} here",
    )


def oracle_source(oracle: OracleAnswer | None) -> str:
    """`nested.source`: the QEMU that answered, "table", or the table and why QEMU was not asked
    (so no reader takes a failed QEMU for a rule, or a rule for QEMU's word)."""
    if oracle is None:
        return "table"
    unasked = getattr(oracle, "unasked", None)
    if isinstance(unasked, str):
        return (
            f"table (QEMU could not be asked: {unasked.splitlines()[0][:120] if unasked else ''})"
        )
    return oracle.source if oracle.accel == "tcg" else "table"


def decide(
    cpu_arg: str | None,
    host_vendor: str | None,
    nested_live: bool | None,
    *,
    kvm: bool = True,
    oracle: OracleAnswer | None = None,
) -> Exposure:
    """Whether a guest started with `-cpu cpu_arg` sees vmx/svm (see the module docstring).

    `cpu_arg` None means no `-cpu` at all (QEMU's default, qemu64). `nested_live` is the host's
    live kvm_intel/kvm_amd `nested` value (None: unknown). `oracle` is the real QEMU's answer for
    this value, if one was asked.
    """
    source = oracle_source(oracle)
    if oracle is not None and oracle.error:
        return Exposure(
            False, None, source, f"QEMU refuses this -cpu value: {oracle.error}", oracle.error
        )
    cpu = parse_cpu_arg(cpu_arg or "qemu64")
    if not kvm:
        return _tcg_decision(cpu, oracle)

    flag = vendor_flag(host_vendor)
    if flag is None:
        return Exposure(
            None, None, source, f"host CPU vendor {host_vendor or 'unknown'}: cannot tell"
        )
    return _kvm_decision(cpu, flag, nested_live, source)


def _kvm_decision(cpu: CpuValue, flag: str, nested_live: bool | None, source: str) -> Exposure:
    wrong = "svm" if flag == "vmx" else "vmx"
    state = cpu.state(flag)
    if state is False:
        return Exposure(False, None, source, f"-cpu {cpu.model} turns {flag} off (-{flag})")
    if cpu.model in PASSTHROUGH_MODELS:
        wanted, why = True, f"'{cpu.model}' passes through what KVM offers"
    elif state is True:
        wanted, why = True, f"+{flag} is requested"
    elif model_has(cpu.model, flag) and flag == "vmx":
        wanted, why = True, f"QEMU's {cpu.model} model includes vmx"
    else:
        wanted = False
        why = f"the {cpu.model} model does not give {flag} under KVM without +{flag}"
        if flag == "svm" and model_has(cpu.model, "svm"):
            why = f"QEMU turns svm off for the {cpu.model} model under KVM unless +svm is given"
    if not wanted:
        if cpu.state(wrong):
            why = (
                f"+{wrong} is requested, but this host is "
                f"{'Intel' if flag == 'vmx' else 'AMD'}: KVM can only offer {flag}"
            )
            return Exposure(False, None, source, why, refuses_start=cpu.enforce)
        return Exposure(False, None, source, why)
    if nested_live is False:
        return Exposure(
            False,
            None,
            source,
            f"{why}, but the host's KVM has nested=N, so it offers no {flag}",
            refuses_start=cpu.enforce and state is True,
        )
    if nested_live is None:
        return Exposure(None, flag, source, f"{why}; the host's live nested value is unknown")
    return Exposure(True, flag, source, why)
