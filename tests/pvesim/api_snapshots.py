"""Snapshot endpoints for VMs and containers: list, create, rollback, delete, config.

Follows qemu-server src/PVE/API2/Qemu.pm (e6352be), pve-container src/PVE/API2/LXC/Snapshot.pm
(94f5585) and pve-guest-common src/PVE/AbstractConfig.pm (4a8f6cb): reserved names are refused
before the task starts (500); everything else happens in the worker, so a locked guest, a name
already used or a storage without snapshots ends the *task* with Proxmox's text. Meanwhile the
config carries `lock: snapshot` (`rollback`, `snapshot-delete`), which every other change refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.pvesim.api_nodes import new_task
from tests.pvesim.ctconf import CtConf, CtSection
from tests.pvesim.handlers import ApiError, Ctx, handles, index
from tests.pvesim.storage import snapshot_problem

# Keys __snapshot_copy_config leaves out of a snapshot section.
_NOT_COPIED = {"snapstate", "snaptime", "vmstate", "lock", "digest", "description"}


@dataclass
class _Guest:
    kind: str  # qemu | lxc
    vmid: int
    obj: Any  # the simulator's Vm (or container)
    conf: Any  # .main, .sections, .touch(), .digest

    @property
    def word(self) -> str:  # guest_type(): QemuConfig 'VM', LXC::Config 'CT'
        return "VM" if self.kind == "qemu" else "CT"

    @property
    def running(self) -> bool:
        return bool(getattr(self.obj, "running", False))

    def section(self, name: str) -> dict[str, str] | None:
        got = self.conf.sections.get(name)
        if got is None or isinstance(got, dict):
            return got
        return got.values  # type: ignore[no-any-return]  # pve-container's CtSection

    def snapshots(self) -> dict[str, dict[str, str]]:
        out = {}
        for name in self.conf.sections:
            values = self.section(name)
            if not name.startswith("special:") and values is not None:
                out[name] = values
        return out

    def new_section(self, name: str, values: dict[str, str]) -> None:
        if isinstance(self.conf, CtConf):  # pve-container's sections keep their lxc.* lines
            self.conf.sections[name] = CtSection(values=values, lxc=list(self.conf.lxc))
        else:
            self.conf.sections[name] = values

    @property
    def errors(self) -> dict[str, str]:
        return getattr(self.obj, "task_errors", {})


def _container(node: Any, vmid: int) -> Any:
    """The node's container `vmid`, when the simulator models containers (branch i19ct)."""
    for attr in ("cts", "containers"):
        found = getattr(node, attr, None)
        if isinstance(found, dict) and vmid in found:
            return found[vmid]
    return None


def _guest(ctx: Ctx, kind: str) -> _Guest:
    if kind == "qemu":
        vm = ctx.vm
        return _Guest("qemu", vm.vmid, vm, vm.conf)
    node = ctx.node
    vmid = int(ctx.route.uri_params["vmid"])
    ct = _container(node, vmid)
    if ct is None:
        raise ApiError(
            500, f"Configuration file 'nodes/{node.name}/lxc/{vmid}.conf' does not exist"
        )
    return _Guest("lxc", vmid, ct, ct.conf)


def _snapname(ctx: Ctx) -> str:
    return ctx.route.uri_params.get("snapname") or ctx.text("snapname") or ""


def _task(ctx: Ctx, guest: _Guest, kind: str, finish: Callable[[], str | None]) -> Any:
    task = new_task(ctx.cluster, ctx.node, kind, str(guest.vmid), ctx.who.name, finish)
    return task.upid


# -- list -----------------------------------------------------------------------------------------


def _list(ctx: Ctx, kind: str) -> Any:
    guest = _guest(ctx, kind)
    out: list[dict[str, Any]] = []
    for name, snap in guest.snapshots().items():
        item: dict[str, Any] = {
            "name": name,
            "snaptime": int(snap.get("snaptime", "0") or 0),
            "description": snap.get("description", ""),
        }
        if kind == "qemu":
            item["vmstate"] = 1 if snap.get("vmstate") else 0
        if snap.get("parent"):
            item["parent"] = snap["parent"]
        if snap.get("snapstate"):
            item["snapstate"] = snap["snapstate"]
        out.append(item)
    current: dict[str, Any] = {
        "name": "current",
        "digest": guest.conf.digest,
        "running": 1 if guest.running else 0,
        "description": "You are here!",
    }
    if guest.conf.main.get("parent"):
        current["parent"] = guest.conf.main["parent"]
    out.append(current)
    return out


