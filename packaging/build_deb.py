"""Build dist/nestctl_<version>_all.deb with dpkg-deb alone (no debhelper needed).

Run by scripts/build-deb with a python3 that can import click and rich (the shell completion and
the manual page are generated from the command line itself). The output is reproducible: file
times are SOURCE_DATE_EPOCH (default: the last commit), owners root:root, modes fixed, and
dpkg-deb sorts the archive.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from common import (
    PACKAGE,
    REPO,
    SRC,
    git_commit,
    gzip_bytes,
    package_files,
    source_date_epoch,
    version,
)
from manpage import manpage

DEBIAN = REPO / "packaging" / "debian"
UNITS = REPO / "contrib" / "systemd"
DIST_PACKAGES = "usr/lib/python3/dist-packages"
MAINTAINER = "nestctl developers <nestctl@example.org>"
#: shell -> where Debian's bash-completion, zsh and fish look for vendor completions.
COMPLETIONS = {
    "bash": "usr/share/bash-completion/completions/nestctl",
    "zsh": "usr/share/zsh/vendor-completions/_nestctl",
    "fish": "usr/share/fish/vendor_completions.d/nestctl.fish",
}
#: Debian packages for the optional features (pyproject extras api, metrics and watch are
#: Recommends, serve and plot Suggests); a dependency an extra adds later joins them through
#: DEBIAN_NAMES. The API needs none since issue 24 (the standard library's ssl and socket).
RECOMMENDS = ["python3-prometheus-client"]
SUGGESTS = ["python3-starlette", "python3-jinja2", "python3-uvicorn", "python3-matplotlib"]
#: The dashboard's consoles run noVNC and xterm.js from Debian's packages (or Proxmox's own).
SUGGESTS += ["novnc", "node-xterm"]
RECOMMENDED_EXTRAS = frozenset({"api", "metrics", "watch"})
#: PyPI name -> Debian package, where Debian's python3-<name> rule does not give it.
DEBIAN_NAMES = {
    "prometheus-client": "python3-prometheus-client",
    "pyyaml": "python3-yaml",
    "apprise": "apprise",  # Debian packages Apprise under its own name
}
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target", ".path", ".slice", ".mount")
RELOAD_UNITS = """# Units ship disabled; let systemd see them (as dh_installsystemd does).
if [ -d /run/systemd/system ]; then
\tsystemctl --system daemon-reload >/dev/null || true
fi"""
LAUNCHER = """#!/usr/bin/python3
# nestctl, from the Debian package (Debian's python3, click and rich).
import sys

from nestctl.entry import main

sys.exit(main())
"""


def debian_package(requirement: str) -> str:
    """The Debian package of a PyPI requirement such as `prometheus-client>=0.16`."""
    name = re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower()
    name = name.replace("_", "-").replace(".", "-")
    return DEBIAN_NAMES.get(name, f"python3-{name}")


def optional_packages() -> tuple[list[str], list[str]]:
    """Recommends and Suggests: the known lists plus whatever the pyproject extras add."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    recommends, suggests = list(RECOMMENDS), list(SUGGESTS)
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        if extra == "test":
            continue
        target = recommends if extra in RECOMMENDED_EXTRAS else suggests
        for dep in deps:
            package = debian_package(dep)
            if package not in recommends and package not in suggests:
                target.append(package)
    return recommends, suggests


def debian_version(upstream: str) -> str:
    """PEP 440 -> Debian: pre-releases sort before the release (`~`), Debian revision 1."""
    deb = re.sub(r"[.-]?(dev|a|b|rc)(\d*)", r"~\1\2", upstream)
    return f"{deb}-1"


class Stage:
    """The package's file tree under construction, with the modes Debian expects."""

    def __init__(self, root: Path, epoch: int) -> None:
        self.root = root
        self.epoch = epoch

    def write(self, rel: str, data: bytes, mode: int = 0o644) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)

    def finish(self) -> None:
        """Directories 0755, one time stamp for everything (reproducible)."""
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=False):
            for name in filenames:
                os.utime(Path(dirpath, name), (self.epoch, self.epoch))
            for name in dirnames:
                Path(dirpath, name).chmod(0o755)
                os.utime(Path(dirpath, name), (self.epoch, self.epoch))
        self.root.chmod(0o755)


