"""What every verb shares: `--root`/`--json` options, output, and the error boundary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from nestctl.findings import Report
    from nestctl.machine import Host

F = TypeVar("F", bound=Callable[..., Any])


class NestctlError(Exception):
    """An expected failure: printed as one line on stderr, exit code 2 unless told otherwise."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def root_option(func: F) -> F:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=str),
        default="/",
        show_default=True,
        envvar="NESTCTL_ROOT",
        help="Inspect the machine mounted or collected at this directory.",
    )(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object (a stable contract)."
    )(func)


def open_host(root: str) -> Host:
    """The `Host` for `--root`, or a clear error when the root cannot be inspected at all."""
    from nestctl.machine import Host  # noqa: PLC0415 - lazy: keep start-up fast

    host = Host(root)
    problem = host.root_problem()
    if problem is not None:
        raise NestctlError(f"cannot check: {problem}")
    return host


def emit(report: Report, as_json: bool) -> int:
    """Print a report and return its exit code."""
    if as_json:
        from nestctl.render.jsonout import render_json  # noqa: PLC0415

        render_json(report)
    else:
        from nestctl.render.text import render_text  # noqa: PLC0415

        render_text(report)
    return report.exit_code


def finish(report: Report, as_json: bool) -> NoReturn:
    sys.exit(emit(report, as_json))


def run_main(group: click.Group, argv: list[str]) -> Any:
    """Run the click group with one error boundary: NestctlError -> one line, exit 2.

    Any other exception is a bug: one line naming it and how to see the traceback (`--debug`).
    """
    debug = "--debug" in argv
    try:
        return group.main(args=argv, prog_name="nestctl", standalone_mode=True)
    except NestctlError as exc:
        click.echo(f"nestctl: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"nestctl: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        sys.exit(2)
