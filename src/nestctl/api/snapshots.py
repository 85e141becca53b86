"""Guest snapshots through the Proxmox API: the tree, Proxmox's name rule, and the four actions.

Pure parts (name check, tree, storage support) take parsed replies; the actions send only the
requests Proxmox's schema has and return the task id, which the caller follows to its end
(`nestctl.api.actions.follow_task`). Sources: qemu-server src/PVE/API2/Qemu.pm (e6352be),
pve-container src/PVE/API2/LXC/Snapshot.pm (94f5585), pve-common src/PVE/JSONSchema.pm
(f665029), pve-guest-common src/PVE/AbstractConfig.pm (4a8f6cb).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from nestctl.api.actions import Api, Upid, _task

#: pve-common JSONSchema.pm: `$CONFIGID_RE = qr/[a-z][a-z0-9_-]+/i` (so two characters at least),
#: and the `pve-snapshot-name` standard option's maxLength 40.
CONFIGID_RE = re.compile(r"[a-z][a-z0-9_-]+", re.IGNORECASE | re.ASCII)
SNAPNAME_MAX = 40
KINDS = ("qemu", "lxc")

# Which storage types take a disk snapshot (pve-storage's volume_has_feature('snapshot')).
_SNAPSHOT_TYPES = frozenset({"lvmthin", "zfspool", "zfs", "rbd", "btrfs"})
_FILE_TYPES = frozenset({"dir", "nfs", "cifs", "cephfs", "glusterfs"})
_DISK_KEY = re.compile(r"(?:ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0|rootfs|mp\d+", re.ASCII)


def snapname_problem(name: str, kind: str = "qemu") -> str | None:
    """Why Proxmox refuses `name` as a snapshot name, in one sentence; None when it accepts it.

    The schema's check (pve-configid, maxLength 40) and the reserved names the API code refuses:
    `current` for both, `pending` (any case) for VMs (Qemu.pm), `vzdump` for containers
    (LXC/Snapshot.pm).
    """
    if not name:
        return "A snapshot needs a name."
    if len(name) > SNAPNAME_MAX:
        return f"A snapshot name may have at most {SNAPNAME_MAX} characters."
    if not CONFIGID_RE.fullmatch(name):
        return (
            "A snapshot name starts with a letter and has at least two characters: "
            "letters, digits, '-' and '_' only."
        )
    if name == "current" or (kind == "qemu" and name.lower() == "pending"):
        return f"'{name}' is a name Proxmox keeps for itself."
    if kind == "lxc" and name == "vzdump":
        return "'vzdump' is a name Proxmox keeps for itself."
    return None


def safety_name(profile: str, now: float, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """`nestctl-before-<profile>-<YYYYMMDD>`, kept within Proxmox's 40 characters (the profile
    part is cut), with `-2`, `-3`... when that name is taken already (a second change that day)."""
    date = time.strftime("%Y%m%d", time.gmtime(now))
    for n in range(1, 100):
        suffix = f"-{date}" + (f"-{n}" if n > 1 else "")
        head = "nestctl-before-"
        room = SNAPNAME_MAX - len(head) - len(suffix)
        name = head + profile[:room].rstrip("-_") + suffix
        if name not in taken:
            return name
    return f"nestctl-before-{date}-{int(now) % 100000}"


# -- the tree -------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    name: str
    parent: str | None
    description: str
    snaptime: int | None
    vmstate: bool | None  # RAM included (VMs only; None for containers)
    snapstate: str | None = None  # "prepare"/"delete" while a task works on it
    current: bool = False  # the one "You are here!" hangs under
    children: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parent": self.parent,
            "description": self.description,
            "snaptime": self.snaptime,
            "vmstate": self.vmstate,
            "snapstate": self.snapstate,
            "current": self.current,
            "children": list(self.children),
        }


@dataclass
class SnapshotTree:
    snapshots: dict[str, Snapshot]
    roots: list[str]
    current_parent: str | None  # the snapshot the guest's state descends from
    running: bool | None
    digest: str | None

    def rows(self) -> list[tuple[int, Snapshot | None]]:
        """Depth-first (depth, snapshot), oldest first; None marks "now" under its parent."""
        out: list[tuple[int, Snapshot | None]] = []

        def walk(name: str, depth: int) -> None:
            snap = self.snapshots[name]
            out.append((depth, snap))
            for child in snap.children:
                walk(child, depth + 1)
            if snap.current:
                out.append((depth + 1, None))

        for root in self.roots:
            walk(root, 0)
        if self.current_parent is None:
            out.append((0, None))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshots": [s.to_json() for s in self.ordered()],
            "current_parent": self.current_parent,
            "running": self.running,
        }

    def ordered(self) -> list[Snapshot]:
        return [s for _d, s in self.rows() if s is not None]


def build_tree(reply: Any) -> SnapshotTree:
    """The tree from a snapshot list reply (hostile input: anything not a snapshot is skipped,
    a parent that is missing or makes a cycle makes the snapshot a root)."""
    items = [r for r in reply if isinstance(r, Mapping)] if isinstance(reply, list) else []
    snaps: dict[str, Snapshot] = {}
    current: Mapping[str, Any] | None = None
    for item in items:
        name = item.get("name")
        if not isinstance(name, str) or not name:
            continue
        if name == "current":
            current = item
            continue
        parent = item.get("parent")
        snaptime = item.get("snaptime")
        vmstate = item.get("vmstate")
        snaps[name] = Snapshot(
            name=name,
            parent=parent if isinstance(parent, str) and parent else None,
            description=str(item.get("description") or ""),
            snaptime=snaptime if isinstance(snaptime, int) and snaptime > 0 else None,
            vmstate=None if vmstate is None else bool(vmstate),
            snapstate=str(item["snapstate"]) if item.get("snapstate") else None,
        )
    for snap in snaps.values():  # a parent that is gone or leads round in a circle: a root
        seen = {snap.name}
        walk = snap.parent
        while walk is not None and walk in snaps and walk not in seen:
            seen.add(walk)
            walk = snaps[walk].parent
        if snap.parent not in snaps or walk in seen:
            snap.parent = None
    for snap in sorted(snaps.values(), key=lambda s: (s.snaptime or 0, s.name)):
        if snap.parent is not None:
            snaps[snap.parent].children.append(snap.name)
    roots = [
        s.name
        for s in sorted(snaps.values(), key=lambda s: (s.snaptime or 0, s.name))
        if s.parent is None
    ]
    parent = current.get("parent") if current is not None else None
    current_parent = parent if isinstance(parent, str) and parent in snaps else None
    if current_parent is not None:
        snaps[current_parent].current = True
    running = current.get("running") if current is not None else None
    digest = current.get("digest") if current is not None else None
    return SnapshotTree(
        snaps,
        roots,
        current_parent,
        None if running is None else bool(running),
        digest if isinstance(digest, str) else None,
    )


SAFETY_PREFIX = "nestctl-before-"


def latest_safety(tree: SnapshotTree, profile: str | None = None) -> Snapshot | None:
    """The newest snapshot `vm enable` took (`nestctl-before-<profile>-<date>`), optionally for
    one profile: what `vm disable --rollback` / `snapshot rollback --before-nestctl` go back to."""
    found = [
        s
        for s in tree.snapshots.values()
        if s.name.startswith(SAFETY_PREFIX)
        and (profile is None or s.name.startswith(f"{SAFETY_PREFIX}{profile[:16]}"))
    ]
    return max(found, key=lambda s: (s.snaptime or 0, s.name), default=None)


# -- can its storage take one? --------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotSupport:
    ok: bool | None  # None: could not tell (a storage we may not see)
    why: str  # one sentence either way


def disks(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, volume id) of a guest config's disks (no CD-ROMs, no `none`)."""
    out = []
    for key in sorted(config):
        value = config[key]
        if not _DISK_KEY.fullmatch(key) or not isinstance(value, str):
            continue
        first = value.split(",")[0]
        if "media=cdrom" in value or first in ("none", "cdrom") or ":" not in first:
            continue
        out.append((key, first))
    return out


