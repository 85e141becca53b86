"""Console entry point (`nestctl` and `python -m nestctl`).

`nestctl host --json` is what scripts and monitoring run again and again, and it should feel
instant; importing click alone costs about four times a bare interpreter start. So that one plain
form, `host --json` with at most `--root DIR`, is answered here without importing click. Every
other form, `--help`, and every error go through the click command line (`nestctl.cli`), which
defines the same options; a test checks both paths print the same.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from nestctl.exits import INTERRUPTED_EXIT, INTERRUPTED_MESSAGE


def main(argv: list[str] | None = None) -> Any:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _fast_host_json(args)
        if code is not None:
            sys.exit(code)
        from nestctl.cli import main as cli_main  # noqa: PLC0415 - the full command line

        return cli_main(args)
    except KeyboardInterrupt:
        # Ctrl-C on the fast path or while the command line loads; cli.common does the same
        # for Ctrl-C inside any command.
        sys.stderr.write(INTERRUPTED_MESSAGE + "\n")
        sys.exit(INTERRUPTED_EXIT)


def _fast_host_json(args: list[str]) -> int | None:
    """Exit code of `host --json [--root DIR]` answered directly, or None to use click."""
    if not args or args[0] != "host":
        return None
    root = os.environ.get("NESTCTL_ROOT") or "/"
    as_json = False
    rest = args[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--json":
            as_json = True
        elif arg == "--root" and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            root = rest[i + 1]
            i += 1
        elif arg.startswith("--root=") and len(arg) > len("--root="):
            root = arg.removeprefix("--root=")
        else:
            return None
        i += 1
    if not as_json:
        return None  # people get rich's output: click's import is small beside it
    from nestctl.host.report import host_report  # noqa: PLC0415
    from nestctl.machine import Host  # noqa: PLC0415
    from nestctl.render.jsonout import dumps_report  # noqa: PLC0415

    host = Host(root)
    if host.root_problem() is not None:
        return None  # the click path words the error
    try:
        report = host_report(host)
        text = dumps_report(report.to_json())
    except Exception:  # noqa: BLE001 - the click path reports it (and --debug shows it)
        return None
    sys.stdout.write(text)
    return report.exit_code
