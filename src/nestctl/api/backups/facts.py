"""Backups through the Proxmox API, the facts: each guest's last backup, its task, its jobs.

Facts come from the backup storages' content (`content=backup`: volid, ctime, size, vmid,
notes), the vzdump tasks in /cluster/tasks (a task for one guest carries its VMID; a job's task
for many guests carries none, so a failed one's log is read for `ERROR: Backup of VM N failed -`
lines, as pve-manager PVE/VZDump.pm 14a22df writes them), /cluster/backup (jobs, `next-run`) and
/cluster/backup-info/not-backed-up (which counts every vzdump job, enabled or not). Findings
come from `backup_findings`, the one place that judges a guest's backups.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nestctl.api.actions import Api, Upid, parse_upid
from nestctl.parse import parse_uint

DEFAULT_MAX_AGE_DAYS = 7.0
MODES = ("snapshot", "suspend", "stop")
#: vzdump's `compress` values as the web UI offers them (BackupCompressionSelector.js).
COMPRESSIONS = ("zstd", "lzo", "gzip", "0")
_FAILED_LINE = re.compile(r"ERROR: Backup of VM (\d+) failed - (.*)", re.ASCII)
_STARTED_LINE = re.compile(r"INFO: Starting Backup of VM (\d+) ", re.ASCII)
#: How many failed many-guest vzdump tasks have their log read (newest first).
LOG_READS = 20


def guest_id(kind: str, vmid: int) -> str:
    """`qemu/101`, `lxc/300`: pve-exporter's `id` label, so series join on it."""
    return f"{kind}/{vmid}"


@dataclass(frozen=True)
class BackupVolume:
    volid: str
    storage: str
    node: str
    vmid: int
    ctime: int | None
    size: int | None
    format: str | None
    notes: str | None
    protected: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "volid": self.volid,
            "storage": self.storage,
            "node": self.node,
            "vmid": self.vmid,
            "ctime": self.ctime,
            "size": self.size,
            "format": self.format,
            "notes": self.notes,
            "protected": self.protected,
        }


@dataclass(frozen=True)
class BackupRun:
    """One guest's part in a vzdump task."""

    upid: str
    node: str
    vmid: int
    starttime: int
    endtime: int | None
    ok: bool | None  # None while it runs
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "upid": self.upid,
            "node": self.node,
            "starttime": self.starttime,
            "endtime": self.endtime,
            "ok": self.ok,
            "error": self.error,
        }


@dataclass(frozen=True)
class BackupJob:
    id: str
    schedule: str | None
    next_run: int | None
    storage: str | None
    enabled: bool
    mode: str | None
    all: bool
    vmids: tuple[int, ...]
    exclude: tuple[int, ...]
    pool: str | None
    node: str | None
    comment: str | None

    def covers(self, guest: Guest) -> bool | None:
        """Whether this job backs `guest` up (None: a pool job and the pool is not known)."""
        if self.node is not None and guest.node != self.node:
            return False
        if self.vmids:
            return guest.vmid in self.vmids
        if self.all:
            return guest.vmid not in self.exclude
        if self.pool is not None:
            return guest.pool == self.pool  # /cluster/resources names a guest's pool
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule": self.schedule,
            "next_run": self.next_run,
            "storage": self.storage,
            "enabled": self.enabled,
            "mode": self.mode,
            "all": self.all,
            "vmids": list(self.vmids),
            "exclude": list(self.exclude),
            "pool": self.pool,
            "node": self.node,
            "comment": self.comment,
        }


@dataclass
class Guest:
    kind: str  # qemu | lxc
    vmid: int
    node: str
    name: str | None
    pool: str | None = None
    template: bool = False

    @property
    def id(self) -> str:
        return guest_id(self.kind, self.vmid)


@dataclass
class BackupFacts:
    guests: list[Guest]
    volumes: list[BackupVolume]
    runs: list[BackupRun]
    jobs: list[BackupJob] | None  # None: could not read
    not_backed_up: set[int] | None  # Proxmox's own answer; None: could not read
    storages: dict[str, dict[str, Any]]  # storage id -> /nodes/{node}/storage entry
    problems: list[str] = field(default_factory=list)  # what could not be read, one sentence each
    unread_nodes: set[str] = field(
        default_factory=set
    )  # offline or unlisted: their storages unseen


