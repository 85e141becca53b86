"""`nestctl exporter`: serve every layer's metrics at http://LISTEN/metrics for Prometheus.

Each scrape runs a fresh check (at most --check-timeout seconds); a scrape sooner than
--min-interval after the last check gets that check's page. Needs prometheus_client (Debian:
python3-prometheus-client). Exit codes: 2 when it cannot start (missing package, bad --listen,
port in use); it runs until stopped otherwise.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.common import NestctlError
from nestctl.cli.metrics import check_from, check_options
from nestctl.parse import is_ascii_digits

DEFAULT_LISTEN = "127.0.0.1:10221"
MISSING = (
    "the exporter needs prometheus_client: apt install python3-prometheus-client "
    "(or pip install 'nestctl[metrics]')"
)


def parse_listen(text: str) -> tuple[str, int, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port, address family)."""
    import socket  # noqa: PLC0415

    host, sep, port_text = text.rpartition(":")
    if not sep or not is_ascii_digits(port_text):
        raise NestctlError(f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise NestctlError(f"--listen {text!r}: port must be 1..65535")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"  # noqa: S104 - asked for
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise NestctlError(f"--listen {text!r}: {exc}") from None
    family, _, _, _, addr = infos[0]
    return str(addr[0]), port, int(family)


@click.command(epilog="Exit codes: 2 when the exporter cannot start.")
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="HOST:PORT to serve /metrics on (0.0.0.0:PORT for every address).",
)
@click.option(
    "--min-interval",
    type=click.FloatRange(min=0.0),
    default=30.0,
    show_default=True,
    help="Serve the last check's page to scrapes sooner than this many seconds after it.",
)
@check_options
def exporter(listen: str, min_interval: float, **opts: Any) -> None:
    """Serve Prometheus metrics of every layer, checked on each scrape."""
    try:
        import prometheus_client  # noqa: F401, PLC0415 - optional dependency
    except ImportError:
        raise NestctlError(MISSING) from None
    from nestctl.metrics.exporter import Exporter, make_server  # noqa: PLC0415

    host, port, family = parse_listen(listen)
    check, timeout = check_from(opts, default_timeout=8.0)
    exp = Exporter(check, guests=opts["guests"], timeout=timeout, min_interval=min_interval)
    try:
        server = make_server(exp, host, port, family)
    except OSError as exc:
        raise NestctlError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    click.echo(f"nestctl exporter: serving http://{listen}/metrics", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
