"""`nestctl serve`: the phone-first web dashboard (Starlette + Jinja2 + uvicorn, the `serve` extra).

Binds 127.0.0.1 by default; any other address needs --tls-cert/--tls-key, or --insecure-http
(which prints a warning). Each visitor logs in with their own Proxmox identity.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Any

import click

from nestctl.cli.common import NestctlError
from nestctl.parse import is_ascii_digits
from nestctl.web.settings import ServeSettings, listen_problem

EPILOG = "Exit codes: 0 stopped normally, 2 could not start (usage error, missing packages)."


def _require_packages() -> None:
    from nestctl.web import DEBIAN_PACKAGES  # noqa: PLC0415

    missing = [m for m in ("starlette", "jinja2", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise NestctlError(
            f"nestctl serve needs {', '.join(missing)}: apt install {DEBIAN_PACKAGES} "
            f"(or pip install 'nestctl[serve]')"
        )


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "8765"
    host = host.strip("[]") or "127.0.0.1"
    if not is_ascii_digits(port) or not 0 < int(port) < 65536:
        raise NestctlError(f"--listen {text}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    return host, int(port)


@click.command(epilog=EPILOG)
@click.option(
    "--listen",
    default="127.0.0.1:8765",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve on. Off loopback, TLS (or --insecure-http) is required.",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="PEM private key.")
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Serve plain HTTP off loopback (passwords cross the network in clear).",
)
@click.option("--api", "api_url", metavar="URL", help="A Proxmox API, e.g. https://pve1:8006.")
@click.option("--fingerprint", help="SHA-256 of that API's certificate (pvenode cert info).")
@click.option("--target", "target_names", multiple=True, help="Named target(s) of the config file.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file.")
@click.option(
    "--ssh",
    is_flag=True,
    help="Also read each node's nested parameter (and DMI uuid) over SSH as root, with this "
    "machine's SSH trust (the API cannot show them).",
)
@click.option(
    "--prometheus",
    metavar="URL",
    help="Read each node's nested value from this Prometheus (nestctl's exporter or textfile "
    "on the nodes), without SSH.",
)
@click.option(
    "--local",
    is_flag=True,
    help="This Proxmox VE node through pvesh, no API login (run as root; only root may act).",
)
@click.option(
    "--key-file",
    default="/run/nestctl/serve.key",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="With --local: where the one-time login key is written (root-only).",
)
@click.option(
    "--console-idle",
    default=900,
    show_default=True,
    type=click.IntRange(10, 86400),
    metavar="SECONDS",
    help="Close a console (screen or terminal) after this long without input.",
)
def serve(  # noqa: PLR0917 - click passes every option positionally
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    insecure_http: bool,
    api_url: str | None,
    fingerprint: str | None,
    target_names: tuple[str, ...],
    config_file: str | None,
    ssh: bool,
    prometheus: str | None,
    local: bool,
    key_file: str,
    console_idle: int,
) -> None:
    """Serve a web dashboard of every layer, with power and firewall control.

    Each visitor logs in at /login with their own Proxmox identity (user + password, or an API
    token as user USER@REALM!TOKENID with its secret as password); everything they do runs with
    that identity's permissions."""
    host, port = parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise NestctlError("--tls-cert and --tls-key go together")
    problem = listen_problem(host, bool(tls_cert), insecure_http)
    if problem is not None:
        raise NestctlError(problem)
    _require_packages()
    settings = ServeSettings(
        [], host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, insecure_http=insecure_http
    )
    settings.console_idle = float(console_idle)
    if not any(importlib.util.find_spec(m) for m in ("websockets", "wsproto")):
        click.echo(
            "note: consoles need a WebSocket library for uvicorn: "
            "apt install python3-websockets (or pip install websockets)",
            err=True,
        )
    if local:
        if api_url or target_names or config_file or ssh:
            raise NestctlError("--local serves this node: give no --api, --target, --config, --ssh")
        connector, tree = _local(settings, key_file)
    else:
        from nestctl.web.backend import PveConnector  # noqa: PLC0415
        from nestctl.web.engine import tree_builder  # noqa: PLC0415
        from nestctl.web.targets import load_targets  # noqa: PLC0415

        settings.targets = load_targets(api_url, fingerprint, target_names, config_file)
        from nestctl.watch.config import watch_state_of  # noqa: PLC0415

        state = watch_state_of(config_file)  # the events page shows what `nestctl watch` keeps
        if state is not None:
            settings.extra["watch_state"] = state
        from nestctl.vm.collect.evidence import chain_readers  # noqa: PLC0415

        readers = []
        if ssh:
            from nestctl.vm.collect.ssh import ssh_nested_reader  # noqa: PLC0415

            readers.append(ssh_nested_reader())
        if prometheus:
            if not prometheus.startswith(("http://", "https://")):
                raise NestctlError(f"--prometheus {prometheus}: expected an http(s) URL")
            readers.append(_fresh_prometheus(prometheus))
        connector, tree = PveConnector(), tree_builder(nested_reader=chain_readers(readers))
    if insecure_http and not settings.tls:
        click.echo(
            f"warning: serving plain HTTP on {host}: passwords, tickets and session cookies "
            f"cross the network in clear. Use --tls-cert/--tls-key.",
            err=True,
        )
    run(settings, connector, tree)


def _fresh_prometheus(url: str) -> Any:
    """A reader asking Prometheus anew for each scan (the dashboard scans again and again)."""
    from nestctl.vm.collect.evidence import prometheus_reader  # noqa: PLC0415

    state: dict[str, Any] = {}

    def read(node: str, address: str | None) -> Any:
        import time  # noqa: PLC0415

        if state.get("at", 0.0) < time.monotonic() - 30.0:
            state["reader"], state["at"] = prometheus_reader(url), time.monotonic()
        return state["reader"](node, address)

    return read


def _local(settings: ServeSettings, key_file: str) -> tuple[Any, Any]:
    from pathlib import Path  # noqa: PLC0415

    from nestctl.cli.common import open_host  # noqa: PLC0415
    from nestctl.web.engine import tree_builder  # noqa: PLC0415
    from nestctl.web.local import LocalConnector, local_target, nested_reader, write_key  # noqa: PLC0415

    host = open_host("/")
    if host.find_program("pvesh") is None:
        raise NestctlError("--local needs a Proxmox VE node (no pvesh here): use --api URL")
    is_root = os.geteuid() == 0
    if not is_root:
        raise NestctlError("--local acts through pvesh, which only root may run: run as root")
    try:
        key = write_key(Path(key_file))
    except OSError as exc:
        raise NestctlError(f"cannot write the login key to {key_file}: {exc.strerror}") from None
    click.echo(f"local mode: log in as root@pam with the key in {key_file} (cat it)", err=True)
    settings.targets = [local_target()]
    return LocalConnector(host, key, is_root=is_root), tree_builder(
        nested_reader=nested_reader(host)
    )


def run(settings: ServeSettings, connector: Any, tree: Any) -> None:
    import uvicorn  # noqa: PLC0415

    from nestctl.web.app import create_app  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    app = create_app(settings, connector, tree)
    scheme = "https" if settings.tls else "http"
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    click.echo(f"nestctl serve: {scheme}://{shown}:{settings.port}/ (Ctrl-C stops)", err=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        proxy_headers=False,  # the rate limit keys on the real peer, not a forged X-Forwarded-For
        server_header=False,
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    server.run()
    sys.stdout.flush()