@dataclass
class GuestBackup:
    guest: Guest
    last: BackupVolume | None
    last_run: BackupRun | None
    jobs: list[str]  # ids of the jobs that cover it
    disabled_only: bool  # covered only by disabled jobs
    covered: bool | None
    node_read: bool = True  # False: its node's storages could not be read (offline)

    @property
    def status(self) -> str:
        """ok | failed | stale | none | running, judged by `backup_findings`' rules."""
        return self._status

    _status: str = "unknown"

    def to_json(self, now: float) -> dict[str, Any]:
        last = self.last
        return {
            "id": self.guest.id,
            "type": self.guest.kind,
            "vmid": self.guest.vmid,
            "node": self.guest.node,
            "name": self.guest.name,
            "status": self._status,
            "last": last.to_json() if last else None,
            "age_seconds": int(now - last.ctime) if last and last.ctime else None,
            "last_task": self.last_run.to_json() if self.last_run else None,
            "jobs": list(self.jobs),
            "covered": self.covered,
            "restore": restore_command(self.guest, last) if last else None,
        }


def restore_command(guest: Guest, volume: BackupVolume) -> str:
    """What restores it on the node (never run from here): qmrestore ARCHIVE VMID / pct restore
    VMID ARCHIVE. Proxmox refuses while the guest exists, unless --force 1 (which overwrites)."""
    if guest.kind == "lxc":
        return f"pct restore {guest.vmid} {volume.volid}"
    return f"qmrestore {volume.volid} {guest.vmid}"


# -- reading --------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_uint(value)
    return None


def _vmid_list(value: Any) -> tuple[int, ...]:
    if not isinstance(value, str):
        return ()
    found = (parse_uint(v) for v in re.split(r"[,;\s]+", value, flags=re.ASCII))
    return tuple(v for v in found if v is not None)


def guests_from_resources(reply: Any) -> list[Guest]:
    out = []
    for r in reply if isinstance(reply, list) else []:
        if not isinstance(r, Mapping) or r.get("type") not in ("qemu", "lxc"):
            continue
        vmid, node = _int(r.get("vmid")), r.get("node")
        if vmid is None or not isinstance(node, str):
            continue
        name = r.get("name")
        pool = r.get("pool")
        out.append(
            Guest(
                str(r["type"]),
                vmid,
                node,
                name if isinstance(name, str) else None,
                pool if isinstance(pool, str) else None,
                template=bool(r.get("template")),
            )
        )
    return sorted(out, key=lambda g: g.vmid)


def parse_volumes(reply: Any, storage: str, node: str) -> list[BackupVolume]:
    out = []
    for r in reply if isinstance(reply, list) else []:
        if not isinstance(r, Mapping) or not isinstance(r.get("volid"), str):
            continue
        vmid = _int(r.get("vmid"))
        if vmid is None:
            continue
        notes = r.get("notes")
        fmt = r.get("format")
        out.append(
            BackupVolume(
                r["volid"],
                storage,
                node,
                vmid,
                _int(r.get("ctime")),
                _int(r.get("size")),
                fmt if isinstance(fmt, str) else None,
                notes if isinstance(notes, str) else None,
                bool(r.get("protected")),
            )
        )
    return out


def parse_jobs(reply: Any) -> list[BackupJob]:
    out = []
    for r in reply if isinstance(reply, list) else []:
        if not isinstance(r, Mapping) or not isinstance(r.get("id"), str):
            continue
        if r.get("type", "vzdump") != "vzdump":
            continue

        def text(key: str, r: Mapping[str, Any] = r) -> str | None:
            value = r.get(key)
            return value if isinstance(value, str) and value else None

        enabled = r.get("enabled", 1)
        out.append(
            BackupJob(
                id=r["id"],
                schedule=text("schedule"),
                next_run=_int(r.get("next-run")),
                storage=text("storage"),
                enabled=str(enabled) not in ("0", "False", "false"),
                mode=text("mode"),
                all=bool(_int(r.get("all")) or r.get("all") is True),
                vmids=_vmid_list(r.get("vmid")),
                exclude=_vmid_list(r.get("exclude")),
                pool=text("pool"),
                node=text("node"),
                comment=text("comment"),
            )
        )
    return out


