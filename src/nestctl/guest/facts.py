"""What a guest is known to be: facts gathered inside it, and what the host knows about its VM.

Pure data, no I/O. Probes (`linux.py`, `windows.py`) fill these in; `rules.py` judges them.
Every guessed value carries its evidence with a certainty, because inside a VM much can only be
inferred (CPUID leaf 0x40000000, which names the hypervisor, cannot be read from a file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nestctl.host.cpuinfo import CpuInfo

Accel = Literal["kvm", "tcg", "other", "none", "unknown"]
Certainty = Literal["strong", "medium", "weak"]
Status = Literal["ready", "not-enabled", "not-ready", "unknown"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One signal behind a guess: what was seen, and how much it proves."""

    signal: str
    certainty: Certainty

    def to_json(self) -> dict[str, str]:
        return {"signal": self.signal, "certainty": self.certainty}


@dataclass(frozen=True, slots=True)
class Blocker:
    """Why some facts could not be checked in a guest, and what would let nestctl check them."""

    reason: str
    fix: str


@dataclass(frozen=True, slots=True)
class HostSide:
    """What the host knows about the VM this guest runs in (the VM layer fills this in).

    Inside a guest none of this is knowable, so every field may be None. Windows verdicts need it:
    inside a VM, Windows cannot tell whether virtualization is exposed to it.
    """

    vmid: int | None = None
    running_cpu: str | None = None  # the -cpu value of the running QEMU process
    exposes_virt: bool | None = None  # that -cpu gives the guest vmx or svm
    host_nested: bool | None = None  # the host's kvm_intel/kvm_amd nested parameter, live
    machine: str | None = None  # e.g. "pc-q35-9.0"
    memory_mib: int | None = None
    ostype: str | None = None  # Proxmox ostype: l26, win10, win11, ...
    accel: Accel | None = None  # "kvm" unless the VM runs with kvm: 0
    parent_level: int | None = None  # nesting level of the machine running this VM (0: metal)
    restart_pending: bool | None = None  # the config's CPU differs from the running -cpu


@dataclass(frozen=True, slots=True)
class KvmAccess:
    """Whether the calling user may open /dev/kvm read-write, and why."""

    usable: bool | None  # None: could not tell
    reason: str
    group: str | None = None  # the device's group name (usually "kvm")
    user: str | None = None


@dataclass(frozen=True, slots=True)
class LabFacts:
    """What a KVM/QEMU lab in this guest needs besides /dev/kvm."""

    qemu_binaries: tuple[str, ...] | None  # None: none seen, but not every place was readable
    libvirtd_installed: bool | None  # None: could not check
    libvirtd_state: str | None  # "active", "inactive", ... ; None: could not check
    libvirtd_detail: str = ""


@dataclass(frozen=True, slots=True)
class RoleFacts:
    """Whether this guest is a hypervisor itself (it then hosts an inner layer); None: unknown."""

    pve_node: bool | None  # a Proxmox VE node (pve-manager, qm, /etc/pve)
    pve_evidence: tuple[str, ...]  # the paths that said so
    running_vms: tuple[str, ...] | None  # QEMU/KVM processes running ("kvm (pid 1234)")


@dataclass(frozen=True, slots=True)
class LinuxFacts:
    cpu: CpuInfo | None  # None: /proc/cpuinfo unreadable
    cpuinfo_problem: str | None
    dev_kvm: bool | None  # None: could not check
    access: KvmAccess
    kvm_core_loaded: bool | None  # /sys/module/kvm; None: could not check
    kvm_module: str | None  # "kvm_intel" or "kvm_amd" when loaded (see kvm_module_known)
    module_nested: bool | None  # that module's own nested parameter
    dmi_vendor: str | None
    dmi_product: str | None
    sys_hypervisor: str | None  # /sys/hypervisor/type (Xen writes it)
    clocksources: tuple[str, ...] | None  # None: unreadable
    platform: str | None  # "QEMU", "VMware", ... from DMI / /sys/hypervisor
    accel: Accel
    accel_evidence: tuple[Evidence, ...]
    level: int | None
    level_evidence: tuple[Evidence, ...]
    lab: LabFacts
    kvm_module_known: bool = True  # False: kvm_module None means "could not check"
    unchecked: tuple[str, ...] = ()  # facts that could not be checked ("/dev/kvm", "libvirt")
    blocker: Blocker | None = None  # why, and what would let nestctl check them
    role: RoleFacts | None = None  # None: not probed (facts built by hand)


@dataclass(frozen=True, slots=True)
class ProductVerdict:
    """One Windows product's verdict (Hyper-V, WSL2, Docker Desktop) and what it rests on."""

    status: Status
    reason: str
    rests_on: tuple[str, ...]  # "host side", "guest outcome", "hints"

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "reason": self.reason, "rests_on": list(self.rests_on)}


@dataclass(frozen=True, slots=True)
class WindowsFacts:
    """What the Windows probes found. Missing values (None) mean the probe could not answer."""

    features: dict[str, str] | None  # FeatureName -> state name ("Enabled", "Disabled", ...)
    features_problem: str | None
    launchtype: str | None  # bcdedit hypervisorlaunchtype ("Auto", "Off"); "" when not set
    bcdedit_problem: str | None
    services: dict[str, str] | None  # vmms / vmcompute -> "Running", "Stopped"; absent: missing
    hypervisor_events: tuple[int, ...] | None  # event IDs, newest first
    running_vms: tuple[str, ...] | None  # Hyper-V VMs running in this guest (Get-VM)
    wsl_installed: bool | None
    wsl_default_version: int | None
    wsl_distros: tuple[tuple[str, str, int | None], ...]  # (name, state, version)
    wsl_errors: tuple[str, ...]  # HRESULTs and HCS_E_* names found in WSL's output
    hints: dict[str, object] = field(default_factory=dict)  # Win32_* fields, weak
    is_admin: bool | None = None


@dataclass(frozen=True, slots=True)
class GuestFacts:
    """A guest's facts. `os` says which part is filled in."""

    os: Literal["linux", "windows", "unknown"]
    linux: LinuxFacts | None = None
    windows: WindowsFacts | None = None
