"""What one poll saw of one target: plain facts, no judgement (rules.py judges)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NodeSnap:
    name: str
    online: bool  # /cluster/resources says online
    reachable: bool | None = None  # its status answered (None: not asked)
    problem: str | None = None  # why it could not be reached
    nested_live: bool | None = None  # the kvm module's nested (only over SSH)
    nested_after_reboot: bool | None = None
    nested_decided_by: str | None = None


@dataclass
class VmSnap:
    vmid: int
    name: str | None
    node: str
    status: str  # running | stopped | paused | unknown (its node is offline)
    template: bool = False
    lock: str | None = None
    # From the full check (None until one ran):
    wants_nested: bool | None = None
    broken_link: str | None = None  # host | config | process | guest
    nested_fix: str | None = None
    chain_broken: str | None = None  # the chain's first broken link, whatever the intent


@dataclass
class TaskSnap:
    upid: str
    node: str
    type: str  # qmstart, qmstop, vzdump, ...
    id: str  # the VM id for VM tasks ("" when none)
    user: str
    starttime: int
    endtime: int | None
    status: str | None  # the exit text ("OK", an error) once finished, else None
    log_tail: tuple[str, ...] = ()


@dataclass
class StorageSnap:
    node: str
    storage: str
    used: int | None
    total: int | None
    shared: bool = False
    content: str = ""


@dataclass
class TargetSnap:
    """One target at one poll, or why it could not be read (`problem`; `tls_problem` when the
    certificate did not match its pin or could not be verified)."""

    name: str
    taken: float
    parent: tuple[str, int] | None = None
    problem: str | None = None
    tls_problem: str | None = None
    nodes: dict[str, NodeSnap] = field(default_factory=dict)
    vms: dict[int, VmSnap] = field(default_factory=dict)
    tasks: list[TaskSnap] = field(default_factory=list)
    storages: list[StorageSnap] = field(default_factory=list)
    newest_backup: dict[int, float] | None = None  # vmid -> newest backup's time (full check)
    full: bool = False  # the full check's facts are in (wants_nested, broken_link, nested)
    full_problem: str | None = None  # why the full check failed this time
    tasks_problem: str | None = None  # why /cluster/tasks could not be read this time
    node_uuids: dict[str, str] = field(default_factory=dict)  # node -> DMI product_uuid
    vm_uuids: dict[int, str] = field(default_factory=dict)  # vmid -> smbios1 uuid
