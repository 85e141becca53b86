"""`nestctl snapshot list|create|rollback|delete VMID [NAME]`: guest snapshots (VMs and containers).

Each change is a Proxmox task followed to its end. Rollback discards the guest's current state,
so it asks for the snapshot's name to be typed (or `--yes`). Exit codes: 0 done, 1 Proxmox
refused or the task failed, 2 could not ask or usage error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from nestctl.cli.common import NestctlError, emit
from nestctl.cli.guestapi import VMID, guest_options

if TYPE_CHECKING:
    from nestctl.api.actions import Api
    from nestctl.api.backups import Guest
    from nestctl.findings import Report

EPILOG = "Exit codes: 0 done, 1 refused or the task failed, 2 could not ask or usage error."
TASK_TIMEOUT = 900.0


@click.group(epilog=EPILOG)
def snapshot() -> None:
    """Snapshots of a VM or container: list them as a tree, take, roll back, delete."""


@snapshot.command("list", epilog=EPILOG)
@click.argument("vmid", type=VMID)
@guest_options
def list_cmd(vmid: int, root: str, as_json: bool, **params: Any) -> None:
    """The snapshot tree of VMID, with 'now' under the snapshot it descends from."""
    from nestctl.api.snapshots import list_snapshots  # noqa: PLC0415
    from nestctl.cli.guestapi import find_guest, guest_json, open_api  # noqa: PLC0415
    from nestctl.findings import Report, Section  # noqa: PLC0415

    with open_api(params, root) as (api, _where):
        guest = find_guest(api, vmid)
        tree = list_snapshots(api, guest.kind, guest.node, guest.vmid)
    rows = []
    for depth, snap in tree.rows():
        pad = "  " * depth
        if snap is None:
            rows.append((pad + "NOW", "running" if tree.running else "the guest's current state"))
            continue
        bits = [_date(snap.snaptime)]
        if snap.vmstate:
            bits.append("with RAM")
        if snap.snapstate:
            bits.append(f"({snap.snapstate})")
        if snap.description:
            bits.append(snap.description.splitlines()[0])
        rows.append((pad + snap.name, "  ".join(b for b in bits if b)))
    payload = {"guest": guest_json(guest), **tree.to_json()}
    sections = [Section("Snapshots", tuple(rows))]
    title = f"{_word(guest)} {vmid}: {len(tree.snapshots)} snapshot(s)"
    raise SystemExit(emit(Report(title, payload, [], sections), as_json))


@snapshot.command(epilog=EPILOG)
@click.argument("vmid", type=VMID)
@click.argument("name")
@click.option("--description", metavar="TEXT", help="A note kept with the snapshot.")
@click.option("--vmstate", is_flag=True, help="Include the RAM of a running VM.")
@guest_options
def create(vmid: int, name: str, root: str, as_json: bool, **params: Any) -> None:
    """Take snapshot NAME of VMID (a name as Proxmox allows: a letter, then letters, digits,
    '-' or '_', at most 40 characters)."""
    from nestctl.api.snapshots import create_snapshot, snapname_problem  # noqa: PLC0415
    from nestctl.cli.guestapi import find_guest, open_api  # noqa: PLC0415

    with open_api(params, root) as (api, _where):
        guest = find_guest(api, vmid)
        problem = snapname_problem(name, guest.kind)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="NAME")
        if params["vmstate"] and guest.kind == "lxc":
            raise click.UsageError("--vmstate: containers have no RAM snapshots")
        report = _run(
            api,
            guest,
            "create",
            name,
            lambda: create_snapshot(
                api,
                guest.kind,
                guest.node,
                vmid,
                name,
                description=params["description"],
                vmstate=params["vmstate"],
            ),
        )
    raise SystemExit(emit(report, as_json))


@snapshot.command(epilog=EPILOG)
@click.argument("vmid", type=VMID)
@click.argument("name", required=False)
@click.option(
    "--before-nestctl",
    is_flag=True,
    help="The newest snapshot `vm enable --snapshot` took (nestctl-before-...), instead of NAME.",
)
@click.option("--start", is_flag=True, help="Start the guest after the rollback.")
@click.option("--yes", is_flag=True, help="Do not ask: the current state is discarded.")
@guest_options
def rollback(vmid: int, name: str | None, root: str, as_json: bool, **params: Any) -> None:
    """Roll VMID back to snapshot NAME. Everything since is lost: type NAME to confirm."""
    import sys  # noqa: PLC0415

    from nestctl.api import snapshots as snaps  # noqa: PLC0415
    from nestctl.cli.guestapi import find_guest, open_api  # noqa: PLC0415

    if (name is None) == (not params["before_nestctl"]):
        raise click.UsageError("give NAME or --before-nestctl (one of them)")
    with open_api(params, root) as (api, _where):
        guest = find_guest(api, vmid)
        if name is None:
            found = snaps.latest_safety(snaps.list_snapshots(api, guest.kind, guest.node, vmid))
            if found is None:
                raise NestctlError(f"{_word(guest)} {vmid} has no snapshot nestctl took")
            name = found.name
        if not params["yes"]:
            if not sys.stdin.isatty():
                raise click.UsageError("rollback discards the current state: add --yes to confirm")
            typed = click.prompt(f"This discards {_word(guest)} {vmid}'s current state. "
                                 f"Type {name} to confirm")  # fmt: skip
            if typed != name:
                raise NestctlError("not confirmed: nothing was changed")
        snapname = name
        report = _run(
            api,
            guest,
            "rollback",
            snapname,
            lambda: snaps.rollback_snapshot(
                api, guest.kind, guest.node, vmid, snapname, start=params["start"]
            ),
        )
    raise SystemExit(emit(report, as_json))


@snapshot.command(epilog=EPILOG)
@click.argument("vmid", type=VMID)
@click.argument("name")
@click.option("--force", is_flag=True, help="Remove it from the config even if a disk refuses.")
@guest_options
def delete(vmid: int, name: str, root: str, as_json: bool, **params: Any) -> None:
    """Delete snapshot NAME of VMID (the guest's current state is kept)."""
    from nestctl.api.snapshots import delete_snapshot  # noqa: PLC0415
    from nestctl.cli.guestapi import find_guest, open_api  # noqa: PLC0415

    with open_api(params, root) as (api, _where):
        guest = find_guest(api, vmid)
        report = _run(
            api,
            guest,
            "delete",
            name,
            lambda: delete_snapshot(api, guest.kind, guest.node, vmid, name, force=params["force"]),
        )
    raise SystemExit(emit(report, as_json))


def _run(api: Api, guest: Guest, action: str, name: str, start: Any) -> Report:
    """Start the task, follow it to its end, and report (Proxmox's refusal is a finding)."""
    from nestctl.api.errors import ApiError, ApiPermissionError  # noqa: PLC0415
    from nestctl.cli.guestapi import follow, guest_json, task_json  # noqa: PLC0415
    from nestctl.findings import Report, error  # noqa: PLC0415

    title = f"{_word(guest)} {guest.vmid}: snapshot {action} {name}"
    payload: dict[str, Any] = {
        "guest": guest_json(guest),
        "action": action,
        "name": name,
        "task": None,
    }
    try:
        upid = start()
    except ApiError as exc:
        if isinstance(exc, ApiPermissionError):
            fix = f"grant {exc.privilege or 'VM.Snapshot'} on /vms/{guest.vmid}"
        else:
            fix = None
        return Report(title, payload, [error(f"snapshot.{action}.refused", str(exc), fix)])
    state = follow(api, upid, TASK_TIMEOUT)
    payload["task"] = task_json(state)
    if state.running:
        msg = f"the task is still running after {TASK_TIMEOUT:.0f} s ({upid.text})"
        return Report(title, payload, [error(f"snapshot.{action}.timeout", msg)])
    if not state.ok:
        msg = f"Proxmox's task failed: {state.exitstatus}"
        return Report(title, payload, [error(f"snapshot.{action}.failed", msg)])
    return Report(title, payload, [])


def _word(guest: Guest) -> str:
    return "CT" if guest.kind == "lxc" else "VM"


def _date(stamp: int | None) -> str:
    if stamp is None:
        return ""
    import time  # noqa: PLC0415

    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))
