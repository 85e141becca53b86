"""Run `nestctl` in-process through its real entry point (error boundary, exit codes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nestctl.cli import main


def nestctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def nestctl_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = nestctl(capsys, *argv, "--json")
    assert out, err
    return code, json.loads(out)