def snapshot_support(
    config: Mapping[str, Any], storage_types: Mapping[str, str]
) -> SnapshotSupport:
    """Whether every disk's storage takes snapshots (pve-storage: file storages only for qcow2,
    LVM thick and iSCSI never, lvmthin/ZFS/Ceph RBD/btrfs always). `storage_types`: storage id
    -> type, as /nodes/{node}/storage lists them."""
    found = disks(config)
    if not found:
        return SnapshotSupport(True, "The guest has no disks to snapshot.")
    unknown = []
    for key, volume in found:
        storage, _, name = volume.partition(":")
        kind = storage_types.get(storage)
        if kind is None:
            unknown.append(storage)
            continue
        if kind in _SNAPSHOT_TYPES or (kind in _FILE_TYPES and name.endswith(".qcow2")):
            continue
        fmt = "raw" if kind in _FILE_TYPES else kind
        if kind == "lvm":
            why = f"{key} is on {storage}, an LVM (thick) storage, which cannot take snapshots."
        elif kind in _FILE_TYPES:
            why = (
                f"{key} is on {storage} ({kind}) in {fmt} format; only qcow2 images on such a "
                "storage can take snapshots."
            )
        else:
            why = f"{key} is on {storage} ({kind}), which cannot take snapshots."
        return SnapshotSupport(False, why)
    if unknown:
        names = ", ".join(sorted(set(unknown)))
        return SnapshotSupport(None, f"Could not see the type of storage {names}.")
    return SnapshotSupport(True, "Every disk is on a storage that takes snapshots.")


# -- the actions ----------------------------------------------------------------------------------


def guest_path(kind: str, node: str, vmid: int) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown guest type {kind!r}")
    return f"/nodes/{quote(node, safe='')}/{kind}/{int(vmid)}"


def list_snapshots(api: Api, kind: str, node: str, vmid: int) -> SnapshotTree:
    return build_tree(api.request("GET", f"{guest_path(kind, node, vmid)}/snapshot"))


def create_snapshot(
    api: Api,
    kind: str,
    node: str,
    vmid: int,
    name: str,
    *,
    description: str | None = None,
    vmstate: bool = False,
) -> Upid:
    problem = snapname_problem(name, kind)
    if problem is not None:
        raise ValueError(problem)
    params: dict[str, Any] = {"snapname": name}
    if description:
        params["description"] = description
    if vmstate and kind == "qemu":  # containers have no RAM snapshots (no such parameter)
        params["vmstate"] = 1
    return _task(api.request("POST", f"{guest_path(kind, node, vmid)}/snapshot", params))


def rollback_snapshot(
    api: Api, kind: str, node: str, vmid: int, name: str, *, start: bool = False
) -> Upid:
    path = f"{guest_path(kind, node, vmid)}/snapshot/{quote(name, safe='')}/rollback"
    return _task(api.request("POST", path, {"start": 1} if start else {}))


def delete_snapshot(
    api: Api, kind: str, node: str, vmid: int, name: str, *, force: bool = False
) -> Upid:
    path = f"{guest_path(kind, node, vmid)}/snapshot/{quote(name, safe='')}"
    return _task(api.request("DELETE", path, {"force": 1} if force else {}))
