"""The rules: which conditions are active at one poll (pure functions over snapshots).

Each rule yields events with a key stable for its cause. What a poll could not see (a target
that did not answer, VMs of an offline node, a full check not yet run) is reported as unseen:
the engine keeps those events as they were, since unknown is never "resolved".

Storms are avoided here first, by cause: the VMs of an offline node are not judged (one node
event, not one per VM), a VM whose node has nested off is not reported as a second event, and an
inner target is not reported unreachable while the VM that runs it is down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nestctl.findings import Severity
from nestctl.parse import is_ascii_digits
from nestctl.watch.events import Evaluation, Event
from nestctl.watch.paths import SEP, Paths
from nestctl.watch.snapshot import TargetSnap, TaskSnap, VmSnap

#: Task types that stop a VM on purpose (an admin, HA, a backup in stop mode, a migration).
STOPPING_TASKS = frozenset(
    {
        "qmstop",
        "qmshutdown",
        "qmreboot",
        "qmigrate",
        "qmsuspend",
        "qmpause",
        "qmdestroy",
        "qmrestore",
        "vzdump",
        "hastop",
        "hashutdown",
        "hamigrate",
        "harelocate",
    }
)

TASK_LABELS = {
    "vzdump": "backup",
    "qmstart": "start",
    "qmstop": "stop",
    "qmshutdown": "shutdown",
    "qmreboot": "reboot",
    "qmigrate": "migration",
    "qmclone": "clone",
    "qmsnapshot": "snapshot",
}


@dataclass(frozen=True)
class Limits:
    storage_percent: float = 90.0
    backup_max_age: float = 36 * 3600.0  # seconds
    task_window: float = 24 * 3600.0  # failed tasks older than this are history


@dataclass
class Memory:
    """What the rules remember across polls (kept in the state file): the VM power state last
    seen per target (to tell a crash from a stop), and the nodes seen with nested on."""

    last_status: dict[str, dict[int, str]] = field(default_factory=dict)
    # Stopping tasks seen at the last poll: upid -> it had ended. A stop is "on purpose" when a
    # stopping task of that VM is new since then or was still running then (no clocks compared:
    # the node's and ours may differ).
    stop_tasks: dict[str, dict[str, bool]] = field(default_factory=dict)
    nested_on_seen: set[str] = field(default_factory=set)  # "target:node"


def evaluate(
    snaps: Mapping[str, TargetSnap],
    active: set[str],
    memory: Memory,
    limits: Limits,
    now: float,
) -> Evaluation:
    """Every active condition at this poll; updates `memory` for the next one."""
    out = Evaluation()
    paths = Paths(snaps)
    for snap in snaps.values():
        _target(snap, snaps, paths, active, memory, limits, now, out)
    return out


def _target(  # noqa: PLR0917 - one rule pass, its context spelled out
    snap: TargetSnap,
    snaps: Mapping[str, TargetSnap],
    paths: Paths,
    active: set[str],
    memory: Memory,
    limits: Limits,
    now: float,
    out: Evaluation,
) -> None:
    t = snap.name
    if snap.tls_problem is not None:
        out.unseen.add(f"*:{t}")
        out.events.append(
            Event(
                key=f"target.tls:{t}",
                code="target.tls",
                severity=Severity.ERROR,
                target=t,
                path=paths.target(t),
                what=f"the TLS certificate of {t} does not match its pinned fingerprint: "
                "renewed, or someone is in between",
                fix=f"compare `pvenode cert info` on the node with {t}'s fingerprint in the "
                "config file; change the pin only if you renewed the certificate",
                details=(snap.tls_problem,),
                security=True,
            )
        )
        return
    if snap.problem is not None:
        out.unseen.add(f"*:{t}")
        if not _parent_down(snap, snaps):
            out.events.append(
                Event(
                    key=f"target.unreachable:{t}",
                    code="target.unreachable",
                    severity=Severity.ERROR,
                    target=t,
                    path=paths.target(t),
                    what=f"the Proxmox API of {t} does not answer",
                    fix=f"check that {t}'s nodes are up and pveproxy runs "
                    "(systemctl status pveproxy)",
                    details=(snap.problem,),
                )
            )
        return
    out.events += _nodes(snap, paths, memory, out)
    out.events += _vms(snap, paths, active, memory, out)
    out.events += _tasks(snap, paths, limits, now, out)
    out.events += _storages(snap, paths, limits, out)
    out.events += _backups(snap, paths, limits, now, out)
    if snap.tasks_problem is not None:
        return  # without the task list a stop cannot be told from a crash: judge it next time
    memory.last_status[t] = {
        vmid: vm.status for vmid, vm in snap.vms.items() if vm.status != "unknown"
    } | {
        vmid: status
        for vmid, status in memory.last_status.get(t, {}).items()
        if vmid in snap.vms and snap.vms[vmid].status == "unknown"
    }
    memory.stop_tasks[t] = {
        task.upid: task.status is not None for task in snap.tasks if task.type in STOPPING_TASKS
    }


def _parent_down(snap: TargetSnap, snaps: Mapping[str, TargetSnap]) -> bool:
    """The VM this inner target runs in is not running (that VM's own event says so)."""
    from nestctl.watch.paths import parent_ties  # noqa: PLC0415

    parent = parent_ties(snaps).get(snap.name)
    if parent is None:
        return False
    outer = snaps.get(parent[0])
    if outer is None or outer.problem is not None:
        return True  # the outer level is down or unseen: its event covers this one
    vm = outer.vms.get(parent[1])
    return vm is None or vm.status != "running"


def _down(snap: TargetSnap, node: str) -> bool:
    n = snap.nodes.get(node)
    return n is not None and (not n.online or n.reachable is False)


def _nodes(snap: TargetSnap, paths: Paths, memory: Memory, out: Evaluation) -> list[Event]:
    t = snap.name
    events = []
    for node in snap.nodes.values():
        path = paths.node(t, node.name)
        page = f"/t/{t}/node/{node.name}"
        if not node.online or node.reachable is False:
            offline = not node.online
            events.append(
                Event(
                    key=f"node.down:{t}:{node.name}",
                    code="node.offline" if offline else "node.unreachable",
                    severity=Severity.ERROR,
                    target=t,
                    path=path,
                    what=f"node {node.name} is "
                    + ("offline (the cluster lost it)" if offline else "unreachable"),
                    fix=f"check node {node.name}'s power and network; `pvecm status` on "
                    "another node",
                    details=(node.problem,) if node.problem else (),
                    page=page,
                    node=node.name,
                )
            )
            out.unseen.add(f"*:{t}:{node.name}")
            continue
        hosts = set(paths.parents.values())
        wanted = any(
            v.wants_nested or (t, v.vmid) in hosts for v in snap.vms.values() if v.node == node.name
        )
        events += _nested(snap, node.name, path, page, memory, out, wanted=wanted)
    return events


def _nested(  # noqa: PLR0917
    snap: TargetSnap,
    node: str,
    path: str,
    page: str,
    memory: Memory,
    out: Evaluation,
    *,
    wanted: bool,
) -> list[Event]:
    t = snap.name
    n = snap.nodes[node]
    if not snap.full or n.nested_live is None:
        out.unseen.add(f"node.nested:{t}:{node}:")
        return []
    seen_key = f"{t}:{node}"
    if n.nested_live:
        memory.nested_on_seen.add(seen_key)
    if not (wanted or seen_key in memory.nested_on_seen):
        return []  # nobody here wants nesting: not ours to judge
    if n.nested_live is False:
        return [
            Event(
                key=f"node.nested:{t}:{node}:now",
                code="node.nested-off",
                severity=Severity.ERROR,
                target=t,
                path=path,
                what=f"nested virtualization is off on node {node}: its VMs cannot run guests "
                "of their own",
                fix=f"nestctl host enable (on {node}), then restart the VMs that nest",
                page=page,
                node=node,
            )
        ]
    if n.nested_after_reboot is False:
        by = f" ({n.nested_decided_by})" if n.nested_decided_by else ""
        return [
            Event(
                key=f"node.nested:{t}:{node}:reboot",
                code="node.nested-off-after-reboot",
                severity=Severity.WARNING,
                target=t,
                path=path,
                what=f"node {node} will have nested off after its next reboot{by}",
                fix=f"nestctl host enable (on {node})",
                page=page,
                node=node,
            )
        ]
    return []


def _vms(
    snap: TargetSnap, paths: Paths, active: set[str], memory: Memory, out: Evaluation
) -> list[Event]:
    t = snap.name
    events = []
    before = memory.last_status.get(t, {})
    known = memory.stop_tasks.get(t, {})
    for vm in snap.vms.values():
        if vm.template:
            continue
        if vm.status == "unknown" or _down(snap, vm.node):
            continue  # its node's event covers it; its keys are unseen (see _nodes)
        if vm.status == "stopped":
            crashed = (
                snap.tasks_problem is None
                and before.get(vm.vmid) == "running"
                and not _stopped_on_purpose(snap.tasks, vm.vmid, known)
            )
            if crashed or _still(active, f"vm.stopped:{t}:", vm.vmid):
                events.append(_stopped(vm, t, paths))
        lost = _nesting_lost(snap, vm, paths, out)
        if lost is not None:
            events.append(lost)
    return events


def _still(active: set[str], prefix: str, vmid: int) -> bool:
    """An event of this VM was active (on whichever node it then was)."""
    return any(k.startswith(prefix) and k.endswith(f":{vmid}") for k in active)


def _stopped(vm: VmSnap, t: str, paths: Paths) -> Event:
    return Event(
        key=f"vm.stopped:{t}:{vm.node}:{vm.vmid}",
        code="vm.stopped",
        severity=Severity.ERROR,
        target=t,
        path=paths.vm(t, vm.vmid),
        what=f"VM {vm.vmid}{_name(vm)} stopped with no stop, shutdown or migrate task "
        "(a crash, the OOM killer, or a shutdown from inside)",
        fix=f"look at `journalctl -u qemu-server@{vm.vmid}` and the node's kernel log, then "
        f"`qm start {vm.vmid}`",
        page=f"/t/{t}/vm/{vm.node}/{vm.vmid}",
        node=vm.node,
        vmid=vm.vmid,
    )


def _name(vm: VmSnap) -> str:
    return f" ({vm.name})" if vm.name else ""


def _stopped_on_purpose(tasks: list[TaskSnap], vmid: int, known: dict[str, bool]) -> bool:
    """A stopping task of this VM that is new since the last poll or was running then."""
    ident = str(vmid)
    return any(
        t.id == ident and t.type in STOPPING_TASKS and not known.get(t.upid, False) for t in tasks
    )


def _nesting_lost(snap: TargetSnap, vm: VmSnap, paths: Paths, out: Evaluation) -> Event | None:
    t = snap.name
    if not snap.full or vm.wants_nested is None:
        out.unseen.add(f"vm.nesting:{t}:{vm.node}:{vm.vmid}")
        return None
    broken = vm.broken_link
    if not vm.wants_nested and (t, vm.vmid) in paths.parents.values():
        broken = vm.chain_broken  # it runs an inner layer of the lab: that is intent
    elif not vm.wants_nested:
        return None  # never judged on a VM that does not want nesting
    if broken is None:
        return None
    node = snap.nodes.get(vm.node)
    if broken == "host" and node is not None and node.nested_live is False:
        # The node's nested-off event is the cause: one message, not one per VM; this VM's
        # own event (if any) stays as it was.
        out.unseen.add(f"vm.nesting:{t}:{vm.node}:{vm.vmid}")
        return None
    where = {
        "host": "its host cannot give vmx/svm",
        "config": "its config no longer exposes vmx/svm",
        "process": "the running QEMU does not expose vmx/svm (restart pending)",
        "guest": "the guest does not see vmx/svm",
    }.get(broken, f"broken at {broken}")
    return Event(
        key=f"vm.nesting:{t}:{vm.node}:{vm.vmid}",
        code="vm.nesting-lost",
        severity=Severity.ERROR,
        target=t,
        path=paths.vm(t, vm.vmid),
        what=f"VM {vm.vmid}{_name(vm)} wants nesting and lost it: {where}",
        fix=vm.nested_fix or f"nestctl vm {vm.vmid} --target {t} (shows the fix)",
        page=f"/t/{t}/vm/{vm.node}/{vm.vmid}",
        node=vm.node,
        vmid=vm.vmid,
    )


def _tasks(
    snap: TargetSnap, paths: Paths, limits: Limits, now: float, out: Evaluation
) -> list[Event]:
    t = snap.name
    if snap.tasks_problem is not None:
        out.unseen.add(f"task.failed:{t}:")
        return []
    latest: dict[tuple[str, str, str], TaskSnap] = {}
    for task in snap.tasks:
        if task.status is None or task.endtime is None:
            continue  # still running: the last finished one of its kind stands until it ends
        group = (task.node, task.type, task.id)
        have = latest.get(group)
        if have is None or (task.starttime, task.endtime) > (have.starttime, have.endtime or 0):
            latest[group] = task
    events = []
    for (node, kind, ident), task in sorted(latest.items()):
        if _down(snap, node):
            out.unseen.add(f"task.failed:{t}:{node}:")
            continue
        if task.status is None or task.endtime is None or _ok(task.status):
            continue
        if now - task.endtime > limits.task_window:
            continue
        label = TASK_LABELS.get(kind, kind)
        subject = f"VM {ident}" if is_ascii_digits(ident) else (ident or node)
        vmid = int(ident) if is_ascii_digits(ident) else None
        path = paths.vm(t, vmid) if vmid is not None and vmid in snap.vms else paths.node(t, node)
        events.append(
            Event(
                key=f"task.failed:{t}:{node}:{kind}:{ident}",
                code="task.failed",
                severity=Severity.ERROR if kind == "vzdump" else Severity.WARNING,
                target=t,
                path=path,
                what=f"{label} of {subject} failed: {task.status}",
                fix=f"read the task log on {node} (Datacenter > Tasks)"
                + (f", then run the backup again: vzdump {ident}" if kind == "vzdump" else ""),
                details=task.log_tail,
                page=f"/t/{t}/task/{task.upid}",
                node=node,
                vmid=vmid,
            )
        )
    return events


def _ok(status: str) -> bool:
    return status == "OK" or status.startswith("WARNINGS")


def _storages(snap: TargetSnap, paths: Paths, limits: Limits, out: Evaluation) -> list[Event]:
    t = snap.name
    events: dict[str, Event] = {}
    for st in snap.storages:
        where = st.storage if st.shared else f"{st.node}:{st.storage}"
        key = f"storage.full:{t}:{where}"
        if _down(snap, st.node) or st.used is None or not st.total:
            out.unseen.add(key)
            continue
        percent = 100.0 * st.used / st.total
        if percent <= limits.storage_percent or key in events:
            continue
        events[key] = Event(
            key=key,
            code="storage.full",
            severity=Severity.ERROR if percent >= 98.0 else Severity.WARNING,
            target=t,
            path=paths.node(t, st.node) + f"{SEP}storage {st.storage}",
            what=f"storage {st.storage} is {percent:.0f}% full",
            fix=f"free space on {st.storage} (old backups, unused disks) or grow it",
            page=f"/t/{t}/node/{st.node}",
            node=st.node,
        )
    return list(events.values())


def _backups(
    snap: TargetSnap, paths: Paths, limits: Limits, now: float, out: Evaluation
) -> list[Event]:
    t = snap.name
    if snap.newest_backup is None:
        out.unseen.add(f"backup.old:{t}:")
        return []
    events = []
    for vmid, newest in sorted(snap.newest_backup.items()):
        vm = snap.vms.get(vmid)
        if vm is None or vm.template:
            continue
        age = now - newest
        if age <= limits.backup_max_age:
            continue
        events.append(
            Event(
                key=f"backup.old:{t}:{vm.node}:{vmid}",
                code="backup.old",
                severity=Severity.WARNING,
                target=t,
                path=paths.vm(t, vmid),
                what=f"the newest backup of VM {vmid}{_name(vm)} is {age / 3600:.0f} h old "
                f"(limit {limits.backup_max_age / 3600:.0f} h)",
                fix=f"check the backup job (Datacenter > Backup), or run `vzdump {vmid}`",
                page=f"/t/{t}/vm/{vm.node}/{vmid}",
                node=vm.node,
                vmid=vmid,
            )
        )
    return events