def run_nestctl(python: str, *args: str) -> bytes:
    """Output of `nestctl ARGS` run from the source tree."""
    env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [python, "-m", "nestctl", *args], capture_output=True, env=env, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"nestctl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def metadata(upstream: str) -> dict[str, bytes]:
    """A dist-info, so importlib.metadata and pip see the package (pip will not remove it)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {upstream}",
        f"Summary: {project['description']}",
        f"License: {project.get('license', {}).get('text', '')}",
        f"Requires-Python: {project['requires-python']}",
        *(f"Requires-Dist: {dep}" for dep in project["dependencies"]),
    ]
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        if extra == "test":
            continue
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {dep}; extra == "{extra}"' for dep in deps]
    scripts = "".join(f"{k} = {v}\n" for k, v in sorted(project.get("scripts", {}).items()))
    return {
        "METADATA": ("\n".join(lines) + "\n").encode(),
        "entry_points.txt": f"[console_scripts]\n{scripts}".encode(),
        "INSTALLER": b"debian\n",
    }


def unit_files() -> list[Path]:
    """Every systemd unit in contrib/systemd/ (none yet is fine)."""
    if not UNITS.is_dir():
        return []
    return sorted(p for p in UNITS.iterdir() if p.is_file() and p.name.endswith(UNIT_SUFFIXES))


def template(name: str, **values: str) -> str:
    text = (DEBIAN / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def stage_tree(stage: Stage, python: str, upstream: str, debver: str) -> list[Path]:
    """Everything under /usr; returns the units shipped."""
    for rel in package_files():  # data files too (templates, static assets), all 0644
        stage.write(f"{DIST_PACKAGES}/nestctl/{rel.as_posix()}", (PACKAGE / rel).read_bytes())
    for name, data in metadata(upstream).items():
        stage.write(f"{DIST_PACKAGES}/nestctl-{upstream}.dist-info/{name}", data)
    stage.write("usr/bin/nestctl", LAUNCHER.encode(), 0o755)
    for shell, path in COMPLETIONS.items():
        stage.write(path, run_nestctl(python, "completion", shell))
    date = time.strftime("%Y-%m-%d", time.gmtime(stage.epoch))
    stage.write("usr/share/man/man1/nestctl.1.gz", gzip_bytes(manpage(upstream, date).encode()))
    units = unit_files()
    for unit in units:
        stage.write(f"usr/lib/systemd/system/{unit.name}", unit.read_bytes())
    doc = "usr/share/doc/nestctl"
    year = time.strftime("%Y", time.gmtime(stage.epoch))
    copyright_text = template("copyright", MAINTAINER=MAINTAINER, YEAR=year)
    stage.write(f"{doc}/copyright", copyright_text.encode())
    commit = git_commit()
    changelog = template(
        "changelog",
        VERSION=debver,
        COMMIT=f"\n    (commit {commit})" if commit else "",
        MAINTAINER=MAINTAINER,
        DATE=time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(stage.epoch)),
    )
    stage.write(f"{doc}/changelog.Debian.gz", gzip_bytes(changelog.encode()))
    overrides = (DEBIAN / "lintian-overrides").read_bytes()
    stage.write("usr/share/lintian/overrides/nestctl", overrides)
    return units


def installed_size(root: Path) -> int:
    """KiB, counted as dpkg-gencontrol does: each file rounded up, one per directory."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        total += len(dirnames)
        total += sum(-(-Path(dirpath, n).stat().st_size // 1024) for n in filenames)
    return total


def stage_control(stage: Stage, debver: str, units: list[Path]) -> None:
    size = installed_size(stage.root)
    sums = []
    for dirpath, _dirnames, filenames in os.walk(stage.root):
        for name in filenames:
            path = Path(dirpath, name)
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            sums.append(f"{digest}  {path.relative_to(stage.root).as_posix()}\n")
    recommends, suggests = optional_packages()
    control = template(
        "control",
        VERSION=debver,
        MAINTAINER=MAINTAINER,
        INSTALLED_SIZE=str(size),
        RECOMMENDS=", ".join(recommends),
        SUGGESTS=", ".join([*suggests, "qemu-system-x86"]),
    )
    stage.write("DEBIAN/control", control.encode())
    stage.write("DEBIAN/md5sums", "".join(sorted(sums)).encode())
    reload = RELOAD_UNITS if units else ""
    for script in ("postinst", "prerm", "postrm"):
        text = template(script).replace("#UNITS#", reload).rstrip("\n") + "\n"
        stage.write(f"DEBIAN/{script}", text.encode(), 0o755)


def build(out_dir: Path, python: str) -> Path:
    upstream = version()
    debver = debian_version(upstream)
    epoch = source_date_epoch()
    os.umask(0o022)
    work = REPO / "build" / "deb"
    shutil.rmtree(work, ignore_errors=True)
    stage = Stage(work / "nestctl", epoch)
    units = stage_tree(stage, python, upstream, debver)
    stage_control(stage, debver, units)
    stage.finish()
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / f"nestctl_{debver}_all.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    proc = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage.root), str(deb)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"dpkg-deb failed: {proc.stderr.strip()}")
    shutil.rmtree(work, ignore_errors=True)
    return deb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output directory")
    args = parser.parse_args()
    if shutil.which("dpkg-deb") is None:
        print("build-deb needs dpkg-deb (Debian's dpkg package)", file=sys.stderr)
        return 2
    print(build(args.out.resolve(), sys.executable))
    return 0


if __name__ == "__main__":
    sys.exit(main())
