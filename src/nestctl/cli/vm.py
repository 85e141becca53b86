"""`nestctl vm [VMID...]`: check Proxmox VMs; `nestctl vm enable VMID --profile P`: prepare one.

Exit codes: 0 ready, 1 problems found (or change refused/pending), 2 could not check or usage error.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options, api_requested, intent_options, intent_params
from nestctl.cli.common import emit, json_option, open_host, root_option
from nestctl.machine import Host

EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."
PROFILES = ("linux-kvm", "windows-hyperv", "windows-wsl2-docker", "pve-lab")
VENDORS = ("intel", "amd")


def make_host(root: str) -> Host:
    """The `Host` for --root (tests replace this to inject a runner)."""
    return open_host(root)


class _VmGroup(click.Group):
    """`vm 100 101` names VMs; `vm enable ...` is a sub-command (VMIDs must not swallow it)."""

    allow_interspersed_args = True  # `vm 100 --json` as well as `vm --json 100`

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            super().parse_args(ctx, [])
            # click's own slot for the sub-command name: `_protected_args` since click 8.2,
            # `protected_args` in 8.1 (Debian 12 / Proxmox VE 8 ship 8.1.3).
            slot = "_protected_args" if hasattr(ctx, "_protected_args") else "protected_args"
            setattr(ctx, slot, [args[0]])
            ctx.args = args[1:]
            return ctx.args
        misplaced = [a for a in args if a in self.commands]
        if misplaced:
            raise click.UsageError(
                f"'{misplaced[0]}' must come right after 'vm' (its options follow it)", ctx
            )
        return super().parse_args(ctx, args)


class _VmidsArgument(click.Argument):
    """`[VMID]...` in `vm`'s own usage line, not in `vm enable`'s (`nestctl vm enable VMID`)."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return super().get_usage_pieces(ctx) if isinstance(ctx.command, click.Group) else []


def _check_version(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from nestctl.vm.versions import parse_version_arg  # noqa: PLC0415

    if parse_version_arg(value) is None:
        raise click.BadParameter(f"{value!r} is not a version like 9.2 or 11.0.2")
    return value


def _versions(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--qemu-version",
                metavar="X.Y.Z",
                callback=_check_version,
                help="Installed QEMU version to assume (default: pve-qemu-kvm from dpkg).",
            ),
            click.option(
                "--pve-version",
                metavar="X.Y",
                callback=_check_version,
                help="Proxmox VE version to assume (default: qemu-server from dpkg).",
            ),
        ]
    ):
        func = option(func)
    return func


def _checks(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--no-qemu",
                is_flag=True,
                help="Do not ask the installed QEMU; use the built-in table.",
            ),
            click.option(
                "--use-qemu",
                is_flag=True,
                help="Ask this machine's QEMU even under --root (by default only on a live host).",
            ),
            click.option(
                "--cluster-vendors",
                metavar="intel,amd",
                help="CPU vendors of the cluster's nodes, when known (lints cpu: host).",
            ),
        ]
    ):
        func = option(func)
    return func


def _vendors(text: str | None) -> set[str] | None:
    if not text:
        return None
    vendors = {v.strip().lower() for v in text.split(",") if v.strip()}
    bad = vendors - set(VENDORS)
    if bad:
        raise click.BadParameter(f"unknown vendor(s) {', '.join(sorted(bad))}; use intel,amd")
    return vendors


def _options(params: dict[str, Any], vmids: tuple[int, ...] = (), *, text: bool = True) -> Any:
    from nestctl.vm.report import VmOptions  # noqa: PLC0415 - lazy: keep start-up fast

    no_qemu, want_qemu = params.get("no_qemu", False), params.get("use_qemu", False)
    if no_qemu and want_qemu:
        raise click.UsageError("--no-qemu and --use-qemu exclude each other")
    use_qemu = False if no_qemu else (True if want_qemu else None)
    return VmOptions(
        vmids=vmids,
        all_nodes=params.get("all_nodes", False),
        qemu_version=params["qemu_version"],
        pve_version=params["pve_version"],
        use_qemu=use_qemu,
        cluster_vendors=_vendors(params.get("cluster_vendors")),
        guest=params.get("guest", False),
        sections=text,
        **intent_params(params),
    )


@click.group(cls=_VmGroup, invoke_without_command=True, epilog=EPILOG)
@click.argument(
    "vmids",
    cls=_VmidsArgument,
    nargs=-1,
    type=click.IntRange(min=100, max=999_999_999),
    metavar="[VMID]...",
)
@click.option("--all-nodes", is_flag=True, help="Every node's VMs (/etc/pve/nodes/*/qemu-server).")
@click.option("--guest", is_flag=True, help="Add the guest's own view (through the guest agent).")
@intent_options
@_checks
@_versions
@api_options()
@root_option
@json_option
@click.pass_context
def vm(
    ctx: click.Context, /, vmids: tuple[int, ...], root: str, as_json: bool, **params: Any
) -> None:
    """Check Proxmox VMs: host -> config -> running QEMU -> what the guest sees (vmx/svm).

    Without VMIDs every VM on this node is checked.
    """
    if ctx.invoked_subcommand is not None:
        return
    opts = _options(params, vmids, text=not as_json)
    if api_requested(params):
        from nestctl.cli.apiopts import report_for, resolve_targets  # noqa: PLC0415
        from nestctl.vm.remote import vm_report  # noqa: PLC0415

        target = resolve_targets(params)[0]
        report = report_for(target, params, opts, lambda s, a: vm_report(s, opts, a))
        ctx.exit(emit(report, as_json))
    from nestctl.vm.report import collect  # noqa: PLC0415

    report = collect(make_host(root), opts)
    ctx.exit(emit(report, as_json))