def runs_from_tasks(
    tasks: Any, read_log: Callable[[Upid], list[str]], *, log_reads: int = LOG_READS
) -> tuple[list[BackupRun], list[str]]:
    """Each guest's part in the vzdump tasks of a task list. A task for one guest names it; a
    job's task (no id) is split by its log. Logs are read only of failed tasks (for the reason;
    a task that ended OK means every guest in it succeeded, which the backup volumes show)."""
    runs: list[BackupRun] = []
    problems: list[str] = []
    reads = 0
    items = [t for t in tasks if isinstance(t, Mapping)] if isinstance(tasks, list) else []
    items.sort(key=lambda t: _int(t.get("starttime")) or 0, reverse=True)
    for t in items:
        if t.get("type") != "vzdump" or not isinstance(t.get("upid"), str):
            continue
        upid = parse_upid(t["upid"])
        start = _int(t.get("starttime"))
        if upid is None or start is None:
            continue
        status = t.get("status")
        end = _int(t.get("endtime"))
        running = status is None or end is None
        ok = None if running else status == "OK"
        err = None if ok in (True, None) else str(status)
        vmid = _int(t.get("id"))
        if ok is not False or reads >= log_reads:
            if vmid is not None:
                runs.append(BackupRun(upid.text, upid.node, vmid, start, end, ok, err))
            continue
        # A failed task: its log says which guest failed and why ("job errors" says neither).
        reads += 1
        try:
            lines = read_log(upid)
        except Exception as exc:  # noqa: BLE001 - an unreadable log is a stated unknown
            problems.append(f"Could not read the log of backup task {upid.text}: {exc}.")
            lines = []
        failed = {int(m[1]): m[2] for line in lines if (m := _FAILED_LINE.search(line))}
        if vmid is not None:
            why = failed.get(vmid, err)
            runs.append(BackupRun(upid.text, upid.node, vmid, start, end, False, why))
            continue
        for line in lines:
            m = _STARTED_LINE.search(line)
            if m is None:
                continue
            guest = int(m[1])
            why = failed.get(guest)
            runs.append(BackupRun(upid.text, upid.node, guest, start, end, why is None, why))
    return runs, problems


def _read_storages(
    api: Api, nodes: list[str], problems: list[str]
) -> tuple[dict[str, dict[str, Any]], list[BackupVolume], set[str]]:
    """Each online node's backup storages and their backups (a shared storage read once):
    (storage id -> entry, volumes, nodes whose storages could not be listed)."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415

    storages: dict[str, dict[str, Any]] = {}
    volumes: list[BackupVolume] = []
    seen_shared: set[str] = set()
    unread: set[str] = set()
    for node in nodes:
        try:
            listed = api.request(
                "GET", f"/nodes/{quote(node, safe='')}/storage", {"content": "backup"}
            )
        except ApiError as exc:
            problems.append(f"Could not list the backup storages of node {node}: {exc}.")
            unread.add(node)
            continue
        for s in listed if isinstance(listed, list) else []:
            if not isinstance(s, Mapping) or not isinstance(s.get("storage"), str):
                continue
            sid = s["storage"]
            storages.setdefault(sid, dict(s))
            if s.get("shared"):
                if sid in seen_shared:
                    continue
                seen_shared.add(sid)
            path = f"/nodes/{quote(node, safe='')}/storage/{quote(sid, safe='')}/content"
            try:
                reply = api.request("GET", path, {"content": "backup"})
            except ApiError as exc:
                problems.append(f"Could not read storage {sid} on node {node}: {exc}.")
                continue
            volumes += parse_volumes(reply, sid, node)
    return storages, volumes, unread


def _read_jobs(api: Api, problems: list[str]) -> list[BackupJob] | None:
    """The cluster's backup jobs; None (and the problem said) when they could not be read."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415

    try:
        return parse_jobs(api.request("GET", "/cluster/backup"))
    except ApiError as exc:
        problems.append(f"Could not read the backup jobs: {exc}.")
        return None


