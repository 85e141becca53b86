"""`nestctl metrics`: every layer as Prometheus metrics, for node_exporter's textfile collector.

`--textfile DIR` replaces DIR/nestctl.prom atomically (meant for a systemd timer); without it the
metrics go to stdout. Exit codes: 0 the check ran and its metrics were written (whatever the
verdict: the verdict is in the metrics), 2 the check failed or timed out (failure metrics were
still written) or DIR could not be written.
"""

from __future__ import annotations

from typing import Any

import click

from nestctl.cli.common import NestctlError, root_option
from nestctl.metrics.run import Check

EPILOG = (
    "Exit codes: 0 metrics written, 2 the check failed (failure metrics are still written) or "
    "DIR could not be written. Not-ready layers are metrics, not an exit code."
)


def make_check(root: str, guests: bool, all_nodes: bool, no_qemu: bool) -> Check:
    """The report source (tests replace this to inject failures)."""
    from nestctl.metrics.sources import local_check  # noqa: PLC0415

    return local_check(
        root, guests=guests, all_nodes=all_nodes, use_qemu=False if no_qemu else None
    )


def check_from(opts: dict[str, Any], *, default_timeout: float) -> tuple[Check, float]:
    """The check the shared options describe, and how long to give it."""
    check = make_check(opts["root"], opts["guests"], opts["all_nodes"], opts["no_qemu"])
    timeout = opts["check_timeout"]
    return check, float(timeout) if timeout is not None else default_timeout


def check_options(func: click.decorators.FC) -> click.decorators.FC:
    """What `metrics` and `exporter` both take: which layers to check, and where."""
    for option in reversed(
        (
            click.option("--guests", is_flag=True, help="Also ask each running guest's agent."),
            click.option(
                "--all-nodes", is_flag=True, help="Every node's VMs, not only this one's."
            ),
            click.option("--no-qemu", is_flag=True, help="Do not ask the installed QEMU."),
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
