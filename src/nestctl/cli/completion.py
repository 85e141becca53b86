"""`nestctl completion SHELL`: print click's completion script for bash, zsh or fish."""

from __future__ import annotations

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Install, for example:
      nestctl completion bash > /etc/bash_completion.d/nestctl
    """
    from click.shell_completion import get_completion_class  # noqa: PLC0415

    from nestctl.cli import cli  # noqa: PLC0415

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click.Choice already limits the shells
        raise click.UsageError(f"unsupported shell {shell}")
    comp = cls(cli, {}, "nestctl", "_NESTCTL_COMPLETE")
    click.echo(comp.source())
