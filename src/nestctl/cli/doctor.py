"""`nestctl doctor`: every layer at once — the host, every VM on this node, optionally each guest.

Exit codes: 0 ready, 1 problems found, 2 could not check or usage error.
"""

from __future__ import annotations

import click

from nestctl.cli.common import emit, json_option, open_host, root_option
from nestctl.machine import Host

EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."


def make_host(root: str) -> Host:
    """The `Host` for --root (tests replace this to inject a runner)."""
    return open_host(root)


@click.command(epilog=EPILOG)
@click.option("--guests", is_flag=True, help="Also ask each running VM's guest agent what it sees.")
@click.option("--all-nodes", is_flag=True, help="Every node's VMs, not only this node's.")
@click.option("--no-qemu", is_flag=True, help="Do not ask the installed QEMU; use the table.")
@root_option
@json_option
def doctor(guests: bool, all_nodes: bool, no_qemu: bool, root: str, as_json: bool) -> None:
    """Check every layer: the host, each VM's config and running QEMU, and (with --guests) what
    each guest sees. On a machine that is not a Proxmox VE node only the host is checked."""
    from nestctl.doctor import doctor_report  # noqa: PLC0415 - lazy: keep start-up fast

    report = doctor_report(
        make_host(root), guests=guests, all_nodes=all_nodes, use_qemu=False if no_qemu else None
    )
    raise SystemExit(emit(report, as_json))
