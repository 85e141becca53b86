"""The .deb on a pristine Debian 12 root: apt pulls its dependencies, it runs on Debian's python3,
and `apt remove` / `apt purge` leave nothing of ours behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nestctl import __version__
from tests.install.rootfs import pristine_root

pytestmark = pytest.mark.install

#: where dpkg keeps a removed (not purged) package's state until purge; dpkg's, not ours.
DPKG_STATE = "/var/lib/dpkg/info/"
#: every path named for nestctl, outside the test's own files (/tmp), the download cache and
#: home directories (a user's ~/.cache/nestctl is the user's; no Debian package touches homes).
FIND_OURS = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /root "
    "-o -path /home -o -path /var/cache/apt/archives \\) -prune "
    "-o \\( -iname '*nestctl*' -print \\)"
)


def test_deb_installs_runs_and_removes_cleanly(deb: Path) -> None:
    with pristine_root() as root:
        shutil.copy(deb, root.host_path(f"/tmp/{deb.name}"))
        root.check("apt-get update -qq", timeout=600)
        root.check(f"apt-get install -y -qq /tmp/{deb.name}", timeout=900)

        # Dependencies and Recommends came from Debian.
        status = root.check(
            "dpkg-query -W -f='${Package} ${Status}\\n' python3-click python3-rich "
            "python3-requests python3-prometheus-client"
        )
        assert status.count("install ok installed") == 4, status
        files = root.check("dpkg -L nestctl").split()

        doctor = root.run("nestctl doctor --json")
        assert doctor.returncode in (0, 1, 2), doctor.stderr
        report = json.loads(doctor.stdout)
        assert set(report) >= {"host", "proxmox", "vms", "findings", "verdict"}
        assert report["verdict"] in ("ready", "not-ready", "unknown")
        assert root.check("/usr/bin/python3 -m nestctl --version").strip() == (
            f"nestctl {__version__}"
        )
        # The interpreter is Debian's, and so are click and rich.
        where = root.check(
            "/usr/bin/python3 -c 'import click, rich, nestctl; "
            "print(click.__file__, rich.__file__, nestctl.__file__)'"
        ).split()
        assert all(p.startswith("/usr/lib/python3/dist-packages/") for p in where), where
        # postinst byte-compiled the modules (the Debian way, py3compile).
        pyc = root.check("find /usr/lib/python3/dist-packages/nestctl -name '*.pyc' | wc -l")
        assert int(pyc) > 10
        # Completion where each shell looks; the manual page.
        for path in (
            "/usr/share/bash-completion/completions/nestctl",
            "/usr/share/zsh/vendor-completions/_nestctl",
            "/usr/share/fish/vendor_completions.d/nestctl.fish",
            "/usr/share/man/man1/nestctl.1.gz",
            "/usr/share/doc/nestctl/copyright",
            "/usr/share/doc/nestctl/changelog.Debian.gz",
        ):
            assert path in files, path
        assert "_NESTCTL_COMPLETE" in root.check(
            "cat /usr/share/bash-completion/completions/nestctl"
        )

        # A cache nestctl (or the admin) put under /var/cache/nestctl survives remove, not purge.
        root.check("mkdir -p /var/cache/nestctl/qemu && echo {} > /var/cache/nestctl/qemu/x.json")
        root.check("apt-get remove -y -qq nestctl", timeout=600)
        left = [p for p in files if root.host_path(p).is_file() or root.host_path(p).is_symlink()]
        assert not left, f"apt remove left files of ours: {left}"
        assert not root.host_path("/usr/lib/python3/dist-packages/nestctl").exists()
        assert root.run("/usr/bin/python3 -c 'import nestctl'").returncode != 0
        after_remove = root.check(FIND_OURS).split()
        assert [p for p in after_remove if not p.startswith(DPKG_STATE)] == [
            "/var/cache/nestctl"
        ], after_remove

        root.check("apt-get purge -y -qq nestctl", timeout=600)
        assert root.check(FIND_OURS).split() == [], "purge left files of ours"
        assert "nestctl" not in root.check("dpkg-query -W -f='${Package}\\n'").split()
