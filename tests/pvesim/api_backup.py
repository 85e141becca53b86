"""Storage and backup endpoints: node storages, backup content, vzdump, backup jobs.

vzdump follows pve-manager PVE/VZDump.pm (14a22df): one task (`vzdump`, id the VMID when one
guest is named), `lock: backup` on each guest while it runs, per-guest lines
`INFO: Starting Backup of VM 101 (qemu)` / `ERROR: Backup of VM 101 failed - ...` /
`INFO: Finished Backup of VM 101 (00:00:12)`, and `job errors` as the task's exit status when
any guest failed. A failure is injected with `cluster.storage.vzdump_errors[vmid] = "why"`.
Backup jobs and not-backed-up follow PVE/API2/Backup.pm and PVE/API2/Cluster/BackupInfo.pm:
every vzdump job counts (enabled or not) for not-backed-up.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tests.pvesim.api_nodes import new_task
from tests.pvesim.cluster import Cluster, Node
from tests.pvesim.handlers import ApiError, Ctx, handles
from tests.pvesim.storage import BackupJob, StorageDef, next_run


def _storage(ctx: Ctx) -> StorageDef:
    name = ctx.route.uri_params["storage"]
    sdef = ctx.cluster.storage.storages.get(name)
    if sdef is None:
        raise ApiError(500, f"storage '{name}' does not exist")
    if not sdef.on(ctx.node.name):
        raise ApiError(500, f"storage '{name}' is not available on node '{ctx.node.name}'")
    return sdef


def _storage_entry(sdef: StorageDef) -> dict[str, Any]:
    avail = sdef.total - sdef.used
    return {
        "storage": sdef.storage,
        "type": sdef.type,
        "content": ",".join(sorted(sdef.content)),
        "active": 1,
        "enabled": 1,
        "shared": 1 if sdef.shared else 0,
        "total": sdef.total,
        "used": sdef.used,
        "avail": avail,
        "used_fraction": sdef.used / sdef.total,
    }


@handles("GET", "/storage")
def storage_config(ctx: Ctx) -> Any:
    kind = ctx.text("type")
    out = []
    for sdef in ctx.cluster.storage.storages.values():
        if kind is None or sdef.type == kind:
            entry: dict[str, Any] = {
                "storage": sdef.storage,
                "type": sdef.type,
                "content": ",".join(sorted(sdef.content)),
                "digest": "0" * 40,
            }
            if sdef.shared:
                entry["shared"] = 1
            if sdef.nodes is not None:
                entry["nodes"] = ",".join(sdef.nodes)
            if sdef.path is not None:
                entry["path"] = sdef.path
            out.append(entry)
    return out


@handles("GET", "/nodes/{node}/storage")
def node_storages(ctx: Ctx) -> Any:
    node = ctx.node
    wanted = {c for c in (ctx.text("content") or "").split(",") if c}
    only = ctx.text("storage")
    out = []
    for sdef in ctx.cluster.storage.storages.values():
        if not sdef.on(node.name) or (only and sdef.storage != only):
            continue
        if wanted and not wanted & sdef.content:
            continue
        if not ctx.users.privileges(ctx.who, f"/storage/{sdef.storage}") & {
            "Datastore.Audit",
            "Datastore.AllocateSpace",
        }:
            continue
        out.append(_storage_entry(sdef))
    return out


@handles("GET", "/nodes/{node}/storage/{storage}/content")
def storage_content(ctx: Ctx) -> Any:
    sdef = _storage(ctx)
    content = ctx.text("content")
    vmid = ctx.integer("vmid")
    if content not in (None, "backup") or "backup" not in sdef.content:
        return []
    out = []
    for vol in ctx.cluster.storage.volumes_on(sdef.storage, ctx.node.name):
        if vmid is not None and vol.vmid != vmid:
            continue
        entry: dict[str, Any] = {
            "volid": vol.volid,
            "format": vol.format,
            "size": vol.size,
            "ctime": vol.ctime,
            "content": "backup",
            "vmid": vol.vmid,
            "subtype": vol.subtype,
        }
        if vol.notes is not None:
            entry["notes"] = vol.notes
        if vol.protected:
            entry["protected"] = 1
        out.append(entry)
    return out


# -- vzdump ---------------------------------------------------------------------------------------


def _guests_on(node: Node) -> dict[int, tuple[str, Any]]:
    out: dict[int, tuple[str, Any]] = {vmid: ("qemu", vm) for vmid, vm in node.vms.items()}
    for attr in ("cts", "containers"):  # containers, when the simulator models them
        for vmid, ct in (getattr(node, attr, None) or {}).items():
            out[vmid] = ("lxc", ct)
    return out


def _vmid_list(text: str | None) -> list[int]:
    return [int(v) for v in re.split(r"[,;\s]+", text or "") if v.isdigit()]


@handles("POST", "/nodes/{node}/vzdump")
def vzdump(ctx: Ctx) -> Any:
    node, cluster = ctx.node, ctx.cluster
    state = cluster.storage
    guests = _guests_on(node)
    if ctx.flag("all"):
        excluded = set(_vmid_list(ctx.text("exclude")))
        chosen = [v for v in sorted(guests) if v not in excluded]
    else:
        chosen = [v for v in _vmid_list(ctx.text("vmid")) if v in guests]
        if not chosen and ctx.text("vmid"):
            raise ApiError(500, "No guest found on this node")  # none of them lives here
    storage_name = ctx.text("storage") or "local"
    for vmid in chosen:
        ctx.require(f"/vms/{vmid}", "VM.Backup")
    ctx.require(f"/storage/{storage_name}", "Datastore.AllocateSpace")
    mode = ctx.text("mode") or "snapshot"
    compress = ctx.text("compress") or "0"
    template = ctx.text("notes-template")
    ident = str(chosen[0]) if len(chosen) == 1 else ""
    sdef = state.storages.get(storage_name)
    problem = None
    if sdef is None:
        problem = f"storage '{storage_name}' does not exist"
    elif "backup" not in sdef.content:
        problem = f"can't use storage '{storage_name}' for backups - wrong content type"
    locked: dict[int, str] = {}
    if problem is None:
        for vmid in chosen:
            main = guests[vmid][1].conf.main
            if "lock" in main:
                locked[vmid] = main["lock"]
            else:
                main["lock"] = "backup"
                guests[vmid][1].conf.touch()
    started = time.time()

    def finish() -> str | None:
        if problem is not None:
            return problem
        assert sdef is not None
        errors = 0
        for vmid in chosen:
            kind, guest = guests[vmid]
            word = "VM" if kind == "qemu" else "CT"
            task.log.append(f"INFO: Starting Backup of VM {vmid} ({kind})")
            why = state.vzdump_errors.get(vmid)
            if vmid in locked:
                why = f"{word} is locked ({locked[vmid]})"
            else:
                guest.conf.main.pop("lock", None)
                guest.conf.touch()
            if why is not None:
                task.log.append(f"ERROR: Backup of VM {vmid} failed - {why}")
                errors += 1
                continue
            task.log.append(f"INFO: Backup started at {time.strftime('%Y-%m-%d %H:%M:%S')}")
            task.log.append(f"INFO: backup mode: {mode}")
            notes = None
            if template:
                name = guest.conf.main.get("name" if kind == "qemu" else "hostname", "")
                notes = (
                    template.replace("{{guestname}}", name)
                    .replace("{{vmid}}", str(vmid))
                    .replace("{{node}}", node.name)
                    .replace("{{cluster}}", cluster.name or "")
                )
            vol = state.add_backup(
                sdef.storage, node.name, vmid, subtype=kind, ctime=int(started), notes=notes
            )
            if compress in ("0",) and sdef.type != "pbs":
                vol.volid = re.sub(r"\.(vma|tar)\.zst$", r".\1", vol.volid)
            elif compress in ("gzip",):
                vol.volid = re.sub(r"\.zst$", ".gz", vol.volid)
            elif compress in ("1", "lzo"):
                vol.volid = re.sub(r"\.zst$", ".lzo", vol.volid)
            task.log.append(f"INFO: creating vzdump archive '{vol.volid}'")
            task.log.append(f"INFO: Finished Backup of VM {vmid} (00:00:01)")
        if errors:
            task.log.append("INFO: Backup job finished with errors")
            return "job errors"
        task.log.append("INFO: Backup job finished successfully")
        return None

    seconds = state.backup_seconds
    task = new_task(cluster, node, "vzdump", ident, ctx.who.name, finish, seconds=seconds)
    return task.upid


# -- jobs -----------------------------------------------------------------------------------------


def _job_entry(job: BackupJob) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": job.id,
        "type": "vzdump",
        "schedule": job.schedule,
        "storage": job.storage,
        "mode": job.mode,
        "compress": job.compress,
        "enabled": 1 if job.enabled else 0,
    }
    for key in ("vmid", "exclude", "pool", "node", "comment"):
        value = getattr(job, key)
        if value is not None:
            entry[key] = value
    if job.all:
        entry["all"] = 1
    nxt = next_run(job.schedule, time.time())
    if nxt is not None:
        entry["next-run"] = nxt
    return entry


@handles("GET", "/cluster/backup")
def backup_jobs(ctx: Ctx) -> Any:
    return [_job_entry(j) for j in ctx.cluster.storage.jobs]


@handles("GET", "/cluster/backup/{id}")
def backup_job(ctx: Ctx) -> Any:
    wanted = ctx.route.uri_params["id"]
    for job in ctx.cluster.storage.jobs:
        if job.id == wanted:
            return _job_entry(job)
    raise ApiError(500, f"job '{wanted}' does not exist")


def included(cluster: Cluster, job: BackupJob) -> set[int]:
    """PVE::VZDump::get_included_guests: vmid list, all (minus exclude) or pool; node-limited."""
    every = {vmid: node.name for node in cluster.nodes.values() for vmid in _guests_on(node)}
    if job.vmid is not None:
        chosen = set(_vmid_list(job.vmid)) & set(every)
    elif job.all:
        chosen = set(every) - set(_vmid_list(job.exclude))
    else:
        chosen = set()  # pools are not simulated
    if job.node is not None:
        chosen = {v for v in chosen if every[v] == job.node}
    return chosen


@handles("GET", "/cluster/backup-info/not-backed-up")
def not_backed_up(ctx: Ctx) -> Any:
    covered: set[int] = set()
    for job in ctx.cluster.storage.jobs:
        covered |= included(ctx.cluster, job)
    out = []
    for node in ctx.cluster.nodes.values():
        for vmid, (kind, guest) in sorted(_guests_on(node).items()):
            if vmid in covered:
                continue
            entry: dict[str, Any] = {"vmid": vmid, "type": kind}
            name = guest.conf.main.get("name" if kind == "qemu" else "hostname")
            if name:
                entry["name"] = name
            out.append(entry)
    return sorted(out, key=lambda e: e["vmid"])
