"""What every verb shares: `--root`/`--json` options, output, and the error boundary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from nestctl.exits import INTERRUPTED_EXIT, INTERRUPTED_MESSAGE

if TYPE_CHECKING:
    from nestctl.findings import Report
    from nestctl.machine import Host

F = TypeVar("F", bound=Callable[..., Any])


class Interrupted(Exception):  # noqa: N818 - named for what happened
    """Ctrl-C, carried past click (which would print "Aborted!" and exit 1)."""


def exit_interrupted() -> NoReturn:
    """One line on stderr, exit 130."""
    sys.stderr.write(INTERRUPTED_MESSAGE + "\n")
    sys.stderr.flush()
    sys.exit(INTERRUPTED_EXIT)


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
    """Run the click group with one error boundary: NestctlError -> one line, exit 2; Ctrl-C ->
    one line, exit 130 (click's own handling would say "Aborted!" and exit 1).

    Any other exception is a bug: one line naming it and how to see the traceback (`--debug`).
    """
    debug = "--debug" in argv
    try:
        code = group.main(args=argv, prog_name="nestctl", standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C while click parsed (it printed a newline already)
        exit_interrupted()
    except click.ClickException as exc:  # usage errors and the like: click's words, its code
        exc.show()
        sys.exit(exc.exit_code)
    except NestctlError as exc:
        click.echo(f"nestctl: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt):
        exit_interrupted()
    except BrokenPipeError:
        sys.exit(INTERRUPTED_EXIT)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"nestctl: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
