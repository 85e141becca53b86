"""dist/nestctl.pyz on a pristine Debian 12 root that has nothing beyond python3."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from nestctl import __version__
from tests.install.conftest import build
from tests.install.rootfs import PYTHON_ONLY, pristine_root

pytestmark = pytest.mark.install


def test_pyz_vendors_pure_python_only(pyz: Path) -> None:
    names = zipfile.ZipFile(pyz).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {"__main__.py", "nestctl", "click", "rich"} <= tops
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_pyz_runs_with_nothing_but_debian_python(pyz: Path) -> None:
    with pristine_root(PYTHON_ONLY) as root:
        shutil.copy(pyz, root.host_path("/root/nestctl.pyz"))
        # Nothing but python3: no click, rich, pip or git to lean on.
        for absent in ("click", "rich"):
            assert root.run(f"python3 -c 'import {absent}'").returncode != 0
        assert root.run("command -v git pip3").stdout.strip() == ""

        assert root.check("python3 /root/nestctl.pyz --version").strip() == (
            f"nestctl {__version__}"
        )
        doctor = root.run("cd /root && python3 nestctl.pyz doctor")
        assert doctor.returncode in (0, 1, 2), doctor.stderr
        assert "Traceback" not in doctor.stdout + doctor.stderr
        assert "doctor" in doctor.stdout, doctor.stdout  # rich's report, rendered
        as_json = root.run("python3 /root/nestctl.pyz doctor --json")
        assert as_json.returncode in (0, 1, 2), as_json.stderr
        assert set(json.loads(as_json.stdout)) >= {"host", "proxmox", "vms", "verdict"}
        # Executable as it is, through its shebang.
        assert root.check("/root/nestctl.pyz --version").strip() == f"nestctl {__version__}"


def test_pyz_reproducible(pyz: Path, tmp_path: Path) -> None:
    assert build("build-pyz", tmp_path).read_bytes() == pyz.read_bytes()
