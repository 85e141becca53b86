"""nestctl(1), written from the click command line itself so it cannot drift from --help."""

from __future__ import annotations

import importlib
import sys

from common import SRC

FILES = (
    (
        "/etc/modprobe.d/kvm-intel.conf, /etc/modprobe.d/kvm-amd.conf",
        "where nestctl host enable persists nested=1 (the file that decides is reported).",
    ),
    ("/var/backups/nestctl/", "backups of every file nestctl changed."),
    ("/etc/pve/qemu-server/VMID.conf", "Proxmox VM configurations (changed only through qm set)."),
)


def roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and a leading dot or quote."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    lines = [("\\&" + line if line.startswith((".", "'")) else line) for line in out.splitlines()]
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    import inspect  # noqa: PLC0415

    body = inspect.cleandoc(text).replace("\b\n", "")
    return "\n.PP\n".join(roff(" ".join(p.split())) for p in body.split("\n\n") if p.strip())


def _options(command: object) -> list[str]:
    import click  # noqa: PLC0415

    assert isinstance(command, click.Command)
    lines: list[str] = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        names = ", ".join(f"\\fB{roff(o)}\\fR" for o in [*param.opts, *param.secondary_opts])
        if not param.is_flag and param.metavar is None:
            names += f" \\fI{roff(param.name or 'VALUE').upper()}\\fR"
        lines += [".TP", names, roff(param.help or "")]
    return lines


def _command_section(path: str, command: object) -> list[str]:
    import click  # noqa: PLC0415

    assert isinstance(command, click.Command)
    lines = [".SS " + roff(path), _paragraphs(command.help or command.short_help or "")]
    lines += _options(command)
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                lines += _command_section(f"{path} {name}", sub)
    return lines


def manpage(version: str, date: str) -> str:
    sys.path.insert(0, str(SRC))
    try:
        cli_module = importlib.import_module("nestctl.cli")
        import click  # noqa: PLC0415

        group = cli_module.cli
        commands: dict[str, tuple[str, str]] = cli_module.COMMANDS
        ctx = click.Context(group)
        summary = (group.help or "").strip().splitlines()[0].rstrip(".")
        lines = [
            f'.TH NESTCTL 1 "{date}" "nestctl {roff(version)}" "User Commands"',
            ".SH NAME",
            f"nestctl \\- {roff(summary[0].lower() + summary[1:])}",
            ".SH SYNOPSIS",
            ".B nestctl",
            "[\\fB\\-\\-debug\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
            ".SH DESCRIPTION",
            roff(group.help or ""),
            ".PP",
            "Every check explains each finding with its exact fix. Changes are planned first "
            "(\\fB\\-\\-dry\\-run\\fR), applied only when asked, verified afterwards and "
            "backed up.",
            ".SH COMMANDS",
        ]
        for name in sorted(commands):
            try:
                command = group.get_command(ctx, name)
            except Exception:  # noqa: BLE001 - an optional feature's module may need its extra
                command = None
            if command is None:
                lines += [f".SS nestctl {roff(name)}", roff(commands[name][1])]
            else:
                lines += _command_section(f"nestctl {name}", command)
        lines += [".SH GLOBAL OPTIONS", *_options(group)]
        lines += [
            ".TP",
            "\\fB\\-\\-version\\fR",
            "Print the version.",
            ".SH EXIT STATUS",
            ".TP\n0\nready (or the change is done)",
            ".TP\n1\nproblems found (each with its fix), or a change is pending",
            ".TP\n2\ncould not check, refused, or usage error",
            ".SH FILES",
        ]
        for path, what in FILES:
            lines += [".TP", f"\\fI{roff(path)}\\fR", roff(what)]
        lines += [".SH SEE ALSO", "\\fBqm\\fR(1), \\fBmodprobe\\fR(8), /usr/share/doc/nestctl/"]
        return "\n".join(lines) + "\n"
    finally:
        sys.path.remove(str(SRC))
