"""The README's quick start, first command, on a pristine Debian 12 root, as a new user runs it."""

from __future__ import annotations

import json
import re

from nestctl import __version__
from tests.install.clone import clone_into
from tests.install.rootfs import REPO, pristine_root


def quickstart_install_command() -> str:
    """The first command of the README's quick start (its comment removed)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's quick start has no ```sh block"
    first = block.group(1).strip().splitlines()[0]
    return first.split("  #", 1)[0].strip()


def test_quickstart_command_installs_with_debian_python_only() -> None:
    command = quickstart_install_command()
    assert command.startswith("scripts/install"), command
    with pristine_root() as root:
        clone_into(root.host_path("/root/nestctl"))
        assert not root.run("command -v pip pip3").stdout.strip(), "the root must have no pip"

        proc = root.run(f"cd /root/nestctl && {command}", timeout=1200)
        out = proc.stdout + proc.stderr
        # `nestctl doctor` ran after the install: 0 ready, 1 problems, 2 could not check (a
        # chroot has no /etc/pve and may have no /dev/kvm); anything else is a failure.
        assert proc.returncode in (0, 1, 2), out
        assert f"nestctl {__version__} is installed" in out, out
        assert "Next: nestctl doctor" in out, out
        assert "Setting up" not in out, "apt's output must not reach the user:\n" + out
        # Debian's packages, not a copy of click/rich from PyPI.
        assert (
            root.check("dpkg-query -W -f='${Status}' nestctl python3-click python3-rich").count(
                "install ok installed"
            )
            == 3
        )
        assert root.check("command -v nestctl").strip() == "/usr/bin/nestctl"

        assert root.check("nestctl --version").strip() == f"nestctl {__version__}"
        host = root.run("nestctl host --json")
        assert host.returncode in (0, 1, 2), host.stderr
        report = json.loads(host.stdout)
        assert set(report) >= {"host", "findings", "verdict"}
        assert set(report["host"]["nested"]) >= {"live", "after_reboot", "decided_by"}
        # The Python that runs it is Debian's, from /usr/bin.
        who = root.check("head -n 1 /usr/bin/nestctl").strip()
        assert who == "#!/usr/bin/python3"
