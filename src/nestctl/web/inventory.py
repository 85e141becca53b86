"""The inventory: every VM and container of a target, from one `/cluster/resources` request.

Pure functions over that one reply (rows of type `qemu`, `lxc`, `node` and `storage`), so the
home screen is listed as soon as the request answers; the nested analysis (the engine's scan,
thousands of requests) is joined in later, by vmid, when it arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nestctl.parse import is_ascii_digits
from nestctl.web.offers import valid_actions
from nestctl.web.snapshot import Usage, _num

GUEST_TYPES = ("qemu", "lxc")


@dataclass(frozen=True)
class Guest(Usage):
    """One VM or container as `/cluster/resources` lists it."""

    kind: str  # "qemu" or "lxc" (Proxmox's own words, also in the resource id)
    vmid: int
    node: str
    name: str
    status: str  # running, stopped, paused? (qmpstatus is not here), unknown (node offline)
    cpu: float | None = None  # fraction of its CPUs
    maxcpu: float | None = None
    mem: float | None = None
    maxmem: float | None = None
    uptime: float | None = None
    lock: str | None = None
    tags: tuple[str, ...] = ()
    template: bool = False

    @property
    def id(self) -> str:
        """`qemu/101`, `lxc/200`: the id Proxmox and prometheus-pve-exporter use."""
        return f"{self.kind}/{self.vmid}"

    @property
    def search_text(self) -> str:
        """What the search box matches: name, id and tags, lower case."""
        return " ".join([str(self.vmid), self.name.lower(), *self.tags]).strip()


@dataclass(frozen=True)
class NodeRes:
    name: str
    online: bool
    cpu: float | None = None
    maxcpu: float | None = None
    mem: float | None = None
    maxmem: float | None = None
    disk: float | None = None
    maxdisk: float | None = None
    uptime: float | None = None


@dataclass(frozen=True)
class StorageRes:
    node: str
    name: str
    used: float | None
    total: float | None

    @property
    def fraction(self) -> float | None:
        return None if self.used is None or not self.total else self.used / self.total

    @property
    def level(self) -> str:
        """ "ok", "warning" (> 80%) or "error" (> 90%), as the node page grades it."""
        from nestctl.web.nodehealth import usage_level  # noqa: PLC0415 - one rule, lazily

        return usage_level(self.fraction)

    @property
    def problem(self) -> str | None:
        if self.level not in ("warning", "error") or self.fraction is None:
            return None
        return f"storage {self.name} on {self.node} is {self.fraction * 100:.0f}% full"


@dataclass
class Resources:
    """One target's `/cluster/resources`, parsed."""

    guests: list[Guest] = field(default_factory=list)
    nodes: dict[str, NodeRes] = field(default_factory=dict)
    storages: list[StorageRes] = field(default_factory=list)

    def guest(self, kind: str, vmid: int) -> Guest | None:
        return next((g for g in self.guests if g.vmid == vmid and g.kind == kind), None)

    def node_online(self, node: str) -> bool | None:
        entry = self.nodes.get(node)
        return None if entry is None else entry.online


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tags(value: Any) -> tuple[str, ...]:
    # Proxmox joins tags with ';' (older releases also accepted ',' and spaces).
    if not isinstance(value, str):
        return ()
    return tuple(t.lower() for t in value.replace(",", ";").replace(" ", ";").split(";") if t)


