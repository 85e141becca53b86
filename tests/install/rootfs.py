"""Pristine Debian 12 roots: mmdebstrap tarballs (cached), chroot with /proc, /sys, /dev bound.

A root is extracted from a cached `mmdebstrap --variant=minbase` tarball, entered with chroot,
and always unmounted before it is deleted, also when a test fails. Downloaded .debs are kept in
one cache shared by every root (bound at /var/cache/apt/archives), so later runs do not download
them again; the package lists are fetched fresh in each root, as on a real host.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NESTCTL_INSTALL_CACHE") or Path.home() / ".cache" / "nestctl-install")
#: a cached root older than this is rebuilt, so it follows Debian's point releases.
MAX_AGE = 7 * 24 * 3600
SUITE = "bookworm"
#: what a stock host has to follow the README: python3, git to clone, certificates for https.
CLONE_HOST = "python3,git,ca-certificates"
#: nothing beyond Debian's python3 (the .pyz must run there).
PYTHON_ONLY = "python3"
BINDS = ("proc", "sys", "dev", "dev/pts")
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}


def required() -> bool:
    """In CI these tests must run: anything that stops them is a failure, not a skip."""
    return os.environ.get("CI") == "true" or os.environ.get("NESTCTL_INSTALL_REQUIRED") == "1"


def unavailable(reason: str) -> NoReturn:
    if required():
        pytest.fail(f"install tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def check_can_run() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (chroot and bind mounts)")
    for tool in ("mmdebstrap", "chroot", "mount", "umount", "tar"):
        if shutil.which(tool) is None:
            unavailable(f"needs {tool} (scripts/install-debian-deps installs mmdebstrap)")


def base_tarball(include: str) -> Path:
    """The cached tarball of a minbase root with INCLUDE, built with mmdebstrap when missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"{SUITE}-minbase-{include.replace(',', '+')}.tar"
    with (CACHE / f"{tarball.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (tests and bench may overlap)
        if tarball.exists() and time.time() - tarball.stat().st_mtime < MAX_AGE:
            return tarball
        partial = tarball.with_suffix(".partial.tar")
        proc = subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={include}",
                SUITE,
                str(partial),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            unavailable(f"mmdebstrap failed: {proc.stderr.strip()[-2000:]}")
        partial.replace(tarball)
    return tarball


class Root:
    """One extracted root; `run` executes a shell command in it via chroot."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def host_path(self, inside: str) -> Path:
        return self.path / inside.lstrip("/")

    def run(
        self, command: str, *, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["chroot", str(self.path), "/bin/sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**CHROOT_ENV, **(env or {})},
            check=False,
        )

    def check(self, command: str, *, timeout: float = 600) -> str:
        """stdout of COMMAND, which must exit 0 (the failure shows everything it printed)."""
        proc = self.run(command, timeout=timeout)
        assert proc.returncode == 0, (
            f"{command!r} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n"
            f"--- stderr\n{proc.stderr}"
        )
        return proc.stdout


def mount_points(path: Path) -> list[str]:
    """Everything mounted at or under PATH, deepest first."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_all(path: Path) -> list[str]:
    """Unmount everything under PATH; returns what could not be unmounted."""
    for point in mount_points(path):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    return mount_points(path)


@contextlib.contextmanager
def pristine_root(include: str = CLONE_HOST) -> Iterator[Root]:
    """A fresh root from the cached tarball, with /proc, /sys, /dev bound; removed afterwards."""
    check_can_run()
    tarball = base_tarball(include)
    path = Path(tempfile.mkdtemp(prefix="nestctl-root-", dir=os.environ.get("NESTCTL_ROOTS_DIR")))
    try:
        subprocess.run(["tar", "-C", str(path), "-xpf", str(tarball)], check=True, timeout=300)
        shutil.copyfile("/etc/resolv.conf", path / "etc" / "resolv.conf")
        archives = CACHE / "archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        binds = [(Path("/") / name, path / name) for name in BINDS]
        binds.append((archives, path / "var" / "cache" / "apt" / "archives"))
        for source, target in binds:
            target.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(
                ["mount", "--bind", str(source), str(target)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                unavailable(f"cannot bind {source} into the root: {proc.stderr.strip()}")
        yield Root(path)
    finally:
        left = unmount_all(path)
        if left:  # never delete through a mount: that would delete the host's /dev or /sys
            raise RuntimeError(f"could not unmount {left}; left {path} in place")
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)
