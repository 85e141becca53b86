"""The kernel log, where readable: "disabled by BIOS" and "Hypervisor detected" lines.

Read from /var/log/kern.log or /var/log/dmesg; on a live root, `dmesg` is asked as a last resort
(it needs root where kernel.dmesg_restrict is set).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from nestctl.machine import Host

LOG_FILES = ("/var/log/kern.log", "/var/log/dmesg")

#: Kernel messages of VT-x/AMD-V switched off in firmware, across kernel versions:
#: "kvm: disabled by bios" (< 5.x), "x86/cpu: VMX (outside TXT) disabled by BIOS" (>= 5.6),
#: "kvm_intel: VMX not enabled (by BIOS) in MSR_IA32_FEAT_CTL", "kvm_amd: SVM disabled (by BIOS)".
_FIRMWARE = re.compile(
    r"(disabled by bios|disabled \(by bios\)|not enabled \(by bios\))", re.IGNORECASE | re.ASCII
)
_HYPERVISOR = "Hypervisor detected: "
_SPACE = " \t\n\r\f\v"


class KernelLog(NamedTuple):
    source: str | None  # where the log came from; None when no log could be read
    firmware_lines: tuple[str, ...]
    hypervisor: str | None


def scan_log(text: str, source: str) -> KernelLog:
    firmware: list[str] = []
    hypervisor: str | None = None
    for line in text.splitlines():
        if _FIRMWARE.search(line) and (
            "vmx" in line.lower() or "svm" in line.lower() or "kvm" in line.lower()
        ):
            firmware.append(line.strip())
        # A plain find, not `(.+?)\s*$`: that pattern is quadratic on a long run of spaces.
        at = line.find(_HYPERVISOR)
        if at >= 0:
            name = line[at + len(_HYPERVISOR) :].strip(_SPACE)
            hypervisor = name or hypervisor  # the newest boot's line wins
    return KernelLog(source, tuple(firmware[-3:]), hypervisor)


def read_kernel_log(host: Host, *, run_dmesg: bool = True) -> KernelLog:
    for path in LOG_FILES:
        # The newest part: a log larger than the read limit is read from its end (what it says
        # about the running boot is there), never silently from its oldest part.
        read = host.read_tail(path)
        if read.text:
            return scan_log(read.text, path)
    if host.live and run_dmesg:
        result = host.run(["dmesg"], timeout=10.0)
        if result.ok and result.stdout:
            return scan_log(result.stdout, "dmesg")
    return KernelLog(None, (), None)
