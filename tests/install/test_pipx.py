"""`pipx install .` from a clone: the path for systems that are not Debian (or want PyPI's
newest releases). Every file under src/nestctl, data files included, must land in the install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nestctl import __version__
from tests.install.clone import clone_into
from tests.install.rootfs import unavailable
from tests.install.test_deb_build import source_files

pytestmark = pytest.mark.install


def test_pipx_install_from_a_clone(tmp_path: Path) -> None:
    pipx = shutil.which("pipx")
    if pipx is None:
        unavailable("needs pipx (scripts/install-debian-deps installs Debian's)")
    clone = tmp_path / "nestctl"
    clone_into(clone)
    home = tmp_path / "pipx"
    env = {
        **os.environ,
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        [pipx, "install", "."],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    nestctl = tmp_path / "bin" / "nestctl"
    version = subprocess.run([nestctl, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"nestctl {__version__}"
    host = subprocess.run([nestctl, "host", "--json"], capture_output=True, text=True, check=False)
    assert host.returncode in (0, 1, 2), host.stderr
    assert "nested" in json.loads(host.stdout)["host"]

    (installed,) = (home / "venvs" / "nestctl").glob("lib/python3*/site-packages/nestctl")
    shipped = {
        p.relative_to(installed).as_posix()
        for p in installed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert source_files() <= shipped, sorted(source_files() - shipped)