# -- create ---------------------------------------------------------------------------------------


def _create(ctx: Ctx, kind: str) -> Any:
    guest = _guest(ctx, kind)
    name = _snapname(ctx)
    if name == "current":
        raise ApiError(500, "unable to use snapshot name 'current' (reserved name)")
    if kind == "qemu" and name.lower() == "pending":
        raise ApiError(500, "unable to use snapshot name 'pending' (reserved name)")
    if kind == "lxc" and name == "vzdump":
        raise ApiError(500, "unable to use snapshot name 'vzdump' (reserved name)")
    vmstate = kind == "qemu" and ctx.flag("vmstate")
    description = ctx.text("description")
    conf, main = guest.conf, guest.conf.main
    storage = ctx.cluster.storage
    # __snapshot_prepare, run by the worker as soon as it starts:
    problem = None
    if main.get("template") == "1":
        problem = "you can't take a snapshot if it's a template"
    elif "lock" in main:
        problem = f"{guest.word} is locked ({main['lock']})"
    elif name in guest.snapshots():
        problem = f"snapshot name '{name}' already used"
    else:
        problem = snapshot_problem(storage, main)
    if problem is not None:
        return _task(ctx, guest, f"{'qm' if kind == 'qemu' else 'vz'}snapshot", lambda: problem)
    main["lock"] = "snapshot"
    for snap in guest.snapshots().values():  # no bogus cycle (a child naming the new name)
        if snap.get("parent") == name:
            del snap["parent"]
    values = {k: v for k, v in main.items() if k not in _NOT_COPIED}
    values.update(snapstate="prepare", snaptime=str(int(time.time())))
    if description:
        values["description"] = description
    if vmstate and guest.running:
        disk = next((v for k, v in sorted(main.items()) if k.startswith("scsi")), "local-lvm:x")
        values["vmstate"] = f"{disk.split(':')[0]}:vm-{guest.vmid}-state-{name}"
        values["runningmachine"] = getattr(guest.obj, "running_machine", None) or "pc"
        values["runningcpu"] = getattr(guest.obj, "running_cpu", None) or "kvm64"
    guest.new_section(name, values)
    conf.touch()

    def finish() -> str | None:
        error = guest.errors.get("snapshot")
        snap = guest.section(name)
        if error is not None or snap is None:  # snapshot create failed: starting cleanup
            guest.conf.sections.pop(name, None)
            main.pop("lock", None)
            conf.touch()
            return error or f"snapshot '{name}' does not exist"
        snap.pop("snapstate", None)
        main.pop("lock", None)
        main["parent"] = name
        conf.touch()
        return None

    return _task(ctx, guest, f"{'qm' if kind == 'qemu' else 'vz'}snapshot", finish)


# -- rollback -------------------------------------------------------------------------------------


