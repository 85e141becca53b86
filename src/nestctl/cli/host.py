"""`nestctl host`: check the physical host; `nestctl host enable|disable`: change `nested`.

Exit codes: 0 ready (or done), 1 problems found (or change pending), 2 could not check, refused,
or usage error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from nestctl.cli.common import emit, json_option, open_host, root_option
from nestctl.machine import Host

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."


def make_host(root: str) -> Host:
    """The `Host` for --root (tests replace this to inject a runner and euid)."""
    return open_host(root)


@click.group(invoke_without_command=True, epilog=EPILOG)
@root_option
@json_option
@click.pass_context
def host(ctx: click.Context, root: str, as_json: bool) -> None:
    """Check nested virtualization on this host: CPU, firmware, KVM module, `nested` now and
    after reboot, VMs in the way."""
    ctx.ensure_object(dict)
    ctx.obj["host_root"], ctx.obj["host_json"] = root, as_json
    if ctx.invoked_subcommand is not None:
        return
    from nestctl.host.report import host_report  # noqa: PLC0415 - lazy: keep start-up fast

    ctx.exit(emit(host_report(make_host(root)), as_json))


def _change(
    ctx: click.Context,
    action: str,
    root: str | None,
    as_json: bool,
    *,
    dry_run: bool,
    no_reload: bool,
) -> None:
    from nestctl.host.change import change_report  # noqa: PLC0415

    parent = ctx.obj or {}
    root = root if root is not None else parent.get("host_root", "/")
    as_json = as_json or bool(parent.get("host_json"))
    report = change_report(make_host(root), action, dry_run=dry_run, no_reload=no_reload)
    ctx.exit(emit(report, as_json))


def _change_options(func: F) -> F:
    func = click.option(
        "--no-reload", is_flag=True, help="Persist only; do not reload the module."
    )(func)
    func = click.option(
        "--dry-run", is_flag=True, help="Print the plan and the diffs; change nothing."
    )(func)
    func = click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object (a stable contract)."
    )(func)
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        help="Change the machine mounted at this directory (commands are recorded, not run).",
    )(func)


@host.command(epilog=EPILOG)
@_change_options
@click.pass_context
def enable(
    ctx: click.Context, root: str | None, as_json: bool, dry_run: bool, no_reload: bool
) -> None:
    """Turn nested virtualization on, persistently (reloads the module when no VM runs)."""
    _change(ctx, "enable", root, as_json, dry_run=dry_run, no_reload=no_reload)


@host.command(epilog=EPILOG)
@_change_options
@click.pass_context
def disable(
    ctx: click.Context, root: str | None, as_json: bool, dry_run: bool, no_reload: bool
) -> None:
    """Turn nested virtualization off, persistently (reloads the module when no VM runs)."""
    _change(ctx, "disable", root, as_json, dry_run=dry_run, no_reload=no_reload)
