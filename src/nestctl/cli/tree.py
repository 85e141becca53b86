"""`nestctl tree`: every layer of a nested lab, from the outer cluster to the VMs inside.

Exit codes: 0 ready, 1 problems found, 2 could not check or usage error.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options, intent_options, intent_params
from nestctl.cli.common import NestctlError, emit, json_option, root_option

EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."


@click.command(epilog=EPILOG)
@api_options(multiple_targets=True)
@click.option("--local", is_flag=True, help="This node (read under --root) as the outer level.")
@click.option(
    "--inner",
    "inner",
    multiple=True,
    metavar="VMID=FILE",
    help="The level inside this node's VM VMID: FILE holds `nestctl doctor --all-nodes --json` "
    "run inside it (e.g. through its guest agent). Implies --local; repeatable.",
)
@click.option("--guests", is_flag=True, help="With --local: also ask each running VM's agent.")
@intent_options
@root_option
@json_option
@click.pass_context
def tree(ctx: click.Context, /, **params: Any) -> None:
    """Show the layers of a nested lab: each node, its VMs, and the Proxmox inside a VM.

    Targets: --api URL, or --target NAME (repeatable), or by default every target in the config
    file. An inner target is placed under the VM that runs it (`parent = "OUTER/VMID"`, or the
    VM's smbios1 uuid matching the inner host's DMI product_uuid).

    Without an API: --local shows this node, and --inner VMID=FILE the node inside its VM VMID,
    from that node's own `nestctl doctor --all-nodes --json`."""
    from nestctl.cli.apiopts import load_targets, resolve_targets, scan_target  # noqa: PLC0415
    from nestctl.tree.build import build_tree  # noqa: PLC0415
    from nestctl.tree.collect import view_from_scan  # noqa: PLC0415
    from nestctl.tree.render import text_lines, tree_report  # noqa: PLC0415
    from nestctl.tree.views import TargetView, unreachable  # noqa: PLC0415
    from nestctl.vm.facts import VmOptions  # noqa: PLC0415

    as_json: bool = params.pop("as_json")
    inner: tuple[str, ...] = params.pop("inner")
    root: str = params.pop("root")
    local, guests = params.pop("local"), params.pop("guests")
    intent = intent_params(params)
    views: list[TargetView] = []
    if local or inner:
        from nestctl.tree.local import local_views  # noqa: PLC0415

        try:
            views += local_views(root, inner, guests=guests, **intent)
        except NestctlError as exc:  # a malformed --inner: a usage error, before any work
            raise click.UsageError(str(exc)) from exc
    targets = resolve_targets(params)
    if not targets and not views:
        targets = list(load_targets(params).values())
    if not targets and not views:
        raise click.UsageError(
            "no targets: give --api URL, --local, or define [targets.NAME] tables in the config "
            "file"
        )
    opts = VmOptions(all_nodes=True, use_qemu=False, sections=False, **intent)
    for target in targets:
        try:
            scan = scan_target(target, params, opts)
        except NestctlError as exc:
            views.append(unreachable(target.name, target.parent, str(exc)))
            continue
        views.append(view_from_scan(target.name, target.parent, scan, opts))
    declared = (
        frozenset(t.parent for t in load_targets(params).values() if t.parent is not None)
        if not params.get("api_url")
        else frozenset()
    )
    nodes, findings, verdict = build_tree(views, declared)
    report = tree_report(nodes, findings, verdict)
    if not as_json:
        for line in text_lines(nodes):
            click.echo(line)
    ctx.exit(emit(report, as_json))
