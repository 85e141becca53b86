"""`nestctl vm disable VMID --rollback`: back to the snapshot `vm enable --snapshot` took.

Instead of undoing the profile option by option, the guest goes back to the newest
`nestctl-before-*` snapshot: disks, config and (with RAM) the running state, as they were. Over
the API a rollback task followed to its end; on the node `qm rollback`. Everything since the
snapshot is lost, so the CLI asks for the snapshot's name (or --yes).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, Report, Section, error, info
from nestctl.parse import parse_uint

if TYPE_CHECKING:
    from nestctl.api.actions import Api
    from nestctl.machine import Host

ROLLBACK_TIMEOUT_S = 900.0


def _payload(vmid: int, dry_run: bool) -> dict[str, Any]:
    return {"vmid": vmid, "mode": "rollback", "dry_run": dry_run, "snapshot": None,
            "commands": [], "applied": False, "task": None}  # fmt: skip


def _none(vmid: int) -> Finding:
    return error(
        "vm.disable.no-snapshot",
        f"VM {vmid}: no snapshot nestctl took (nestctl-before-*): nothing to roll back to.",
        f"nestctl vm disable {vmid} (without --rollback) undoes the profile instead",
    )


def _roll_back(
    title: str,
    payload: dict[str, Any],
    vmid: int,
    *,
    name: str,
    argv: Sequence[str],
    run: Callable[[], str | None],
    dry_run: bool,
    confirm: Any,
) -> Report:
    """The plan (`argv`), the user's confirmation, then `run()`: it records its task in the
    payload and says why the rollback failed, or None. Shared by the API and the node."""
    payload.update(snapshot=name, commands=[list(argv)])
    sections = [Section("Plan", (("command", shlex.join(argv)),))]
    if dry_run:
        return Report(title, payload, [], sections)
    if confirm is not None and not confirm(name):
        return Report(
            title,
            payload,
            [error("vm.disable.not-confirmed", "Not confirmed: nothing was changed.")],
            sections,
        )
    why = run()
    if why is not None:
        return Report(
            title, payload, [error("vm.disable.rollback-failed", f"VM {vmid}: {why}")], sections
        )
    payload["applied"] = True
    return Report(
        title,
        payload,
        [info("vm.disable.rolled-back", f"VM {vmid}: back to {name}.")],
        sections,
    )


def rollback_api(api: Api, vmid: int, *, dry_run: bool, confirm: Any = None) -> Report:
    """`confirm(name) -> bool` asks the user (None: already confirmed)."""
    from nestctl.api.actions import follow_task  # noqa: PLC0415
    from nestctl.api.backups import guests_from_resources  # noqa: PLC0415
    from nestctl.api.snapshots import latest_safety, list_snapshots, rollback_snapshot  # noqa: PLC0415

    title = f"VM {vmid}: roll back to the snapshot nestctl took"
    payload = _payload(vmid, dry_run)
    found = [
        g
        for g in guests_from_resources(api.request("GET", "/cluster/resources", {"type": "vm"}))
        if g.vmid == vmid and g.kind == "qemu"
    ]
    if not found:
        return Report(
            title, payload, [error("vm.not-found", f"VM {vmid}: the cluster does not list it")]
        )
    node = found[0].node
    snap = latest_safety(list_snapshots(api, "qemu", node, vmid))
    if snap is None:
        return Report(title, payload, [_none(vmid)])
    base = f"/nodes/{node}/qemu/{vmid}/snapshot/{snap.name}/rollback"

    def run() -> str | None:
        upid = rollback_snapshot(api, "qemu", node, vmid, snap.name)
        state = follow_task(api, upid, timeout=ROLLBACK_TIMEOUT_S)
        payload["task"] = {"upid": state.upid, "ok": state.ok, "exitstatus": state.exitstatus}
        if not state.ok:
            return f"the rollback task ended with: {state.exitstatus or 'still running'}"
        return None

    argv = ["pvesh", "create", base]
    return _roll_back(
        title, payload, vmid, name=snap.name, argv=argv, run=run, dry_run=dry_run, confirm=confirm
    )


def rollback_local(host: Host, vmid: int, *, dry_run: bool, confirm: Any = None) -> Report:
    from nestctl.api.snapshots import build_tree, latest_safety  # noqa: PLC0415
    from nestctl.vm.config import load_vm_configs  # noqa: PLC0415

    title = f"VM {vmid}: roll back to the snapshot nestctl took"
    payload = _payload(vmid, dry_run)
    configs = [c for c in load_vm_configs(host, vmids=[vmid]) if c.readable]
    if not configs:
        return Report(title, payload, [error("vm.not-found", f"VM {vmid}: no config on this node")])
    listed = [
        {"name": name, "snaptime": parse_uint(v.get("snaptime"))}
        for name, v in configs[0].snapshots.items()
    ]
    snap = latest_safety(build_tree(listed))
    if snap is None:
        return Report(title, payload, [_none(vmid)])
    argv = ("qm", "rollback", str(vmid), snap.name)

    def run() -> str | None:
        res = host.run(argv, timeout=ROLLBACK_TIMEOUT_S)
        payload["task"] = {"status": res.status.value, "rc": res.rc}
        if not res.ok and res.status.value != "recorded":
            return res.describe()
        return None

    return _roll_back(
        title, payload, vmid, name=snap.name, argv=argv, run=run, dry_run=dry_run, confirm=confirm
    )
