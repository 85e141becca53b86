"""`nestctl serve`: the phone-first web dashboard (Starlette + Jinja2 + uvicorn, the `serve` extra).

Binds 127.0.0.1 by default; any other address needs --tls-cert/--tls-key, or --insecure-http
(which prints a warning). Each visitor logs in with their own Proxmox identity.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

import click

from nestctl.cli.common import NestctlError

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
    if not port.isdigit() or not 0 < int(port) < 65536:
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
def serve(  # noqa: PLR0917 - click passes every option positionally
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    insecure_http: bool,
    api_url: str | None,
    fingerprint: str | None,
    target_names: tuple[str, ...],
    config_file: str | None,
) -> None:
    """Serve a web dashboard of every layer, with power and firewall control."""
    from nestctl.web.settings import ServeSettings, listen_problem  # noqa: PLC0415

    host, port = parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise NestctlError("--tls-cert and --tls-key go together")
    problem = listen_problem(host, bool(tls_cert), insecure_http)
    if problem is not None:
        raise NestctlError(problem)
    _require_packages()
    from nestctl.web.targets import load_targets  # noqa: PLC0415

    targets = load_targets(api_url, fingerprint, target_names, config_file)
    settings = ServeSettings(
        targets,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure_http=insecure_http,
    )
    if insecure_http and not settings.tls:
        click.echo(
            f"warning: serving plain HTTP on {host}: passwords, tickets and session cookies "
            f"cross the network in clear. Use --tls-cert/--tls-key.",
            err=True,
        )
    run(settings)


def run(settings: object) -> None:
    import uvicorn  # noqa: PLC0415

    from nestctl.web.app import create_app  # noqa: PLC0415
    from nestctl.web.backend import PveConnector  # noqa: PLC0415
    from nestctl.web.engine import tree_builder  # noqa: PLC0415
    from nestctl.web.settings import ServeSettings  # noqa: PLC0415

    assert isinstance(settings, ServeSettings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    app = create_app(settings, PveConnector(), tree_builder())
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