@vm.command(epilog=EPILOG)
@click.argument("vmid", type=click.IntRange(min=100, max=999_999_999))
@click.option("--profile", type=click.Choice(PROFILES), required=True, help="What the guest runs.")
@click.option(
    "--migratable",
    is_flag=True,
    help="A vendor CPU model (+ nested-virt) instead of host, so the VM can live-migrate.",
)
@click.option("--dry-run", is_flag=True, help="Print the exact commands; change nothing.")
@click.option(
    "--restart", is_flag=True, help="Apply pending changes now with `qm reboot` and re-check."
)
@click.option(
    "--snapshot",
    is_flag=True,
    help="Take snapshot nestctl-before-<profile>-<date> first; no change if it cannot be taken.",
)
@_versions
@api_options()
@root_option
@json_option
@click.pass_context
def enable(ctx: click.Context, /, vmid: int, root: str, as_json: bool, **params: Any) -> None:
    """Make VM VMID nested-ready for a profile with the smallest `qm set` (never a locked VM).

    With --api URL (or --target NAME): one config update through the API, carrying the digest
    of the config that was checked; --restart reboots it through the API and waits."""
    from nestctl.vm.report import EnableOptions, enable_report  # noqa: PLC0415

    opts = _options(params)
    eopts = EnableOptions(
        vmid,
        params["profile"],
        migratable=params["migratable"],
        dry_run=params["dry_run"],
        restart=params["restart"],
        snapshot=params["snapshot"],
    )
    if api_requested(params):
        from nestctl.cli.apiopts import enable_via_api  # noqa: PLC0415

        ctx.exit(emit(enable_via_api(params, opts, eopts), as_json))
    ctx.exit(emit(enable_report(make_host(root), opts, eopts), as_json))


@vm.command(epilog=EPILOG)
@click.argument("vmid", type=click.IntRange(min=100, max=999_999_999))
@click.option("--dry-run", is_flag=True, help="Print the exact commands; change nothing.")
@click.option(
    "--tag", metavar="NAME", help="The tag that marks VMs meant to nest (default: nested)."
)
@click.option(
    "--rollback",
    is_flag=True,
    help="Instead: roll back to the newest snapshot `vm enable --snapshot` took (all since lost).",
)
@click.option("--yes", is_flag=True, help="With --rollback: do not ask for the snapshot's name.")
@api_options()
@root_option
@json_option
@click.pass_context
def disable(ctx: click.Context, /, vmid: int, root: str, as_json: bool, **params: Any) -> None:
    """VM VMID is no longer meant to nest: remove its tag and its config's nesting flags
    (+nested-virt, +vmx, +svm) in one change carrying the config's digest (never a locked VM).

    cpu: host stays (it is chosen for speed). With --api URL (or --target NAME): through the API.
    --rollback goes back to the snapshot nestctl took before `vm enable` instead."""
    if params["rollback"]:
        ctx.exit(emit(_rollback(vmid, root, params), as_json))
    tag = intent_params(params)["intent_tag"]
    if api_requested(params):
        from nestctl.api.errors import ApiError  # noqa: PLC0415
        from nestctl.cli.apiopts import open_client, resolve_targets  # noqa: PLC0415
        from nestctl.cli.common import NestctlError  # noqa: PLC0415
        from nestctl.vm.disable import disable_report_api  # noqa: PLC0415

        target = resolve_targets(params)[0]
        if target.intent_tag and not params.get("tag"):
            tag = target.intent_tag.lower()
        client = open_client(target, params)
        try:
            report = disable_report_api(client, vmid, tag=tag, dry_run=params["dry_run"])
        except ApiError as exc:
            raise NestctlError(f"{target.name}: could not check: {exc}") from None
        finally:
            client.close()
        ctx.exit(emit(report, as_json))
    from nestctl.vm.disable import disable_report  # noqa: PLC0415

    ctx.exit(
        emit(disable_report(make_host(root), vmid, tag=tag, dry_run=params["dry_run"]), as_json)
    )


def _rollback(vmid: int, root: str, params: dict[str, Any]) -> Any:
    """`vm disable --rollback`: the snapshot is confirmed by its typed name (or --yes)."""
    import sys  # noqa: PLC0415

    from nestctl.cli.common import NestctlError  # noqa: PLC0415
    from nestctl.vm.rollback import rollback_api, rollback_local  # noqa: PLC0415

    def confirm(name: str) -> bool:
        if params["yes"]:
            return True
        if not sys.stdin.isatty():
            raise click.UsageError("--rollback discards the current state: add --yes to confirm")
        typed = click.prompt(f"VM {vmid} goes back to {name}; all since is lost. Type {name}")
        return bool(typed == name)

    if api_requested(params):
        from nestctl.api.errors import ApiError  # noqa: PLC0415
        from nestctl.cli.apiopts import open_client, resolve_targets  # noqa: PLC0415

        target = resolve_targets(params)[0]
        client = open_client(target, params)
        try:
            return rollback_api(client, vmid, dry_run=params["dry_run"], confirm=confirm)
        except ApiError as exc:
            raise NestctlError(f"{target.name}: {exc}") from None
        finally:
            client.close()
    return rollback_local(make_host(root), vmid, dry_run=params["dry_run"], confirm=confirm)
