"""What `nestctl snapshot` and `nestctl backup` share: the API door and finding a guest.

With --api URL or --target NAME the cluster's API (the caller's own identity); without, this
node's `pvesh` (as root), through the one door to the machine (`Host.run`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from nestctl.cli.apiopts import api_options
from nestctl.cli.common import NestctlError, json_option, open_host, root_option

if TYPE_CHECKING:
    from nestctl.api.actions import Api, TaskState, Upid
    from nestctl.api.backups import Guest

#: A guest's id as Proxmox allows it.
VMID = click.IntRange(min=100, max=999_999_999)


def guest_options(func: Any) -> Any:
    """The options every `snapshot` and `backup` verb takes: the API's, --root and --json."""
    for option in (api_options(), root_option, json_option):
        func = option(func)
    return func


@contextmanager
def open_api(params: dict[str, Any], root: str) -> Iterator[tuple[Api, str]]:
    """(api, name of where it points); API errors while used become one-line exit-2 errors."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415
    from nestctl.cli.apiopts import api_requested, open_client, resolve_targets  # noqa: PLC0415

    if api_requested(params):
        target = resolve_targets(params)[0]
        client = open_client(target, params)
        try:
            yield client, target.name
        except ApiError as exc:
            raise NestctlError(f"{target.name}: {exc}") from None
        finally:
            client.close()
        return
    from nestctl.web.local import PveshApi  # noqa: PLC0415

    host = open_host(root)
    if host.find_program("pvesh") is None:
        raise NestctlError("no pvesh here (not a Proxmox VE node): give --api URL or --target NAME")
    try:
        yield PveshApi(host), "this node"
    except ApiError as exc:
        raise NestctlError(f"this node: {exc}") from None


def find_guest(api: Api, vmid: int) -> Guest:
    """The VM or container `vmid` as /cluster/resources lists it (its type and node)."""
    from nestctl.api.backups import guests_from_resources  # noqa: PLC0415

    for guest in guests_from_resources(api.request("GET", "/cluster/resources", {"type": "vm"})):
        if guest.vmid == vmid:
            return guest
    raise NestctlError(f"no VM or container {vmid} in the cluster (or no VM.Audit on it)")


def guest_json(guest: Guest) -> dict[str, Any]:
    return {
        "id": guest.id,
        "type": guest.kind,
        "vmid": guest.vmid,
        "node": guest.node,
        "name": guest.name,
    }


def follow(api: Api, upid: Upid, timeout: float) -> TaskState:
    from nestctl.api.actions import follow_task  # noqa: PLC0415

    return follow_task(api, upid, timeout=timeout)


def task_json(state: TaskState) -> dict[str, Any]:
    return {
        "upid": state.upid,
        "running": state.running,
        "ok": state.ok,
        "exitstatus": state.exitstatus,
        "log_tail": list(state.log_tail),
    }
