"""The .deb as built: its metadata, lintian, reproducibility, and every systemd unit shipped."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from nestctl import __version__
from tests.install.clone import clone_into
from tests.install.conftest import build
from tests.install.rootfs import REPO, unavailable

pytestmark = pytest.mark.install

PACKAGE_DIR = "./usr/lib/python3/dist-packages/nestctl/"


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), field], capture_output=True, text=True, check=True
    ).stdout.strip()


def deb_listing(deb: Path) -> dict[str, str]:
    """path -> "mode owner" of every entry in the package."""
    out = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    entries = {}
    for line in out.splitlines():
        parts = line.split()
        entries[parts[5]] = f"{parts[0]} {parts[1]}"
    return entries


def source_files() -> set[str]:
    """Every file under src/nestctl that a user's install needs (byte-code excepted)."""
    root = REPO / "src" / "nestctl"
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_control_fields(deb: Path) -> None:
    assert deb.name == f"nestctl_{__version__}-1_all.deb"
    assert deb_field(deb, "Version") == f"{__version__}-1"
    assert deb_field(deb, "Architecture") == "all"
    assert deb_field(deb, "Depends") == (
        "python3 (>= 3.11), python3-click (>= 8.1.3), python3-rich (>= 13.3.1)"
    )
    assert set(deb_field(deb, "Recommends").split(", ")) == {
        "python3-requests",
        "python3-prometheus-client",
        "apprise",
    }
    suggests = set(deb_field(deb, "Suggests").split(", "))
    assert {
        "python3-starlette",
        "python3-jinja2",
        "python3-uvicorn",
        "python3-matplotlib",
    } <= suggests


def test_ships_every_package_file_and_no_bytecode(deb: Path) -> None:
    listing = deb_listing(deb)
    shipped = {p.removeprefix(PACKAGE_DIR) for p in listing if p.startswith(PACKAGE_DIR)}
    assert source_files() <= shipped
    assert not [p for p in listing if "__pycache__" in p or p.endswith(".pyc")]
    assert {v.split()[1] for v in listing.values()} == {"root/root"}
    assert listing["./usr/bin/nestctl"].startswith("-rwxr-xr-x")


def test_lintian_clean(deb: Path) -> None:
    if shutil.which("lintian") is None:
        unavailable("needs lintian (scripts/install-debian-deps installs it)")
    proc = subprocess.run(
        ["lintian", "--pedantic", "--display-experimental", str(deb)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:", "I:", "P:", "X:")]
    assert tags == [], proc.stdout


def test_reproducible(deb: Path, tmp_path: Path) -> None:
    again = build("build-deb", tmp_path)
    assert again.read_bytes() == deb.read_bytes()


def test_systemd_units_ship_disabled(tmp_path: Path) -> None:
    """Every file in contrib/systemd/ lands in /usr/lib/systemd/system, nothing enables it."""
    tree = tmp_path / "tree"
    clone_into(tree)
    units = tree / "contrib" / "systemd"
    units.mkdir(parents=True, exist_ok=True)
    (units / "nestctl-test-exporter.service").write_text(
        "[Unit]\nDescription=test unit\nDocumentation=man:nestctl(1)\n\n[Service]\n"
        "ExecStart=/usr/bin/nestctl --version\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    (units / "nestctl-test.timer").write_text(
        "[Unit]\nDescription=test timer\nDocumentation=man:nestctl(1)\n\n[Timer]\n"
        "OnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(tree / "scripts" / "build-deb"), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (built,) = out.iterdir()
    listing = deb_listing(built)
    for name in ("nestctl-test-exporter.service", "nestctl-test.timer"):
        assert listing[f"./usr/lib/systemd/system/{name}"].startswith("-rw-r--r--")
    assert not [p for p in listing if p.startswith("./etc/")], "nothing may enable the units"
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", str(built), str(control)], check=True)
    assert "daemon-reload" in (control / "postinst").read_text()
    assert "systemctl enable" not in (control / "postinst").read_text()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_generated_by_nestctl(deb: Path, shell: str) -> None:
    paths = {
        "bash": "./usr/share/bash-completion/completions/nestctl",
        "zsh": "./usr/share/zsh/vendor-completions/_nestctl",
        "fish": "./usr/share/fish/vendor_completions.d/nestctl.fish",
    }
    data = subprocess.run(
        f"dpkg-deb --fsys-tarfile {deb} | tar -xO {paths[shell]}",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = subprocess.run(
        [sys.executable, "-m", "nestctl", "completion", shell],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert data == expected


def builder() -> ModuleType:
    """packaging/build_deb.py, imported as scripts/build-deb runs it."""
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        return importlib.import_module("build_deb")
    finally:
        sys.path.remove(str(REPO / "packaging"))


@pytest.mark.parametrize(
    ("upstream", "debian", "release"),
    [("0.2.0.dev1", "0.2.0~dev1-1", "0.2.0"), ("1.0rc2", "1.0~rc2-1", "1.0")],
)
def test_debian_version_sorts_prereleases_first(upstream: str, debian: str, release: str) -> None:
    assert builder().debian_version(upstream) == debian
    final = builder().debian_version(release)
    assert final == f"{release}-1"
    ordered = subprocess.run(["dpkg", "--compare-versions", debian, "lt", final], check=False)
    assert ordered.returncode == 0


def test_every_optional_feature_has_its_debian_package(deb: Path) -> None:
    """A dependency any pyproject extra declares is in Recommends or Suggests (by Debian name)."""
    debian_package = builder().debian_package
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    wanted = {debian_package(d) for name, deps in extras.items() if name != "test" for d in deps}
    offered = set(deb_field(deb, "Recommends").split(", ")) | set(
        deb_field(deb, "Suggests").split(", ")
    )
    assert wanted <= offered, sorted(wanted - offered)
    assert debian_package("prometheus-client>=0.16.0") == "python3-prometheus-client"
    assert debian_package("Jinja2>=3.1") == "python3-jinja2"
