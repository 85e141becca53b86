"""`nestctl watch`: alert through Apprise when a layer breaks (docs/watch.md).

Exit codes: 0 stopped cleanly (or every test message delivered), 1 a test message was not
delivered, 2 could not start (config, state file, Apprise missing) or usage error.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options
from nestctl.cli.common import NestctlError

EPILOG = (
    "Exit codes: 0 stopped (or every test message delivered), 1 a test message was not "
    "delivered, 2 could not start or usage error."
)


@click.command(epilog=EPILOG)
@api_options(multiple_targets=True)
@click.option("--test", "test_only", is_flag=True, help="Send one test message to every route.")
@click.option("--once", is_flag=True, help="Poll once, deliver what is owed, print the events.")
@click.option("--state", "state_file", metavar="FILE", help="State file (default: [watch]'s).")
def watch(**params: Any) -> None:
    """Watch every layer and alert through Apprise: node down, guest died, nesting lost, task
    failed, storage full, backup too old, certificate changed.

    Targets: --api URL, or --target NAME (repeatable), or every target in the config file.
    Routes (Apprise URLs, minimum severity, targets) come from its [watch] table."""
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from nestctl.api.targets import TargetConfigError, config_path  # noqa: PLC0415
    from nestctl.watch.apprise_send import AppriseMissingError, require_apprise  # noqa: PLC0415
    from nestctl.watch.config import load_watch  # noqa: PLC0415

    try:
        require_apprise()
    except AppriseMissingError as exc:
        raise NestctlError(str(exc)) from None
    path = config_path(os.environ, params.get("config_file"))
    try:
        config, known = load_watch(Path(path))
    except TargetConfigError as exc:
        raise NestctlError(str(exc)) from None
    except FileNotFoundError:
        raise NestctlError(f"{path}: no such file (watch needs its [watch] table)") from None
    if not config.routes:
        raise NestctlError(f"{path}: [watch] has no [[watch.route]] with Apprise URLs")
    if params["test_only"]:
        raise SystemExit(_test(config))
    from nestctl.cli.apiopts import resolve_targets  # noqa: PLC0415

    targets = resolve_targets(params) or list(known.values())
    if params.get("api_url"):
        from dataclasses import replace  # noqa: PLC0415

        # Named as `serve --api` names it, so that dashboard links in messages lead there.
        targets = [replace(t, name="api") for t in targets]
    if not targets:
        raise click.UsageError("no targets: give --api URL or define [targets.NAME] tables")
    _run(config, targets, params)


def _test(config: Any) -> int:
    import time  # noqa: PLC0415

    from nestctl.findings import Severity  # noqa: PLC0415
    from nestctl.watch.apprise_send import send_apprise  # noqa: PLC0415
    from nestctl.watch.messages import Message, clock_text  # noqa: PLC0415
    from nestctl.watch.service import zone_of  # noqa: PLC0415

    now = time.time()
    body = f"a test from nestctl watch at {clock_text(now, zone_of(config))}"
    if config.dashboard_url:
        body += "\n" + config.dashboard_url + "/events"
    message = Message("nestctl: test message", body, Severity.INFO)
    failed = 0
    for route in config.routes:
        for outcome in send_apprise(route, message, kind="test"):
            mark = "ok  " if outcome.ok else "FAIL"
            click.echo(f"{mark} {route.name}: {outcome.detail}")
            failed += not outcome.ok
    return 1 if failed else 0


def _client_factory(first: Any, params: dict[str, Any]) -> Any:
    """A fresh client per poll with the credentials read once at start (a bad token file or
    a missing password is exit 2 before the first poll; a password is asked once, not per
    poll)."""
    from nestctl.api.client import ApiClient  # noqa: PLC0415
    from nestctl.api.connect import ConnectOptions, merge  # noqa: PLC0415

    creds = first.credentials
    first.close()
    opts = ConnectOptions(fingerprint=params.get("fingerprint"), ca_file=params.get("ca_file"))

    def open_client(target: Any) -> ApiClient:
        merged = merge(target, opts)
        return ApiClient(
            merged.url,
            creds,
            fingerprint=merged.fingerprint,
            ca_file=merged.ca_file,
            timeout=params.get("timeout") or 10.0,
            pool_size=params.get("concurrency") or 8,
        )

    return open_client


def _run(config: Any, targets: list[Any], params: dict[str, Any]) -> None:
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415

    from nestctl.cli.apiopts import nested_reader, open_client  # noqa: PLC0415
    from nestctl.watch.apprise_send import send_apprise  # noqa: PLC0415
    from nestctl.watch.collect import Collector  # noqa: PLC0415
    from nestctl.watch.service import Watch  # noqa: PLC0415
    from nestctl.watch.state import StateError, StateStore  # noqa: PLC0415

    collectors = [
        Collector(
            t,
            _client_factory(open_client(t, params), params),
            nested_reader=nested_reader(params, t),
            concurrency=params.get("concurrency") or 8,
        )
        for t in targets
    ]
    store = StateStore(params.get("state_file") or config.state_file)
    service = Watch(config, collectors, store, send_apprise)
    try:
        if params["once"]:
            for outcome in service.tick(time.time()):
                click.echo(f"{'ok  ' if outcome.ok else 'FAIL'} {outcome.route}: {outcome.detail}")
            for rec in sorted(store.load().records.values(), key=lambda r: r["event"]["key"]):
                ev = rec["event"]
                click.echo(f"{rec['status']:8} {ev['severity']:7} {ev['path']}: {ev['what']}")
            return
        stopping = {"now": False}

        def stop(_signum: int, _frame: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        click.echo(
            f"nestctl watch: {len(targets)} target(s), {len(config.routes)} route(s), "
            f"state {store.path}",
            err=True,
        )

        def nap(seconds: float) -> None:
            end = time.monotonic() + seconds
            while not stopping["now"] and time.monotonic() < end:
                time.sleep(min(1.0, end - time.monotonic()))

        service.run(time.time, nap, lambda: stopping["now"])
    except StateError as exc:
        raise NestctlError(str(exc)) from None
