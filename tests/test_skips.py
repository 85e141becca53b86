"""In CI nothing skips silently: a skip is a failure unless tests/skips.py lists it by design."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = """
import pytest

def test_missing_tool():
    pytest.skip("frobnicate not installed")

def test_out_of_scope():
    pytest.skip("USB controller checks are out of scope: using usb13 ...")

@pytest.mark.skip(reason="no shared data")
def test_marked():
    pass

def test_passes():
    pass
"""


def _run(tmp_path: Path, ci: str | None) -> str:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NESTCTL_E2E_REQUIRED")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "test_cases.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.stdout


@pytest.mark.runs_commands
def test_in_ci_a_skip_fails_unless_it_is_out_of_scope_by_design(tmp_path: Path) -> None:
    out = _run(tmp_path, "true")
    # A skip in the call phase fails the test; one at set-up (a skip mark) is an error.
    assert "1 failed, 1 passed, 1 skipped, 1 error" in out, out
    assert "skipped in CI: frobnicate not installed" in out
    assert "skipped in CI: no shared data" in out


@pytest.mark.runs_commands
def test_on_a_developer_machine_skips_stay_skips(tmp_path: Path) -> None:
    out = _run(tmp_path, None)
    assert "1 passed, 3 skipped" in out, out
