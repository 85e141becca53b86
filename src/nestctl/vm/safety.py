"""The safety net around `vm enable`: a snapshot named `nestctl-before-<profile>-<date>` first.

Taken only where every disk's storage can snapshot it (pve-storage's rule, see
`nestctl.api.snapshots.snapshot_support`); where it cannot, the reason is said and the change
is not made (`vm enable --snapshot`) or made knowingly (the dashboard shows the reason before
the tap). A snapshot task that fails stops the change: the config is untouched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from nestctl.api.actions import Api, TaskState, Upid, follow_task
from nestctl.api.snapshots import (
    SnapshotSupport,
    create_snapshot,
    list_snapshots,
    safety_name,
    snapshot_support,
)

SNAPSHOT_TIMEOUT_S = 900.0
_STORAGE_HEAD = re.compile(r"([a-z][a-z0-9]*):\s+(\S+)\s*", re.ASCII)


@dataclass
class SafetySnapshot:
    name: str
    supported: bool | None
    why: str
    taken: bool = False
    error: str | None = None
    upid: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "supported": self.supported,
            "why": self.why,
            "taken": self.taken,
            "error": self.error,
            "upid": self.upid,
        }


def description(profile: str) -> str:
    return f"Taken by nestctl before making the VM nested-ready ({profile})."


def storage_types_api(api: Api, node: str) -> dict[str, str]:
    """Storage id -> type for the storages this node has (the ones the caller may see)."""
    reply = api.request("GET", f"/nodes/{quote(node, safe='')}/storage")
    return {
        str(s["storage"]): str(s.get("type", ""))
        for s in (reply if isinstance(reply, list) else [])
        if isinstance(s, Mapping) and isinstance(s.get("storage"), str)
    }


def storage_types_cfg(text: str) -> dict[str, str]:
    """Storage id -> type from /etc/pve/storage.cfg (`TYPE: ID` heads, indented options)."""
    out = {}
    for line in text.splitlines():
        if line[:1].isspace() or line.startswith("#"):
            continue
        m = _STORAGE_HEAD.fullmatch(line)
        if m:
            out[m[2]] = m[1]
    return out


def plan_api(
    api: Api, node: str, vmid: int, profile: str, *, config: Mapping[str, Any], now: float
) -> SafetySnapshot:
    """The snapshot `vm enable` would take, and whether the storage allows it (no change)."""
    taken = set(list_snapshots(api, "qemu", node, vmid).snapshots)
    name = safety_name(profile, now, taken)
    support = snapshot_support(config, storage_types_api(api, node))
    return SafetySnapshot(name, support.ok, support.why)


def take_api(
    api: Api,
    node: str,
    vmid: int,
    safety: SafetySnapshot,
    profile: str,
    *,
    follow: Callable[[Api, Upid], TaskState] | None = None,
) -> SafetySnapshot:
    """Take the planned snapshot and follow its task to the end; `taken` says whether it is
    there to roll back to. Proxmox decides in the end (a storage we could not see may refuse)."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415

    run = follow or (lambda a, u: follow_task(a, u, timeout=SNAPSHOT_TIMEOUT_S))
    try:
        upid = create_snapshot(
            api, "qemu", node, vmid, safety.name, description=description(profile)
        )
    except (ApiError, ValueError) as exc:
        safety.error = str(exc)
        return safety
    safety.upid = upid.text
    state = run(api, upid)
    if state.running:
        safety.error = f"the snapshot task is still running after {SNAPSHOT_TIMEOUT_S:.0f} s"
    elif not state.ok:
        safety.error = f"the snapshot task failed: {state.exitstatus}"
    else:
        safety.taken = True
    return safety


def plan_local(
    config: Mapping[str, Any],
    snapshots: set[str],
    storage_cfg: str | None,
    profile: str,
    now: float | None = None,
) -> SafetySnapshot:
    name = safety_name(profile, time.time() if now is None else now, snapshots)
    if storage_cfg is None:
        support = SnapshotSupport(None, "Could not read /etc/pve/storage.cfg.")
    else:
        support = snapshot_support(config, storage_types_cfg(storage_cfg))
    return SafetySnapshot(name, support.ok, support.why)


def qm_argv(vmid: int, safety: SafetySnapshot, profile: str) -> tuple[str, ...]:
    return ("qm", "snapshot", str(vmid), safety.name, "--description", description(profile))


def rollback_hint(vmid: int, name: str) -> str:
    return f"nestctl snapshot rollback {vmid} {name}  (on the node: qm rollback {vmid} {name})"


#: Keys our own snapshot changes in the main config (the rest must be as planned).
_SNAPSHOT_KEYS = {"digest", "parent", "lock"}


def digest_after_snapshot(api: Api, node: str, vmid: int, before: Mapping[str, Any]) -> str | None:
    """The config's digest after our snapshot, when nothing but the snapshot changed it since
    `before` (the config the plan was made from); None when someone else changed it too."""
    path = f"/nodes/{quote(node, safe='')}/qemu/{int(vmid)}/config"
    now = api.request("GET", path, {"current": 1})
    if not isinstance(now, Mapping):
        return None
    same = {k: v for k, v in now.items() if k not in _SNAPSHOT_KEYS} == {
        k: v for k, v in before.items() if k not in _SNAPSHOT_KEYS
    }
    digest = now.get("digest")
    return str(digest) if same and isinstance(digest, str) else None
