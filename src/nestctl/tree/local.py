"""`nestctl tree --local`: this node, and the levels brought back from inside its VMs (no API).

A nested lab without an API is still a chain of nodes that can each describe themselves: run
`nestctl doctor --all-nodes --json` inside VM VMID (through its guest agent, SSH, a console) and
hand the output to `--inner VMID=FILE`; it hangs under that VM of this node.
"""

from __future__ import annotations

import json
import re

from nestctl.cli.common import NestctlError, open_host
from nestctl.tree.views import TargetView, from_doctor, unreachable
from nestctl.userfile import UserFileError, read_user_file

LOCAL = "local"
#: A doctor report is a few KB per VM: anything far bigger is not one.
MAX_BYTES = 16 * 1024 * 1024
_INNER = re.compile(r"([1-9][0-9]{0,8})=(.+)", re.ASCII | re.DOTALL)


def parse_inner(spec: str) -> tuple[int, str]:
    m = _INNER.fullmatch(spec)
    if m is None:
        raise NestctlError(f"--inner {spec!r}: expected VMID=FILE, e.g. --inner 101=l1.json")
    return int(m.group(1)), m.group(2)


def _inner_view(vmid: int, path: str, *, all_vms: bool = False) -> TargetView:
    name, parent = f"vm{vmid}", (LOCAL, vmid)
    try:  # a file the user named: a FIFO or a device is refused, never read forever
        data = read_user_file(path, MAX_BYTES, what="doctor report")
    except UserFileError as exc:
        return unreachable(name, parent, str(exc))
    except OSError as exc:
        return unreachable(name, parent, f"{path}: {exc.strerror or exc}")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return unreachable(name, parent, f"{path}: not JSON ({exc!s:.80})")
    return from_doctor(name, body, parent, all_vms=all_vms)


def local_views(
    root: str,
    inner: tuple[str, ...],
    *,
    guests: bool,
    all_vms: bool = False,
    intent_tag: str = "nested",
) -> list[TargetView]:
    """This node's view (its own doctor report) and one view per `--inner VMID=FILE`."""
    from nestctl.doctor import doctor_report  # noqa: PLC0415 - lazy: keep start-up fast
    from nestctl.vm.config import local_node  # noqa: PLC0415

    specs = [parse_inner(s) for s in inner]  # usage errors before any work
    host = open_host(root)
    report = doctor_report(
        host, guests=guests, all_nodes=True, use_qemu=False, all_vms=all_vms, intent_tag=intent_tag
    )
    views = [from_doctor(LOCAL, report.to_json(), node=local_node(host), all_vms=all_vms)]
    views += [_inner_view(vmid, path, all_vms=all_vms) for vmid, path in specs]
    return views