def _runs_read(api: Api, tasks: Any, log_reads: int, problems: list[str]) -> list[BackupRun]:
    """The backup runs in a task list, reading at most `log_reads` task logs for their
    per-guest results; what could not be read goes to `problems`."""
    from nestctl.api.actions import task_log_tail  # noqa: PLC0415

    runs, more = runs_from_tasks(
        tasks, lambda upid: task_log_tail(api, upid, 10_000), log_reads=log_reads
    )
    problems += more
    return runs


def collect_backups(api: Api, *, log_reads: int = LOG_READS) -> BackupFacts:
    """Everything the backup view needs, in a bounded number of requests (one per node and
    backup storage, one task list, logs only of failed job tasks)."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415

    resources = api.request("GET", "/cluster/resources")
    guests = guests_from_resources(resources)
    nodes = sorted(
        str(r["node"])
        for r in (resources if isinstance(resources, list) else [])
        if isinstance(r, Mapping)
        and r.get("type") == "node"
        and r.get("status") == "online"
        and isinstance(r.get("node"), str)
    )
    problems: list[str] = []
    offline = {g.node for g in guests} - set(nodes)
    storages, volumes, unread = _read_storages(api, nodes, problems)
    unread |= offline
    try:
        tasks = api.request("GET", "/cluster/tasks")
    except ApiError as exc:
        tasks = []
        problems.append(f"Could not read the cluster's task list: {exc}.")
    runs = _runs_read(api, tasks, log_reads, problems)
    jobs = _read_jobs(api, problems)
    not_backed: set[int] | None
    try:
        reply = api.request("GET", "/cluster/backup-info/not-backed-up")
        not_backed = {
            v
            for r in (reply if isinstance(reply, list) else [])
            if isinstance(r, Mapping) and (v := _int(r.get("vmid"))) is not None
        }
    except ApiError as exc:
        not_backed = None
        problems.append(f"Could not read which guests no backup job covers: {exc}.")
    # An offline node's own storages are unseen: each of its guests says so (backup.unknown).
    return BackupFacts(guests, volumes, runs, jobs, not_backed, storages, problems, unread)


def collect_guest_backup(api: Api, guest: Guest, *, log_reads: int = 5) -> BackupFacts:
    """One guest's backup facts, for its own page: its node's backup storages (content for its
    VMID), that node's recent vzdump tasks, and the cluster's jobs."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415

    node = quote(guest.node, safe="")
    problems: list[str] = []
    storages: dict[str, dict[str, Any]] = {}
    volumes: list[BackupVolume] = []
    try:
        listed = api.request("GET", f"/nodes/{node}/storage", {"content": "backup"})
    except ApiError as exc:
        listed = []
        problems.append(f"Could not list the backup storages of node {guest.node}: {exc}.")
    for s in listed if isinstance(listed, list) else []:
        if not isinstance(s, Mapping) or not isinstance(s.get("storage"), str):
            continue
        sid = s["storage"]
        storages[sid] = dict(s)
        path = f"/nodes/{node}/storage/{quote(sid, safe='')}/content"
        try:
            reply = api.request("GET", path, {"content": "backup", "vmid": guest.vmid})
        except ApiError as exc:
            problems.append(f"Could not read storage {sid} on node {guest.node}: {exc}.")
            continue
        volumes += [v for v in parse_volumes(reply, sid, guest.node) if v.vmid == guest.vmid]
    try:
        tasks = api.request("GET", f"/nodes/{node}/tasks", {"typefilter": "vzdump", "limit": 100})
    except ApiError as exc:
        tasks = []
        problems.append(f"Could not read node {guest.node}'s task list: {exc}.")
    runs = _runs_read(api, tasks, log_reads, problems)
    runs = [r for r in runs if r.vmid == guest.vmid]
    jobs = _read_jobs(api, problems)
    return BackupFacts([guest], volumes, runs, jobs, None, storages, problems)
