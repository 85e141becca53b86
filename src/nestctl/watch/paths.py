"""Layer paths: where an event is, from the outermost target down, joined by SEP (a single
right-pointing angle quote): `outer/pve1 SEP VM 101 SEP pve-inner SEP VM 1002`.

An inner target hangs under the VM that runs it: the config file's `parent = "OUTER/VMID"`, or,
as `nestctl tree` ties them, the VM whose smbios1 uuid is the inner node's DMI product_uuid.
"""

from __future__ import annotations

from collections.abc import Mapping

from nestctl.watch.snapshot import TargetSnap

SEP = " \u203a "


def parent_ties(snaps: Mapping[str, TargetSnap]) -> dict[str, tuple[str, int]]:
    """Each inner target's (outer target, vmid)."""
    by_uuid = {
        uuid: (snap.name, vmid) for snap in snaps.values() for vmid, uuid in snap.vm_uuids.items()
    }
    out: dict[str, tuple[str, int]] = {}
    for snap in snaps.values():
        parent = snap.parent or next(
            (by_uuid[u] for u in snap.node_uuids.values() if u in by_uuid), None
        )
        if parent is not None and parent[0] != snap.name and parent[0] in snaps:
            out[snap.name] = parent
    return out


class Paths:
    """Layer paths over one poll's snapshots of every target."""

    def __init__(self, snaps: Mapping[str, TargetSnap]) -> None:
        self.snaps = snaps
        self.parents = parent_ties(snaps)

    def _prefix(self, target: str, seen: frozenset[str]) -> str | None:
        """The path of the VM an inner target runs in (None for an outer target)."""
        parent = self.parents.get(target)
        if parent is None or parent[0] in seen:
            return None
        return self.vm(parent[0], parent[1], seen | {target})

    def target(self, target: str, seen: frozenset[str] = frozenset()) -> str:
        prefix = self._prefix(target, seen)
        return target if prefix is None else f"{prefix}{SEP}{target}"

    def node(self, target: str, node: str, seen: frozenset[str] = frozenset()) -> str:
        prefix = self._prefix(target, seen)
        return f"{target}/{node}" if prefix is None else f"{prefix}{SEP}{node}"

    def vm(self, target: str, vmid: int, seen: frozenset[str] = frozenset()) -> str:
        snap = self.snaps.get(target)
        vm = snap.vms.get(vmid) if snap is not None else None
        where = self.node(target, vm.node, seen) if vm is not None else self.target(target, seen)
        return f"{where}{SEP}VM {vmid}"

    def parent_vm(self, target: str) -> tuple[str, int] | None:
        return self.parents.get(target)
