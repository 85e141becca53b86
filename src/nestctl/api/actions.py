"""Power actions and task following through the Proxmox API, as the caller's own identity.

Every function takes an `Api` (the client of `nestctl.api.client`, or anything with its
`request`), sends only requests that exist in Proxmox's schema, and lets the client's typed
errors through: a 403 names the missing privilege in Proxmox's own words.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote


class Api(Protocol):
    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any: ...


#: VM power actions -> the status endpoint Proxmox runs them through (all need VM.PowerMgmt).
VM_POWER: dict[str, str] = {
    "start": "start",
    "shutdown": "shutdown",
    "stop": "stop",
    "reboot": "reboot",
    "reset": "reset",
    "suspend": "suspend",
    "resume": "resume",
}
NODE_POWER = ("reboot", "shutdown")

_UPID = re.compile(
    r"UPID:(?P<node>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<pid>[0-9A-F]{8}):(?P<pstart>[0-9A-F]{8,}):"
    r"(?P<start>[0-9A-F]{8}):(?P<type>[^:]*):(?P<id>[^:]*):(?P<user>[^:]+):$",
    re.ASCII,
)


@dataclass(frozen=True)
class Upid:
    text: str
    node: str
    type: str
    id: str
    user: str


def parse_upid(text: str) -> Upid | None:
    """The parts of a task id, or None when `text` is not one (never trust a reply blindly)."""
    m = _UPID.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    return Upid(text, m["node"], m["type"], m["id"], m["user"])


def vm_path(node: str, vmid: int) -> str:
    return f"/nodes/{quote(node, safe='')}/qemu/{int(vmid)}"


def vm_power(api: Api, node: str, vmid: int, action: str) -> Upid:
    """Start one power action; its task id. `status/reboot` applies pending changes."""
    if action not in VM_POWER:
        raise ValueError(f"unknown VM action {action!r}")
    reply = api.request("POST", f"{vm_path(node, vmid)}/status/{VM_POWER[action]}")
    return _task(reply)


def node_power(api: Api, node: str, command: str) -> None:
    """Reboot or shut down a node (needs Sys.PowerMgmt). Proxmox answers with no task."""
    if command not in NODE_POWER:
        raise ValueError(f"unknown node command {command!r}")
    api.request("POST", f"/nodes/{quote(node, safe='')}/status", {"command": command})


def update_config(
    api: Api, node: str, vmid: int, *, options: Mapping[str, str], delete: list[str], digest: str
) -> None:
    """Change a VM's config only if nobody else changed it since we read `digest`."""
    params: dict[str, Any] = dict(options)
    if delete:
        params["delete"] = ",".join(delete)
    params["digest"] = digest
    api.request("PUT", f"{vm_path(node, vmid)}/config", params)


def plan_params(options: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """A `qm set` plan's options (`--cpu host`, `--delete args`) as API parameters."""
    params: dict[str, str] = {}
    delete: list[str] = []
    for opt, value in options:
        name = opt.removeprefix("--")
        if name == "delete":
            delete.extend(v for v in value.split(",") if v)
        else:
            params[name] = value
    return params, delete


def _task(reply: Any) -> Upid:
    upid = parse_upid(reply) if isinstance(reply, str) else None
    if upid is None:
        raise ValueError(f"Proxmox answered without a task id: {str(reply)[:80]!r}")
    return upid


@dataclass
class TaskState:
    """Where a task stands. `exitstatus` is None while it runs (Proxmox sends no key then)."""

    upid: str
    running: bool
    exitstatus: str | None = None
    log_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool | None:
        return None if self.running else self.exitstatus == "OK"


def task_state(api: Api, upid: Upid, *, log_lines: int = 20) -> TaskState:
    base = f"/nodes/{quote(upid.node, safe='')}/tasks/{quote(upid.text, safe='')}"
    status = api.request("GET", f"{base}/status")
    running = not isinstance(status, Mapping) or status.get("status") != "stopped"
    exitstatus = None
    if not running and isinstance(status, Mapping):
        exit_value = status.get("exitstatus")
        exitstatus = str(exit_value) if exit_value is not None else "unknown"
    state = TaskState(upid.text, running, exitstatus)
    if not running:
        state.log_tail = task_log_tail(api, upid, log_lines)
    return state


def task_log_tail(api: Api, upid: Upid, lines: int) -> list[str]:
    base = f"/nodes/{quote(upid.node, safe='')}/tasks/{quote(upid.text, safe='')}"
    # The log's length is unknown until read: ask for the start with a generous limit, keep the end.
    rows = api.request("GET", f"{base}/log", {"start": 0, "limit": 500})
    out = (
        [str(r.get("t", "")) for r in rows if isinstance(r, Mapping)]
        if isinstance(rows, list)
        else []
    )
    return out[-lines:]


def follow_task(
    api: Api,
    upid: Upid,
    *,
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TaskState:
    """Poll a task until it ends (or `timeout`)."""
    start = clock()
    while True:
        state = task_state(api, upid)
        if not state.running or clock() - start >= timeout:
            return state
        sleep(poll_delay(clock() - start))


def poll_delay(waited: float) -> float:
    """How long to wait before asking about a task again. Most power tasks end within seconds:
    asking often then keeps "shown as ended" close to the task's own end (one request at a
    time, only while someone follows it); a longer task is asked less and less often."""
    if waited < 5.0:
        return 0.03
    return 0.25 if waited < 30.0 else 1.0