def _rollback(ctx: Ctx, kind: str) -> Any:
    guest = _guest(ctx, kind)
    name = _snapname(ctx)
    start = ctx.flag("start")
    if start:  # checked up front: rollback must not power a guest on for a user who may not
        ctx.require(f"/vms/{guest.vmid}", "VM.PowerMgmt")
    conf, main = guest.conf, guest.conf.main
    snap = guest.section(name)
    prefix = "qm" if kind == "qemu" else "vz"
    problem = None
    if main.get("template") == "1":
        problem = "you can't rollback if vm is a template"
    elif snap is None:
        problem = f"snapshot '{name}' does not exist"
    elif snap.get("snapstate"):
        problem = f"unable to rollback to incomplete snapshot (snapstate = {snap['snapstate']})"
    elif "lock" in main:
        problem = f"{guest.word} is locked ({main['lock']})"
    if problem is not None:
        return _task(ctx, guest, f"{prefix}rollback", lambda: problem)
    assert snap is not None
    if guest.running:  # __snapshot_rollback_vm_stop
        guest.obj.status, guest.obj.pid = "stopped", None
        if hasattr(guest.obj, "running_machine"):
            guest.obj.running_machine = None
    main["lock"] = "rollback"
    conf.touch()

    def finish() -> str | None:
        error = guest.errors.get("rollback")
        if error is not None:
            return error  # the lock stays, as after a failed rollback in Proxmox
        fresh = {k: v for k, v in snap.items() if k not in _NOT_COPIED}
        fresh.pop("runningmachine", None)
        fresh.pop("runningcpu", None)
        main.clear()
        main.update(fresh)
        main["parent"] = name
        if isinstance(conf, CtConf):  # the raw lxc.* lines come back too
            section = conf.sections.get(name)
            conf.lxc = list(section.lxc) if isinstance(section, CtSection) else conf.lxc
        if getattr(conf, "pending", None) is not None:
            conf.pending.clear()
            conf.pending_delete.clear()
        conf.touch()
        if (snap.get("vmstate") or start) and kind == "qemu":
            obj = guest.obj
            obj.status, obj.pid, obj.started = "running", ctx.cluster.next_pid(), time.time()
            obj.running_machine = snap.get("runningmachine") or obj.running_machine
            obj.running_cpu = snap.get("runningcpu") or main.get("cpu", "kvm64")
        elif start:
            guest.obj.status = "running"
        return None

    return _task(ctx, guest, f"{prefix}rollback", finish)


# -- delete ---------------------------------------------------------------------------------------


def _delete(ctx: Ctx, kind: str) -> Any:
    guest = _guest(ctx, kind)
    name = _snapname(ctx)
    force = ctx.flag("force")
    conf, main = guest.conf, guest.conf.main
    prefix = "qm" if kind == "qemu" else "vz"
    problem = None
    if guest.section(name) is None:
        problem = f"snapshot '{name}' does not exist"
    elif "lock" in main and not force:
        problem = f"{guest.word} is locked ({main['lock']})"
    if problem is not None:
        return _task(ctx, guest, f"{prefix}delsnapshot", lambda: problem)
    main["lock"] = "snapshot-delete"
    conf.touch()

    def finish() -> str | None:
        error = guest.errors.get("delsnapshot")
        if error is not None and not force:
            return error
        snap = guest.section(name) or {}
        parent = snap.get("parent")
        for other in [main, *guest.snapshots().values()]:  # children move up to its parent
            if other.get("parent") == name:
                if parent:
                    other["parent"] = parent
                else:
                    other.pop("parent", None)
        guest.conf.sections.pop(name, None)
        main.pop("lock", None)
        conf.touch()
        return None

    return _task(ctx, guest, f"{prefix}delsnapshot", finish)


def _get_config(ctx: Ctx, kind: str) -> Any:
    guest = _guest(ctx, kind)
    snap = guest.section(_snapname(ctx))
    if snap is None:
        raise ApiError(500, f"snapshot '{_snapname(ctx)}' does not exist")
    return dict(snap)


def _put_config(ctx: Ctx, kind: str) -> Any:
    guest = _guest(ctx, kind)
    description = ctx.text("description")
    if description is None:
        return None
    if "lock" in guest.conf.main:
        raise ApiError(500, f"{guest.word} is locked ({guest.conf.main['lock']})")
    snap = guest.section(_snapname(ctx))
    if snap is None:
        raise ApiError(500, f"snapshot '{_snapname(ctx)}' does not exist")
    snap["description"] = description
    guest.conf.touch()
    return None


def _register(kind: str) -> None:
    base = f"/nodes/{{node}}/{kind}/{{vmid}}/snapshot"
    handles("GET", base)(lambda ctx: _list(ctx, kind))
    handles("POST", base)(lambda ctx: _create(ctx, kind))
    handles("GET", base + "/{snapname}")(lambda ctx: index("rollback", "config", key="cmd"))
    handles("DELETE", base + "/{snapname}")(lambda ctx: _delete(ctx, kind))
    handles("POST", base + "/{snapname}/rollback")(lambda ctx: _rollback(ctx, kind))
    handles("GET", base + "/{snapname}/config")(lambda ctx: _get_config(ctx, kind))
    handles("PUT", base + "/{snapname}/config")(lambda ctx: _put_config(ctx, kind))


for _kind in ("qemu", "lxc"):
    _register(_kind)
