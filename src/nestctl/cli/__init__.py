"""The `nestctl` command. Sub-commands are imported only when used, to keep start-up fast.

Exit codes (all commands): 0 ready, 1 problems found, 2 could not check or usage error.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from nestctl import __version__

#: verb -> "module:attribute"; each verb lives in its own module (one module per verb).
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": (
        "nestctl.cli.doctor:doctor",
        "Check every layer: host, VMs and (optionally) guests.",
    ),
    "host": ("nestctl.cli.host:host", "Check (and enable) nested virtualization on this host."),
    "vm": ("nestctl.cli.vm:vm", "Check (and prepare) Proxmox VMs for nested virtualization."),
    "ct": ("nestctl.cli.ct:ct", "Check (and prepare) containers for Docker, KVM, FUSE inside."),
    "guest": ("nestctl.cli.guest:guest", "Run inside a guest: can it host VMs of its own?"),
    "completion": ("nestctl.cli.completion:completion", "Print the shell completion script."),
    "bench": ("nestctl.cli.bench:bench", "Measure what nesting costs here, in VMs, per level."),
    "tree": ("nestctl.cli.tree:tree", "Show a nested lab level by level, each with its verdict."),
    "metrics": ("nestctl.cli.metrics:metrics", "Write every layer as Prometheus metrics."),
    "exporter": ("nestctl.cli.exporter:exporter", "Serve every layer's metrics to Prometheus."),
    "serve": ("nestctl.cli.serve:serve", "Serve a web dashboard with power and firewall control."),
    "snapshot": ("nestctl.cli.snapshot:snapshot", "List, take, roll back, delete guest snapshots."),
    "backup": ("nestctl.cli.backup:backup", "Each guest's last backup, back up now, backup jobs."),
    "watch": ("nestctl.cli.watch:watch", "Alert through Apprise when a layer breaks."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use (help lists them without importing)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{spec[0]} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # Ctrl-C inside a command: past click's "Aborted!" (exit 1) to the error boundary (130).
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from nestctl.cli.common import Interrupted  # noqa: PLC0415

            raise Interrupted from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


EPILOG = "Exit codes: 0 ready, 1 problems found, 2 could not check or usage error."


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nestctl", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Make nested virtualization on Proxmox VE and KVM hosts work, and prove it at every layer."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: the one error boundary (no traceback reaches the user)."""
    from nestctl.cli.common import run_main  # noqa: PLC0415 - keep import of the group cheap

    return run_main(cli, argv if argv is not None else sys.argv[1:])
