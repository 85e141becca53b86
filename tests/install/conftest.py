"""Install tests: build the artefacts once per session, from this tree, on the test host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.install.rootfs import REPO


def build(script: str, out: Path, **env: str) -> Path:
    """Run scripts/build-deb or scripts/build-pyz into OUT; returns the one file it wrote."""
    proc = subprocess.run(
        [str(REPO / "scripts" / script), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, **env},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    (built,) = [p for p in out.iterdir() if p.is_file()]
    return built


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("build-deb", tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("build-pyz", tmp_path_factory.mktemp("pyz"))
