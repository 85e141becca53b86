"""What QEMU says about a -cpu value: the answer record, and how its refusals are recognised.

Shared by the oracle that asks QEMU (`cpuprobe`) and the cache that keeps its answers (`cache`), so
neither has to import the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CpuAnswer:
    """What a -cpu value yields: flags the vCPU gets, or QEMU's refusal, and who said so."""

    cpu_arg: str
    vmx: bool | None
    svm: bool | None
    hypervisor: bool | None
    vendor: str | None = None  # CPUID vendor string the vCPU reports ("GenuineIntel"), if known
    filtered: tuple[str, ...] = ()  # CPUID features asked for that the accelerator lacks
    error: str | None = None  # QEMU's own text when it refuses the value
    source: str = "table"  # "qemu 7.2.22 tcg" or "table"
    qemu_version: str | None = None
    accel: str = "kvm"  # whose semantics the flags describe
    asked: str | None = None  # the value QEMU was really given (after `tcg_askable`)
    dropped: tuple[str, ...] = ()  # parts of cpu_arg left out of `asked`
    notes: tuple[str, ...] = field(default=())
    unasked: str | None = None  # why QEMU could not be asked (then the table answered)

    @property
    def virt_flag(self) -> str | None:
        if self.vmx:
            return "vmx"
        if self.svm:
            return "svm"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_arg": self.cpu_arg,
            "vmx": self.vmx,
            "svm": self.svm,
            "hypervisor": self.hypervisor,
            "vendor": self.vendor,
            "filtered": list(self.filtered),
            "error": self.error,
            "source": self.source,
            "qemu_version": self.qemu_version,
            "accel": self.accel,
            "asked": self.asked,
            "dropped": list(self.dropped),
            "notes": list(self.notes),
            "unasked": self.unasked,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CpuAnswer:
        """Inverse of `to_json`; raises (KeyError, TypeError, ValueError) on a malformed record."""

        def flag(key: str) -> bool | None:
            value = data[key]
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"{key}: {value!r}")
            return value

        def opt_str(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            cpu_arg=str(data["cpu_arg"]),
            vmx=flag("vmx"),
            svm=flag("svm"),
            hypervisor=flag("hypervisor"),
            vendor=opt_str("vendor"),
            filtered=tuple(str(x) for x in data.get("filtered", ())),
            error=opt_str("error"),
            source=str(data["source"]),
            qemu_version=opt_str("qemu_version"),
            accel=str(data.get("accel", "kvm")),
            asked=opt_str("asked"),
            dropped=tuple(str(x) for x in data.get("dropped", ())),
            notes=tuple(str(x) for x in data.get("notes", ())),
            unasked=opt_str("unasked"),
        )


#: QEMU's own words when it refuses a -cpu value (QEMU 7.2 to 10; ../shared/reference/qemu-e2e.md):
#: "unable to find CPU model 'x'", "CPU model 'host' requires KVM or HVF", "Property
#: 'qemu64-x86_64-cpu.x' not found", "can't apply global qemu64-x86_64-cpu.x=y: ...", "kernel
#: doesn't allow setting HyperV VP_INDEX", "TCG doesn't support requested features" (enforce).
_CPU_REFUSAL_RE = re.compile(
    r"unable to find CPU model|CPU model '[^']*' requires|-x86_64-cpu\b|HyperV|Hyper-V"
    r"|doesn't support requested feature|^-cpu ",
    re.ASCII,
)


def is_cpu_refusal(error: str) -> bool:
    """Whether QEMU's (first) error line is about the -cpu value."""
    return _CPU_REFUSAL_RE.search(error) is not None
