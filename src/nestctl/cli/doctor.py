"""`nestctl doctor`: every layer at once — the host, every VM on this node, optionally each guest.

Exit codes: 0 ready, 1 problems found, 2 could not check or usage error.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options, api_requested, intent_options, intent_params
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
@intent_options
@api_options()
@root_option
@json_option
def doctor(
    guests: bool, all_nodes: bool, no_qemu: bool, root: str, as_json: bool, **params: Any
) -> None:
    """Check every layer: the host, each VM's config and running QEMU, and (with --guests) what
    each guest sees. On a machine that is not a Proxmox VE node only the host is checked.

    With --api URL (or --target NAME) every node and VM of a cluster, through its API."""
    intent = intent_params(params)
    if api_requested(params):
        from nestctl.cli.apiopts import report_for, resolve_targets  # noqa: PLC0415
        from nestctl.vm.facts import VmOptions  # noqa: PLC0415
        from nestctl.vm.remote import doctor_report as api_doctor  # noqa: PLC0415

        opts = VmOptions(
            all_nodes=True, guest=guests, use_qemu=False, sections=not as_json, **intent
        )
        target = resolve_targets(params)[0]
        report = report_for(target, params, opts, lambda s, a: api_doctor(s, opts, a), cts=True)
        raise SystemExit(emit(report, as_json))
    from nestctl.doctor import doctor_report  # noqa: PLC0415 - lazy: keep start-up fast

    report = doctor_report(
        make_host(root),
        guests=guests,
        all_nodes=all_nodes,
        use_qemu=False if no_qemu else None,
        **intent,
    )
    raise SystemExit(emit(report, as_json))
