"""The facts the VM analysis runs on, whoever gathered them.

Three collectors (`vm/collect/`: local files, the cluster file system over SSH, the Proxmox API)
fill these shapes; `vm/analyse.py` turns them into findings without any I/O. A VM diagnosed over
the API and the same VM diagnosed on its node therefore get the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nestctl.findings import Finding
from nestctl.vm.model import CpuEnv, VmConfig
from nestctl.vm.running import RunningCheck


@dataclass
class VmOptions:
    """What `nestctl vm` was asked (CLI flags)."""

    vmids: tuple[int, ...] = ()
    all_nodes: bool = False
    qemu_version: str | None = None
    pve_version: str | None = None
    use_qemu: bool | None = None  # None: ask QEMU only on a live host (its QEMU is the VMs')
    cluster_vendors: set[str] | None = None
    guest: bool = False
    sections: bool = True  # the human view's per-VM tables (not needed for --json)
    all_vms: bool = False  # --all-vms: judge every VM as if it wanted nesting
    intent_tag: str = "nested"  # the Proxmox tag that marks a VM meant to nest (intent.py)
    #: VMs an inner target declares as its parent (config file `parent = "T/VMID"`): they host
    #: an inner layer (intent "inner-layer") even when that target is not scanned with them.
    hosts_inner: frozenset[int] = frozenset()


@dataclass(frozen=True)
class NodeFacts:
    """What the analysis needs to know about the node a VM runs on.

    `vendor` is None when the CPU could not be read; `nested_live` None when the KVM module's
    `nested` parameter could not be read (`nested_unknown_why` says why: over the API it never
    can be).
    """

    name: str | None
    env: CpuEnv  # the predictor's environment: versions, cpu flags, custom models
    cpuinfo_known: bool
    vendor: str | None  # "intel" | "amd" | "other" | None
    flags: frozenset[str]
    nested_live: bool | None
    nested_unknown_why: str = "KVM module not loaded?"
    nested_unknown_fix: str | None = "nestctl host"
    env_problems: tuple[str, ...] = ()
    qemu_version_known: bool = True  # pve-qemu-kvm found (or --qemu-version given)
    qemu_server_known: bool = True  # qemu-server found (or --pve-version given)
    nested_virt_flag: bool | None = None  # the node lists the nested-virt CPU flag (API)
    custom_models_known: bool = True  # the API does not serve cpu-models.conf
    #: The node's own nesting level, at least: 0 bare metal, 1 a VM ("L1+": a VM cannot see how
    #: deep it is). None: unknown (over the API). Its guests are one level deeper.
    level: int | None = None
    #: Where `nested_live` came from when not read on the node itself (over the API: the
    #: Prometheus sample, a guest that sees the flag, pvestatd's dated CPU-flag listing).
    nested_decided_by: str | None = None


@dataclass
class VmFacts:
    """One VM: its config (in force + pending) and whether (and how) its QEMU runs."""

    config: VmConfig
    run: RunningCheck


@dataclass
class UnreachableVm:
    """A VM the cluster lists whose node (or whose own data) could not be read: no verdict."""

    vmid: int
    name: str | None
    node: str | None
    why: str


@dataclass
class ScanFacts:
    """One collector's whole answer: nodes, VMs, and what could not be gathered."""

    nodes: dict[str | None, NodeFacts] = field(default_factory=dict)
    vms: list[VmFacts] = field(default_factory=list)
    unreachable: list[UnreachableVm] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about the scan as a whole
    config_findings: list[Finding] = field(default_factory=list)  # VMs that could not be read
    #: Node -> what showed its `nested` on after the scan (a guest's own view), for its report.
    evidence: dict[str, str] = field(default_factory=dict)
