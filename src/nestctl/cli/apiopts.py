"""The options every verb that can talk to a Proxmox API shares, and opening the client.

`--api URL` or `--target NAME` (from the config file) selects the cluster. Secrets never come
from argv: --token-file, $NESTCTL_API_TOKEN, the target's token_file, or --user with
--password-file or a prompt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from nestctl.cli.common import NestctlError

if TYPE_CHECKING:
    from nestctl.api.client import ApiClient
    from nestctl.api.targets import Target
    from nestctl.findings import Report
    from nestctl.vm.collect.api import ApiScan, NestedReader
    from nestctl.vm.collect.pmxcfs import ClusterFiles
    from nestctl.vm.enable import EnableOptions
    from nestctl.vm.facts import VmOptions
    from nestctl.vm.report import AgentsFor

F = TypeVar("F", bound=Callable[..., Any])


def api_options(*, multiple_targets: bool = False) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        options = [
            click.option(
                "--api", "api_url", metavar="URL", help="A Proxmox API: https://HOST:8006."
            ),
            click.option(
                "--target",
                "targets",
                metavar="NAME",
                multiple=multiple_targets,
                help="A named target from the config file"
                + (" (repeatable)." if multiple_targets else "."),
            ),
            click.option(
                "--config",
                "config_file",
                metavar="FILE",
                help="Config file (default: $XDG_CONFIG_HOME/nestctl/config.toml).",
            ),
            click.option(
                "--token-file",
                metavar="FILE",
                help="File holding the API token USER@REALM!ID=SECRET (or $NESTCTL_API_TOKEN).",
            ),
            click.option("--user", metavar="USER@REALM", help="Log in with a password (a ticket)."),
            click.option("--password-file", metavar="FILE", help="File holding --user's password."),
            click.option(
                "--fingerprint",
                metavar="SHA256",
                help="Pin the node's certificate (pvenode cert info) instead of a CA.",
            ),
            click.option("--ca-file", metavar="FILE", help="CA bundle to verify the API with."),
            click.option(
                "--ssh",
                is_flag=True,
                help="Read what the API cannot (the nested parameter) on each node as root.",
            ),
            click.option(
                "--prometheus",
                metavar="URL",
                help="Read each node's nested value from this Prometheus (nestctl's exporter "
                "or textfile on the nodes).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.5, max=600),
                default=10.0,
                show_default=True,
                help="Seconds per API request.",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(min=1, max=128),
                default=16,
                show_default=True,
                help="API requests in flight at once (pveproxy runs API calls in 3 worker "
                "processes per node: 16 hides a network round trip without queueing much; "
                "raise it for a slow link).",
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def intent_options(func: F) -> F:
    """`--all-vms` and `--tag`: which VMs are judged as wanting nesting (nestctl.vm.intent)."""
    func = click.option(
        "--tag",
        metavar="NAME",
        help="The Proxmox tag that marks VMs meant to nest (default: nested, or the target's "
        "intent_tag).",
    )(func)
    return click.option(
        "--all-vms",
        is_flag=True,
        help="Judge every VM as if it wanted nesting (which of my VMs could nest?).",
    )(func)


def intent_params(params: dict[str, Any]) -> dict[str, Any]:
    """`VmOptions` keywords from --all-vms / --tag (a bad tag name is a usage error)."""
    from nestctl.vm.intent import DEFAULT_TAG, valid_tag  # noqa: PLC0415

    tag = params.get("tag")
    if tag is not None and not valid_tag(tag):
        raise click.BadParameter(f"{tag!r} is not a Proxmox tag name", param_hint="--tag")
    return {"all_vms": bool(params.get("all_vms")), "intent_tag": (tag or DEFAULT_TAG).lower()}


def api_requested(params: dict[str, Any]) -> bool:
    return bool(params.get("api_url") or params.get("targets"))


def load_targets(params: dict[str, Any]) -> dict[str, Target]:
    from nestctl.api.targets import TargetConfigError, config_path  # noqa: PLC0415
    from nestctl.api.targets import load_targets as load  # noqa: PLC0415

    path = config_path(os.environ, params.get("config_file"))
    try:
        return load(path, required=bool(params.get("config_file")))
    except TargetConfigError as exc:
        raise NestctlError(str(exc)) from None


def resolve_targets(params: dict[str, Any]) -> list[Target]:
    """The targets named by --target (or the one --api URL), in the order given."""
    from nestctl.api.targets import Target  # noqa: PLC0415

    names = params.get("targets") or ()
    if isinstance(names, str):
        names = (names,)
    if params.get("api_url") and names:
        raise click.UsageError("give --api URL or --target NAME, not both")
    if params.get("api_url"):
        return [Target(name=params["api_url"], url=params["api_url"])]
    known = load_targets(params)
    out = []
    for name in names:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none defined"
            raise NestctlError(f"no target {name!r} in the config file (targets: {listed})")
        out.append(known[name])
    return out


def _prompt(text: str) -> str:
    if not sys.stdin.isatty():
        raise NestctlError("no terminal to ask for the password on: use --password-file")
    return str(click.prompt(text, hide_input=True))


def open_client(target: Target, params: dict[str, Any]) -> ApiClient:
    """A client for `target` with the flags applied; problems are one-line usage errors."""
    from nestctl.api.connect import ConnectOptions, connect  # noqa: PLC0415
    from nestctl.api.credentials import CredentialError  # noqa: PLC0415
    from nestctl.api.errors import ApiError  # noqa: PLC0415

    opts = ConnectOptions(
        token_file=params.get("token_file"),
        user=params.get("user"),
        password_file=params.get("password_file"),
        fingerprint=params.get("fingerprint"),
        ca_file=params.get("ca_file"),
        timeout=params.get("timeout") or 10.0,
        concurrency=params.get("concurrency") or 16,
    )
    try:
        return connect(target, opts, os.environ, prompt=_prompt)
    except (CredentialError, ValueError, ApiError) as exc:
        raise NestctlError(f"{target.name}: {exc}") from None


@contextmanager
def progress_bar(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[], None]]]:
    """(set_total, advance) for a rich progress bar on stderr when it is a terminal.

    Never on stdout: `--json` output stays one clean object.
    """
    if not sys.stderr.isatty():
        yield (lambda _total: None), (lambda: None)
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress  # noqa: PLC0415

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield (lambda total: bar.update(task, total=total)), (lambda: bar.advance(task))


def nested_reader(params: dict[str, Any], target: Target) -> NestedReader | None:
    """Each node's `nested`: over SSH (--ssh), then from Prometheus (--prometheus URL or the
    target's `prometheus`); the first that knows a node answers (evidence.py)."""
    from nestctl.vm.collect.evidence import chain_readers, prometheus_reader  # noqa: PLC0415

    readers = []
    if params.get("ssh") or target.ssh:
        from nestctl.vm.collect.ssh import ssh_nested_reader  # noqa: PLC0415

        readers.append(ssh_nested_reader())
    prometheus = params.get("prometheus") or target.prometheus
    if prometheus:
        if not str(prometheus).startswith(("http://", "https://")):
            raise click.BadParameter("must be an http(s) URL", param_hint="--prometheus")
        readers.append(prometheus_reader(str(prometheus), timeout=params.get("timeout") or 10.0))
    return chain_readers(readers)


