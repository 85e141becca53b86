"""The runner zip a guest gets: complete, standard library only, runs with a bare interpreter."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nestctl.bench.ship import modules, runner_zip


def test_the_zip_holds_the_runner_and_nothing_that_needs_click_or_rich() -> None:
    names = set(modules())
    assert {"nestctl.bench.runner", "nestctl.bench.where", "nestctl.machine"} <= names
    assert not any(n.startswith(("nestctl.cli", "nestctl.render")) for n in names)
    with zipfile.ZipFile(io.BytesIO(runner_zip())) as zf:
        files = set(zf.namelist())
        assert "__main__.py" in files
        assert "nestctl/bench/runner.py" in files
        for name in files:
            text = zf.read(name).decode()
            assert "import click" not in text
            assert "from rich" not in text
    assert runner_zip() == runner_zip()  # deterministic: same bytes every time


@pytest.mark.runs_commands
def test_the_zip_runs_with_an_isolated_interpreter(tmp_path: Path) -> None:
    pyz = tmp_path / "nestctl-bench.pyz"
    pyz.write_bytes(runner_zip())
    out = tmp_path / "result.json"
    # -I -S: no site-packages, no user paths, no PYTHONPATH: only the zip and the stdlib.
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(pyz), "--quick", "--only", "cpu,clock", "-o", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert [r["name"] for r in doc["results"]] == ["cpu", "clock"]
    assert all(r["status"] == "ok" for r in doc["results"])


@pytest.mark.runs_commands
def test_an_unknown_workload_is_a_usage_error(tmp_path: Path) -> None:
    pyz = tmp_path / "b.pyz"
    pyz.write_bytes(runner_zip())
    proc = subprocess.run(
        [sys.executable, "-I", str(pyz), "--only", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown workload(s) nope" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_zip_timestamps_are_fixed_not_the_clock() -> None:
    # Two builds within one second would match even with the clock's time: look at the stamps.
    with zipfile.ZipFile(io.BytesIO(runner_zip())) as zf:
        stamps = {info.date_time for info in zf.infolist()}
    assert stamps == {(2020, 1, 1, 0, 0, 0)}
