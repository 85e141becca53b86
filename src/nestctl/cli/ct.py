"""`nestctl ct [CTID...]`: can each container run Docker, systemd, KVM, FUSE inside?
`nestctl ct enable CTID --workload docker`: make it so through `pct set` or the API.

Exit codes: 0 ready, 1 problems found (or change refused/pending), 2 could not check or usage
error.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options, api_requested
from nestctl.cli.common import NestctlError, emit, json_option, open_host, root_option
from nestctl.cli.vm import _VmGroup, _VmidsArgument
from nestctl.machine import Host

EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."
WORKLOADS = ("docker", "systemd", "kvm", "fuse")


def make_host(root: str) -> Host:
    """The `Host` for --root (tests replace this to inject a runner)."""
    return open_host(root)


class _CtGroup(_VmGroup):
    """`ct 150 151` names containers; `ct enable ...` is a sub-command."""


@click.group(cls=_CtGroup, invoke_without_command=True, epilog=EPILOG)
@click.argument(
    "ctids",
    cls=_VmidsArgument,
    nargs=-1,
    type=click.IntRange(min=100, max=999_999_999),
    metavar="[CTID]...",
)
@click.option("--all-nodes", is_flag=True, help="Every node's containers (/etc/pve/nodes/*/lxc).")
@click.option(
    "--all", "all_cts", is_flag=True, help="Judge every container as if it wanted nesting."
)
@click.option(
    "--tag",
    metavar="NAME",
    help="The Proxmox tag that marks containers meant to nest (default: nested).",
)
@api_options()
@root_option
@json_option
@click.pass_context
def ct(
    ctx: click.Context, /, ctids: tuple[int, ...], root: str, as_json: bool, **params: Any
) -> None:
    """Check Proxmox containers: can each run Docker/Podman, systemd, KVM and FUSE inside?

    Only containers that want nesting are judged (tag `nested`, nesting/keyctl features, or
    /dev/kvm passed in; --all for every one); the others are "not nested". Each finding names
    its fix (`pct set CTID --features ...`). Without CTIDs every container on this node."""
    if ctx.invoked_subcommand is not None:
        return
    from nestctl.ct.collect import CtOptions  # noqa: PLC0415 - lazy: keep start-up fast
    from nestctl.vm.intent import DEFAULT_TAG, valid_tag  # noqa: PLC0415

    tag = params.get("tag")
    if tag is not None and not valid_tag(tag):
        raise click.BadParameter(f"{tag!r} is not a Proxmox tag name", param_hint="--tag")
    opts = CtOptions(
        vmids=ctids,
        all_nodes=params["all_nodes"],
        all_cts=params["all_cts"],
        tag=(tag or DEFAULT_TAG).lower(),
        sections=not as_json,
    )
    if api_requested(params):
        ctx.exit(emit(_via_api(params, lambda client: _scan(client, opts, params)), as_json))
    from nestctl.ct.collect import collect_local  # noqa: PLC0415

    ctx.exit(emit(collect_local(make_host(root), opts), as_json))


def _scan(client: Any, opts: Any, params: dict[str, Any]) -> Any:
    from nestctl.ct.collect import ct_report_api  # noqa: PLC0415

    return ct_report_api(client, opts, concurrency=params.get("concurrency") or 8)


def _via_api(params: dict[str, Any], build: Any) -> Any:
    """One target's client, `build(client)`, and every API error as one line (exit 2)."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415
    from nestctl.cli.apiopts import open_client, resolve_targets  # noqa: PLC0415

    target = resolve_targets(params)[0]
    client = open_client(target, params)
    try:
        return build(client)
    except ApiError as exc:
        raise NestctlError(f"{target.name}: could not check: {exc}") from None
    finally:
        client.close()


@ct.command(epilog=EPILOG)
@click.argument("ctid", type=click.IntRange(min=100, max=999_999_999))
@click.option(
    "--workload",
    "workloads",
    type=click.Choice(WORKLOADS),
    multiple=True,
    required=True,
    help="What the container should run (repeatable).",
)
@click.option(
    "--kvm-gid",
    type=click.IntRange(min=0, max=4_294_967_294),
    help="The kvm group's id inside the container (for --workload kvm; default: mode 0666).",
)
@click.option("--dry-run", is_flag=True, help="Print the exact change; make none.")
@click.option("--tag", metavar="NAME", help="The intent tag the container gets (default: nested).")
@api_options()
@root_option
@json_option
@click.pass_context
def enable(ctx: click.Context, /, ctid: int, root: str, as_json: bool, **params: Any) -> None:
    """Let container CTID run a nested workload with the smallest `pct set` (never a locked CT).

    With --api URL (or --target NAME): one config update through the API carrying the digest of
    the config that was checked. A running container applies it at its next start."""
    from nestctl.ct.enable import CtEnableOptions  # noqa: PLC0415
    from nestctl.vm.intent import DEFAULT_TAG, valid_tag  # noqa: PLC0415

    tag = params.get("tag")
    if tag is not None and not valid_tag(tag):
        raise click.BadParameter(f"{tag!r} is not a Proxmox tag name", param_hint="--tag")
    eopts = CtEnableOptions(
        ctid,
        tuple(dict.fromkeys(params["workloads"])),
        dry_run=params["dry_run"],
        kvm_gid=params["kvm_gid"],
        tag=(tag or DEFAULT_TAG).lower(),
    )
    if api_requested(params):
        from nestctl.ct.enable import enable_api  # noqa: PLC0415

        ctx.exit(emit(_via_api(params, lambda client: enable_api(client, eopts)), as_json))
    from nestctl.ct.enable import enable_local  # noqa: PLC0415

    ctx.exit(emit(enable_local(make_host(root), eopts), as_json))