def cluster_files(params: dict[str, Any], target: Target) -> ClusterFiles | None:
    """With --ssh: every VM config of the cluster over one SSH connection (the fast path)."""
    if not (params.get("ssh") or target.ssh):
        return None
    from urllib.parse import urlsplit  # noqa: PLC0415

    from nestctl.vm.collect.pmxcfs import fetch_cluster_files  # noqa: PLC0415

    host = urlsplit(target.url if "://" in target.url else "https://" + target.url).hostname
    return fetch_cluster_files(host or target.url)


def scan_target(target: Target, params: dict[str, Any], opts: VmOptions) -> ApiScan:
    """The API scan of one target (containers too); a failure before any data is exit 2 with
    nothing printed."""
    return report_for(target, params, opts, lambda scan, _agents: scan, cts=True)


R = TypeVar("R")


def report_for(
    target: Target,
    params: dict[str, Any],
    opts: VmOptions,
    build: Callable[[ApiScan, AgentsFor | None], R],
    *,
    cts: bool = False,
) -> R:
    """Scan `target` and `build` the result while the client is open (guest agents need it).
    `cts`: read the containers' configs too (`scan.ct_scan`)."""
    from nestctl.api.errors import ApiError  # noqa: PLC0415
    from nestctl.api.guestagent import ApiGuestAgent  # noqa: PLC0415
    from nestctl.vm.collect.api import collect_api  # noqa: PLC0415

    client = open_client(target, params)
    if target.intent_tag and not params.get("tag"):
        opts.intent_tag = target.intent_tag.lower()
    if not params.get("api_url"):  # a named target: its inner targets are declared in the file
        opts.hosts_inner = frozenset(
            t.parent[1]
            for t in load_targets(params).values()
            if t.parent is not None and t.parent[0] == target.name
        )

    def agents(node: str | None, vmid: int) -> Callable[[], ApiGuestAgent]:
        return lambda: ApiGuestAgent(client, node or "", vmid)

    try:
        with progress_bar(f"scanning {target.name}") as (set_total, advance):
            scan = collect_api(
                client,
                opts,
                concurrency=params.get("concurrency") or 16,
                nested_reader=nested_reader(params, target),
                progress=advance,
                on_total=set_total,
                files=cluster_files(params, target),
            )
            if cts:
                from nestctl.ct.collect import ct_options, scan_api  # noqa: PLC0415

                scan.ct_scan = scan_api(
                    client,
                    ct_options(opts),
                    concurrency=params.get("concurrency") or 16,
                    resources=scan.resources,
                )
        return build(scan, agents if opts.guest else None)
    except ApiError as exc:
        raise NestctlError(f"{target.name}: could not check: {exc}") from None
    finally:
        client.close()


def enable_via_api(params: dict[str, Any], opts: VmOptions, eopts: EnableOptions) -> Report:
    from nestctl.api.errors import ApiError  # noqa: PLC0415
    from nestctl.vm.remote_enable import enable_report_api  # noqa: PLC0415

    target = resolve_targets(params)[0]
    client = open_client(target, params)
    try:
        return enable_report_api(client, opts, eopts)
    except ApiError as exc:
        raise NestctlError(f"{target.name}: could not check: {exc}") from None
    finally:
        client.close()
