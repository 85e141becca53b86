"""What the pages render: a target's tree and each VM's live state, produced by the engine.

The tree comes from the same builder as `nestctl tree --json` (its documented JSON contract), and
the live numbers from `/cluster/resources`; pages never call the API themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nestctl.api.actions import Api
from nestctl.web.settings import TargetSpec

Json = dict[str, Any]
#: The engine: one target's scan (`web.engine.EngineView`), as the logged-in identity.
TreeBuilder = Callable[[Api, TargetSpec], Any]


def _num(value: Any) -> float | None:
    """Proxmox sends numbers as numbers or strings; anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class Usage:
    """CPU and memory use in percent, for a row of `/cluster/resources` (cpu is a fraction of
    its CPUs; mem and maxmem bytes)."""

    cpu: float | None
    mem: float | None
    maxmem: float | None

    @property
    def cpu_pct(self) -> float | None:
        return None if self.cpu is None else round(self.cpu * 100.0, 1)

    @property
    def mem_pct(self) -> float | None:
        if self.mem is None or not self.maxmem:
            return None
        return round(100.0 * self.mem / self.maxmem, 1)


@dataclass
class Live(Usage):
    """A VM's numbers now, from `/cluster/resources`."""

    status: str | None = None
    cpu: float | None = None  # fraction of its vCPUs
    maxcpu: float | None = None
    mem: float | None = None
    maxmem: float | None = None
    uptime: float | None = None
    lock: str | None = None


def live_from_resources(rows: Any) -> dict[tuple[str, int], Live]:
    """(node, vmid) -> Live for each qemu VM of `/cluster/resources`."""
    out: dict[tuple[str, int], Live] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping) or row.get("type") != "qemu":
            continue
        vmid = _num(row.get("vmid"))
        node = row.get("node")
        if vmid is None or not isinstance(node, str):
            continue
        out[(node, int(vmid))] = Live(
            status=str(row["status"]) if row.get("status") is not None else None,
            cpu=_num(row.get("cpu")),
            maxcpu=_num(row.get("maxcpu")),
            mem=_num(row.get("mem")),
            maxmem=_num(row.get("maxmem")),
            uptime=_num(row.get("uptime")),
            lock=str(row["lock"]) if row.get("lock") else None,
        )
    return out


@dataclass
class TargetSnapshot:
    target: str
    identity: str
    taken: float  # time.time() when the snapshot was complete
    seconds: float  # how long the engine's scan took
    tree_taken: float = 0.0  # time.time() of the engine's scan
    engine: Any = None  # web.engine.EngineView: the tree's view of this target, per-VM details
    live: dict[tuple[str, int], Live] = field(default_factory=dict)
    error: str | None = None  # why nothing could be read (then tree is empty)
    version: int = 0  # bumps on every refresh (live updates compare it)

    @property
    def nodes(self) -> list[Any]:
        return list(self.engine.view.nodes) if self.engine is not None else []

    def vm(self, vmid: int) -> Any:
        """The tree's entry (`VmView`) for VM `vmid` of this target, or None."""
        if self.engine is None:
            return None
        return next((v for v in self.engine.view.vms if v.vmid == vmid), None)

    def detail(self, vmid: int) -> Json:
        """A VM's findings, chain and the explanation of its first broken link."""
        if self.engine is None:
            return {}
        found: Json = self.engine.vms.get(vmid, {})
        return found


class SnapshotSource:
    """Builds a target's snapshot: live numbers every time (one request), the engine's tree only
    when it is older than `analysis_interval` or an action asked for it (a scan of a large
    cluster is thousands of requests: it must not run every few seconds per visitor)."""

    def __init__(
        self,
        api: Api,
        target: TargetSpec,
        identity: str,
        tree: TreeBuilder,
        analysis_interval: float = 60.0,
    ) -> None:
        self.api = api
        self.target = target
        self.identity = identity
        self.tree = tree
        self.analysis_interval = analysis_interval
        self.last: TargetSnapshot | None = None

    def __call__(self, poked: bool = True) -> TargetSnapshot:
        start = time.perf_counter()
        snap = TargetSnapshot(self.target.name, self.identity, 0.0, 0.0)
        last = self.last
        stale = last is None or last.error is not None
        stale = (
            stale
            or poked
            or time.time() - (last.tree_taken if last else 0) > self.analysis_interval
        )
        try:
            rows = self.api.request("GET", "/cluster/resources", {"type": "vm"})
            snap.live = live_from_resources(rows)
            if stale or last is None:
                snap.engine = self.tree(self.api, self.target)
                snap.tree_taken = time.time()
                snap.seconds = time.perf_counter() - start
            else:
                snap.engine, snap.tree_taken = last.engine, last.tree_taken
                snap.seconds = last.seconds
        except Exception as exc:  # noqa: BLE001 - any failure is shown on the page, not raised
            snap.error = describe_error(exc)
            snap.seconds = time.perf_counter() - start
        snap.taken = time.time()
        self.last = snap
        return snap


def describe_error(exc: BaseException) -> str:
    """One plain sentence plus Proxmox's own message (never a library's exception text)."""
    from nestctl.web.errors import one_line, sentence  # noqa: PLC0415 - avoids an import cycle

    return one_line(sentence(exc))


def privilege_of(exc: BaseException) -> str | None:
    """The privilege a 403 names (`Permission check failed (/vms/101, VM.PowerMgmt)`)."""
    value = getattr(exc, "privilege", None)
    return value if isinstance(value, str) else None


def status_of(exc: BaseException) -> int | None:
    value = getattr(exc, "status", None)
    return value if isinstance(value, int) else None
