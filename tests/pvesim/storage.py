"""Storages, backup volumes and backup jobs of the simulated cluster (for snapshots and vzdump).

Storage definitions are cluster-wide, as /etc/pve/storage.cfg is; a non-shared storage holds
its volumes per node. Whether a disk can take a snapshot follows pve-storage's
`volume_has_feature('snapshot')`: file storages (dir, nfs, cifs, cephfs, glusterfs) only for
qcow2 images, LVM (thick) never, iSCSI never; lvmthin, zfspool, rbd and btrfs always.
cluster.json may hold `storage` (a list of definitions), `backups` (volumes) and `backup_jobs`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

FILE_TYPES = frozenset({"dir", "nfs", "cifs", "cephfs", "glusterfs"})
SNAPSHOT_TYPES = frozenset({"lvmthin", "zfspool", "rbd", "btrfs", "zfs"})
_DISK = re.compile(r"(ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0|rootfs|mp\d+")


@dataclass
class StorageDef:
    storage: str
    type: str  # dir | lvm | lvmthin | zfspool | nfs | pbs | ...
    content: set[str] = field(default_factory=set)
    shared: bool = False
    nodes: list[str] | None = None  # None: every node
    path: str | None = None
    total: int = 107_374_182_400
    used: int = 21_474_836_480
    snapshot_as_volume_chain: bool = False  # PVE 9: qcow2 snapshots on LVM thick

    def on(self, node: str) -> bool:
        return self.nodes is None or node in self.nodes


@dataclass
class BackupVolume:
    volid: str  # local:backup/vzdump-qemu-101-2026_12_07-01_00_02.vma.zst
    vmid: int
    ctime: int
    size: int
    subtype: str  # qemu | lxc
    notes: str | None = None
    protected: bool = False

    @property
    def format(self) -> str:
        name = self.volid.split("/")[-1]
        m = re.search(r"\.(vma|tar)(\.(zst|gz|lzo))?$", name)
        return m.group(0)[1:] if m else "pbs-" + ("vm" if self.subtype == "qemu" else "ct")


@dataclass
class BackupJob:
    id: str
    schedule: str = "21:00"
    storage: str = "local"
    vmid: str | None = None  # comma list; None with all=True
    all: bool = False
    exclude: str | None = None
    pool: str | None = None
    node: str | None = None
    mode: str = "snapshot"
    compress: str = "zstd"
    enabled: bool = True
    comment: str | None = None


@dataclass
class StorageState:
    storages: dict[str, StorageDef] = field(default_factory=dict)
    # (storage, node) -> volumes; a shared storage keeps them under node "" (one copy)
    volumes: dict[tuple[str, str], list[BackupVolume]] = field(default_factory=dict)
    jobs: list[BackupJob] = field(default_factory=list)
    vzdump_errors: dict[int, str] = field(default_factory=dict)  # vmid -> why its backup fails
    backup_seconds: float | None = None  # None: the cluster's task_seconds

    def define(self, storage: StorageDef) -> StorageDef:
        self.storages[storage.storage] = storage
        return storage

    def volumes_on(self, storage: str, node: str) -> list[BackupVolume]:
        sdef = self.storages[storage]
        return self.volumes.setdefault((storage, "" if sdef.shared else node), [])

    def add_backup(
        self,
        storage: str,
        node: str,
        vmid: int,
        *,
        subtype: str = "qemu",
        ctime: int | None = None,
        size: int = 1_234_567_890,
        notes: str | None = None,
    ) -> BackupVolume:
        ctime = int(time.time()) if ctime is None else ctime
        stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.gmtime(ctime))
        sdef = self.storages[storage]
        if sdef.type == "pbs":
            kind = "vm" if subtype == "qemu" else "ct"
            iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ctime))
            volid = f"{storage}:backup/{kind}/{vmid}/{iso}"
        else:
            ext = "vma.zst" if subtype == "qemu" else "tar.zst"
            volid = f"{storage}:backup/vzdump-{subtype}-{vmid}-{stamp}.{ext}"
        volume = BackupVolume(volid, vmid, ctime, size, subtype, notes)
        self.volumes_on(storage, node).append(volume)
        return volume


def default_storages() -> StorageState:
    """What a fresh Proxmox VE install has: `local` (dir) and `local-lvm` (lvmthin)."""
    state = StorageState()
    state.define(StorageDef("local", "dir", {"backup", "iso", "vztmpl"}, path="/var/lib/vz"))
    state.define(StorageDef("local-lvm", "lvmthin", {"images", "rootdir"}))
    return state


def load_storage(meta: dict[str, Any]) -> StorageState:
    state = default_storages()
    for raw in meta.get("storage", []):
        state.define(
            StorageDef(
                raw["storage"],
                raw["type"],
                set(raw.get("content", "").split(",")) - {""},
                shared=bool(raw.get("shared", False)),
                nodes=raw.get("nodes"),
                path=raw.get("path"),
            )
        )
    for raw in meta.get("backups", []):
        state.add_backup(
            raw["storage"],
            raw.get("node", ""),
            int(raw["vmid"]),
            subtype=raw.get("subtype", "qemu"),
            ctime=raw.get("ctime"),
            size=int(raw.get("size", 1_234_567_890)),
            notes=raw.get("notes"),
        )
    for raw in meta.get("backup_jobs", []):
        state.jobs.append(BackupJob(**raw))
    return state


# -- what a guest's disks allow -------------------------------------------------------------------


def disk_volumes(values: dict[str, str]) -> list[tuple[str, str]]:
    """(key, volume) of every disk a config section holds (not CD-ROMs, not `none`)."""
    out = []
    for key, value in sorted(values.items()):
        if not _DISK.fullmatch(key):
            continue
        first = value.split(",")[0]
        if "media=cdrom" in value or first in ("none", "cdrom") or ":" not in first:
            continue
        out.append((key, first))
    return out


def snapshot_problem(state: StorageState, values: dict[str, str]) -> str | None:
    """None when every disk's storage can snapshot it; else the task's error text."""
    for _key, volume in disk_volumes(values):
        storage, _, name = volume.partition(":")
        sdef = state.storages.get(storage)
        if sdef is None:
            return f"storage '{storage}' does not exist"
        if sdef.type in SNAPSHOT_TYPES:
            continue
        qcow2 = name.endswith(".qcow2")
        if sdef.type in FILE_TYPES and qcow2:
            continue
        if sdef.type == "lvm" and sdef.snapshot_as_volume_chain and qcow2:
            continue
        return "snapshot feature is not available"
    return None


# -- calendar events (the subset backup jobs use) -------------------------------------------------

_DOW = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def next_run(schedule: str, now: float) -> int | None:
    """The next time `schedule` fires after `now` (UTC), for `[dow[,dow|..dow]] HH:MM`,
    `daily`, `weekly`; None for anything else (Proxmox then omits next-run too)."""
    text = schedule.strip().lower()
    text = {"daily": "00:00", "weekly": "mon 00:00"}.get(text, text)
    m = re.fullmatch(r"(?:([a-z,.]+)\s+)?(\d{1,2}):(\d{2})", text)
    if m is None:
        return None
    days = set(range(7))
    if m.group(1):
        days = set()
        for part in m.group(1).split(","):
            lo, _, hi = part.partition("..")
            if lo not in _DOW or (hi and hi not in _DOW):
                return None
            a, b = _DOW.index(lo), _DOW.index(hi or lo)
            days |= set(range(a, b + 1)) if a <= b else set(range(a, 7)) | set(range(b + 1))
    hour, minute = int(m.group(2)), int(m.group(3))
    day0 = int(now) // 86400 * 86400
    for offset in range(8):
        t = day0 + offset * 86400 + hour * 3600 + minute * 60
        weekday = (3 + (t // 86400)) % 7  # 1970-01-01 was a Thursday
        if t > now and weekday in days:
            return t
    return None
