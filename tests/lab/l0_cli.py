"""Run nestctl at L0 (this machine, in-process) against the lab's L0 root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from nestctl.cli import cli
from tests.lab.stack import L1


def nestctl_l0(*args: str) -> tuple[int, Any]:
    res = CliRunner().invoke(cli, [*args, "--json"])
    try:
        return res.exit_code, json.loads(res.stdout)
    except ValueError as exc:
        raise AssertionError(
            f"nestctl {' '.join(args)}: exit {res.exit_code}: {res.output}"
        ) from exc


def nestctl_l0_text(*args: str) -> str:
    """What a person sees (rich without a terminal: plain text, 100 columns)."""
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "100"}).output


def inner_doctor(l1: L1, path: Path) -> Path:
    """L1's own `nestctl doctor --all-nodes --guests --json`, run inside it through its agent and
    saved at L0 for `nestctl tree --inner` (the lab's tie between levels; no API)."""
    res = l1.run(["/usr/local/bin/nestctl", "doctor", "--all-nodes", "--guests", "--json"])
    json.loads(res.stdout)  # a JSON report, whatever its verdict (exit 0, 1 or 2)
    path.write_bytes(res.stdout)
    return path
