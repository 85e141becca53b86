"""Which power actions a guest offers now: one function, used by every page (VMs and containers).

Proxmox refuses an action that does not fit the state ("VM 101 not running", "VM is locked
(backup)", HTTP 595 for a node it cannot reach); offering it anyway only moves the failure after
the confirmation. So a page shows only what fits, or the reason there is nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What each action does, for the confirmation page (VMs and containers alike).
ACTIONS: dict[str, str] = {
    "start": "Start it.",
    "shutdown": "Ask the guest to shut down cleanly; Proxmox waits for it.",
    "reboot": "Shut the guest down and start it again. Pending changes are applied.",
    "stop": "Stop it at once, like pulling the plug. Unsaved guest data is lost.",
    "reset": "Reset the VM at once, like the reset button. Pending changes are NOT applied.",
    "suspend": "Pause it (it stays in memory).",
    "resume": "Resume it.",
}

#: What a Proxmox lock means, in words (qemu-server / pve-container `lock` values).
LOCKS: dict[str, str] = {
    "backup": "a backup is running",
    "clone": "it is being cloned",
    "create": "it is being created",
    "migrate": "it is being migrated",
    "rollback": "a snapshot is being rolled back",
    "snapshot": "a snapshot is being taken",
    "snapshot-delete": "a snapshot is being deleted",
    "suspending": "it is being hibernated",
    "suspended": "it is hibernated",
    "copy": "a disk is being copied",
    "disk": "a disk is being changed",
    "mounted": "its volumes are mounted on the node (pct mount)",
    "destroyed": "it is being destroyed",
    "fstrim": "pct fstrim is running",
}


@dataclass(frozen=True)
class Offer:
    actions: tuple[str, ...]
    why: str | None = None  # why there are no (or only some) actions; None: nothing to say


def valid_actions(
    kind: str,
    status: str | None,
    *,
    qmpstatus: str | None = None,
    lock: str | None = None,
    node_online: bool | None = True,
    template: bool = False,
    node: str = "",
) -> Offer:
    """The power actions Proxmox accepts now for a guest (`kind` "qemu" or "lxc")."""
    if node_online is False:
        where = f"its node {node}" if node else "its node"
        return Offer((), f"{where} is offline: Proxmox cannot reach it")
    if template:
        return Offer((), "it is a template: templates are cloned, not started")
    if lock == "suspended" and status == "stopped":
        # qm start resumes a hibernated VM (the one lock `start` does not refuse).
        return Offer(("start",), "it is hibernated: Start resumes it where it stopped")
    if lock:
        meaning = LOCKS.get(lock, "a task holds it")
        return Offer((), f"Proxmox has locked it ({lock}): {meaning}. Actions return when it ends.")
    if status == "running":
        if qmpstatus in ("paused", "suspended", "prelaunch"):
            return Offer(("resume", "stop"), "it is paused")
        base = ("shutdown", "reboot", "stop", "suspend")
        return Offer((*base, "reset") if kind == "qemu" else base)
    if status == "stopped":
        return Offer(("start",))
    return Offer((), "its state is unknown (Proxmox did not say whether it runs)")


def restart_offer(offer: Offer) -> str | None:
    """The action that applies pending changes now: reboot if running, start if stopped."""
    if "reboot" in offer.actions:
        return "reboot"
    if "start" in offer.actions:
        return "start"
    return None
