"""`nestctl tree`: every layer of a nested lab, from the outer cluster to the VMs inside.

Exit codes: 0 ready, 1 problems found, 2 could not check or usage error.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options
from nestctl.cli.common import NestctlError, emit, json_option

EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."


@click.command(epilog=EPILOG)
@api_options(multiple_targets=True)
@json_option
@click.pass_context
def tree(ctx: click.Context, /, as_json: bool, **params: Any) -> None:
    """Show the layers of a nested lab: each node, its VMs, and the Proxmox inside a VM.

    Targets: --api URL, or --target NAME (repeatable), or by default every target in the config
    file. An inner target is placed under the VM that runs it (`parent = "OUTER/VMID"`, or the
    VM's smbios1 uuid matching the inner host's DMI product_uuid)."""
    from nestctl.cli.apiopts import load_targets, resolve_targets, scan_target  # noqa: PLC0415
    from nestctl.tree.build import build_tree  # noqa: PLC0415
    from nestctl.tree.collect import view_from_scan  # noqa: PLC0415
    from nestctl.tree.render import text_lines, tree_report  # noqa: PLC0415
    from nestctl.tree.views import TargetView, unreachable  # noqa: PLC0415
    from nestctl.vm.facts import VmOptions  # noqa: PLC0415

    targets = resolve_targets(params)
    if not targets:
        targets = list(load_targets(params).values())
    if not targets:
        raise click.UsageError(
            "no targets: give --api URL, or define [targets.NAME] tables in the config file"
        )
    opts = VmOptions(all_nodes=True, use_qemu=False, sections=False)
    views: list[TargetView] = []
    for target in targets:
        try:
            scan = scan_target(target, params, opts)
        except NestctlError as exc:
            views.append(unreachable(target.name, target.parent, str(exc)))
            continue
        views.append(view_from_scan(target.name, target.parent, scan, opts))
    nodes, findings, verdict = build_tree(views)
    report = tree_report(nodes, findings, verdict)
    if not as_json:
        for line in text_lines(nodes):
            click.echo(line)
    ctx.exit(emit(report, as_json))
