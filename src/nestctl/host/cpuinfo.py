"""Parse /proc/cpuinfo (the host's, or a guest's read through its agent)."""

from __future__ import annotations

from typing import NamedTuple

from nestctl.parse import cpu_vendor


class CpuInfo(NamedTuple):  # not a dataclass: start-up pays for building each one
    vendor_id: str | None  # "GenuineIntel", "AuthenticAMD", ...
    flags: frozenset[str]  # flags of the first processor, the line Proxmox itself reads
    model_name: str | None
    processors: int

    @property
    def vendor(self) -> str:
        """ "intel", "amd" or "other" (the JSON contract's spelling; no vendor_id is "other")."""
        return cpu_vendor(self.vendor_id) or "other"

    @property
    def virt_flag(self) -> str | None:
        """ "vmx", "svm" or None, as `grep -E 'vmx|svm'` would answer."""
        if "vmx" in self.flags:
            return "vmx"
        if "svm" in self.flags:
            return "svm"
        return None

    @property
    def hypervisor(self) -> bool:
        """The CPUID "hypervisor" bit: this CPU is a virtual one."""
        return "hypervisor" in self.flags


def parse_cpuinfo(text: str) -> CpuInfo:
    """Tolerant parser: garbage lines are skipped; the first processor's values win."""
    vendor: str | None = None
    flags: frozenset[str] | None = None
    model: str | None = None
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "processor":
            processors += 1
        elif key == "vendor_id" and vendor is None:
            vendor = value or None
        elif key in ("flags", "features") and flags is None:
            flags = frozenset(value.split())
        elif key == "model name" and model is None:
            model = value or None
    return CpuInfo(vendor, flags or frozenset(), model, processors)