def parse_resources(rows: Any) -> Resources:
    """Every guest and node of the reply; rows that are not what Proxmox sends are skipped."""
    out = Resources()
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        kind = row.get("type")
        node = _str(row.get("node"))
        if node is None:
            continue
        if kind == "node":
            out.nodes[node] = NodeRes(
                node,
                row.get("status") == "online",
                cpu=_num(row.get("cpu")),
                maxcpu=_num(row.get("maxcpu")),
                mem=_num(row.get("mem")),
                maxmem=_num(row.get("maxmem")),
                disk=_num(row.get("disk")),
                maxdisk=_num(row.get("maxdisk")),
                uptime=_num(row.get("uptime")),
            )
            continue
        if kind == "storage" and isinstance(row.get("storage"), str):
            out.storages.append(
                StorageRes(node, row["storage"], _num(row.get("disk")), _num(row.get("maxdisk")))
            )
            continue
        if kind not in GUEST_TYPES:
            continue
        vmid = _num(row.get("vmid"))
        if vmid is None or vmid != int(vmid) or vmid < 1:
            continue
        out.guests.append(
            Guest(
                kind=str(kind),
                vmid=int(vmid),
                node=node,
                name=_str(row.get("name")) or "",
                status=_str(row.get("status")) or "unknown",
                cpu=_num(row.get("cpu")),
                maxcpu=_num(row.get("maxcpu")),
                mem=_num(row.get("mem")),
                maxmem=_num(row.get("maxmem")),
                uptime=_num(row.get("uptime")),
                lock=_str(row.get("lock")),
                tags=_tags(row.get("tags")),
                template=_num(row.get("template")) == 1,
            )
        )
    out.guests.sort(key=lambda g: (g.node, g.vmid))
    return out


@dataclass
class Row:
    """A guest as the home screen lists it, with what the analysis added (when it arrived)."""

    guest: Guest
    nested: str | None = None  # the nested badge's verdict; None: nesting not wanted / not known
    why: str | None = None  # the first broken link's explanation (a problem)
    node_online: bool | None = None
    backup_failed: str | None = None  # Proxmox's reason its last backup task failed

    @property
    def problem(self) -> str | None:
        """Why this guest is pinned on top, or None."""
        if self.node_online is False:
            return "its node is offline"
        if self.guest.lock:
            return f"locked ({self.guest.lock})"
        if self.nested == "not-ready":
            return self.why or "cannot run nested guests"
        if self.backup_failed is not None:
            return f"Last backup failed: {self.backup_failed}"
        return None

    @property
    def quick(self) -> str | None:
        """The one action offered on the row itself ("reboot" for a running guest, so a restart
        is two taps: this, then the confirmation); None where it does not fit (the same
        `offers.valid_actions` every page asks)."""
        g = self.guest
        offer = valid_actions(
            g.kind, g.status, lock=g.lock, node_online=self.node_online, template=g.template
        )
        return "reboot" if "reboot" in offer.actions else None

    @property
    def filters(self) -> str:
        """Words the filter buttons match (space separated, in a data attribute)."""
        words = [self.guest.kind, self.guest.status]
        if self.nested == "not-ready":
            words.append("not-ready")
        if self.problem:
            words.append("problem")
        return " ".join(words)


@dataclass
class NodeGroup:
    target: str
    node: str
    online: bool | None
    rows: list[Row]


_DIGITS = re.compile(r"(\d+)", re.ASCII)


def natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """pve2 before pve10, as people number their nodes."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p)) if is_ascii_digits(p) else (1, p) for p in parts if p)


def group(target: str, res: Resources, rows: Iterable[Row]) -> list[NodeGroup]:
    """Rows by node, nodes in natural name order (a node without guests is still listed)."""
    by_node: dict[str, list[Row]] = {n: [] for n in res.nodes}
    for r in rows:
        by_node.setdefault(r.guest.node, []).append(r)
    ordered = sorted(by_node.items(), key=lambda kv: natural(kv[0]))
    return [NodeGroup(target, n, res.node_online(n), rs) for n, rs in ordered]


def failed_backups(entries: Iterable[Any], now: float) -> dict[tuple[str, int], str]:
    """(kind, vmid) -> Proxmox's reason, for each guest whose last backup task failed: the
    backup facts engine's own verdict (`backup_findings` sets each entry's status)."""
    from nestctl.api.backups import backup_findings  # noqa: PLC0415 - only once backups arrive

    listed = list(entries)
    backup_findings(listed, now)
    return {
        (e.guest.kind, e.guest.vmid): (e.last_run.error if e.last_run else None)
        or "no reason given"
        for e in listed
        if e.status == "failed"
    }
