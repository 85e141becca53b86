"""`nestctl metrics`: every layer as Prometheus metrics, for node_exporter's textfile collector.

`--textfile DIR` replaces DIR/nestctl.prom atomically (meant for a systemd timer); without it the
metrics go to stdout. Exit codes: 0 the check ran and its metrics were written (whatever the
verdict: the verdict is in the metrics), 2 the check failed or timed out (failure metrics were
still written) or DIR could not be written.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.apiopts import api_options
from nestctl.cli.common import NestctlError, root_option
from nestctl.metrics.run import Check

EPILOG = (
    "Exit codes: 0 metrics written, 2 the check failed (failure metrics are still written) or "
    "DIR could not be written. Not-ready layers are metrics, not an exit code."
)


def make_check(opts: dict[str, Any]) -> Check:
    """The report source: this machine, or a cluster with --api/--target (tests replace this
    to inject failures). A bad target or config file is a usage error now, not a failed run."""
    from nestctl.cli.apiopts import api_requested, resolve_targets  # noqa: PLC0415
    from nestctl.metrics import sources  # noqa: PLC0415

    if api_requested(opts):
        target = resolve_targets(opts)[0]
        return sources.api_check(target, opts, guests=opts["guests"], backups=opts["backups"])
    if opts["backups"] is not None:
        raise click.UsageError("--backups needs --api or --target (backups are read over the API)")
    return sources.local_check(
        opts["root"],
        guests=opts["guests"],
        all_nodes=opts["all_nodes"],
        use_qemu=False if opts["no_qemu"] else None,
    )


def check_from(opts: dict[str, Any], *, default_timeout: float) -> tuple[Check, float]:
    """The check the shared options describe, and how long to give it."""
    check = make_check(opts)
    timeout = opts["check_timeout"]
    return check, float(timeout) if timeout is not None else default_timeout


def check_options(func: click.decorators.FC) -> click.decorators.FC:
    """What `metrics` and `exporter` both take: which layers to check, and where (this
    machine, or a cluster through the target options of `nestctl doctor`)."""
    func = api_options()(func)
    for option in reversed(
        (
            click.option("--guests", is_flag=True, help="Also ask each running guest's agent."),
            click.option(
                "--all-nodes", is_flag=True, help="Every node's VMs, not only this one's."
            ),
            click.option("--no-qemu", is_flag=True, help="Do not ask the installed QEMU."),
            click.option(
                "--backups",
                type=click.FloatRange(min=0.01),
                default=None,
                metavar="DAYS",
                help="Also each guest's last backup (stale after DAYS; with --api/--target).",
            ),
            click.option(
                "--check-timeout",
                type=click.FloatRange(min=0.1),
                default=None,
                help="Give up on a check after this many seconds.",
            ),
            root_option,
        )
    ):
        func = option(func)
    return func


@click.command(epilog=EPILOG)
@click.option(
    "--textfile",
    "directory",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Write DIR/nestctl.prom atomically (node_exporter --collector.textfile.directory).",
)
@check_options
def metrics(directory: str | None, **opts: Any) -> None:
    """Check every layer once and write the result as Prometheus metrics."""
    import sys  # noqa: PLC0415

    from nestctl.metrics import textfile  # noqa: PLC0415
    from nestctl.metrics.exposition import render  # noqa: PLC0415
    from nestctl.metrics.run import CheckRunner  # noqa: PLC0415

    last = None
    if directory is not None:
        try:
            textfile.check_dir(directory)
        except textfile.TextfileError as exc:
            raise NestctlError(str(exc)) from None
        textfile.remove_stale_temporaries(directory)
        last = textfile.previous_last_success(directory)
    check, timeout = check_from(opts, default_timeout=300.0)
    result = CheckRunner(check, guests=opts["guests"]).run(timeout, last)
    text = render(result.families)
    if directory is None:
        sys.stdout.write(text)
    else:
        _write(directory, text)
    if not result.ok:
        raise NestctlError(f"the check failed: {result.error} (failure metrics written)")


def _write(directory: str, text: str) -> None:
    import signal  # noqa: PLC0415

    from nestctl.metrics import textfile  # noqa: PLC0415

    # systemd stops a unit with SIGTERM: unwind (and remove the temporary file) instead of dying.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        textfile.write_textfile(directory, text)
    except textfile.TextfileError as exc:
        raise NestctlError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
