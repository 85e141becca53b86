"""The README's quick start, first command, on a pristine Debian 12 root, as a new user runs it."""

from __future__ import annotations

import json
import re

import pytest

from nestctl import __version__
from tests.helpers import write_tree
from tests.host.scenarios import intel_host
from tests.install.clone import clone_into
from tests.install.rootfs import PYTHON_ONLY, REPO, pristine_root

pytestmark = pytest.mark.install

ENABLE_HINT = "nestctl host enable --dry-run"


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
        # This host's nesting is unknown (no vmx/svm here), not off: no plan to turn it on.
        live = json.loads(root.check("nestctl host --json || true"))["host"]["nested"]["live"]
        assert (ENABLE_HINT in out) == (live is False), out
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

        # On a host where nesting is off, the next step includes the plan to turn it on
        # (NESTCTL_ROOT points nestctl at a Proxmox host tree with kvm_intel nested=N).
        write_tree(root.host_path("/tmp/nesting-off"), intel_host(nested="N"))
        # Also: a repository that refuses us (as Proxmox's enterprise one does without a
        # subscription) fails `apt-get update`; the install goes on with Debian's lists.
        root.check(
            "echo 'deb http://deb.debian.org/debian-no-such-archive bookworm main' "
            "> /etc/apt/sources.list.d/refused.list && rm -f /var/lib/apt/lists/*_Packages*"
        )
        again = root.run("cd /root/nestctl && NESTCTL_ROOT=/tmp/nesting-off scripts/install")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "updating apt's package lists" in again.stdout
        assert "apt-get update reported errors" in again.stderr, again.stderr
        assert ENABLE_HINT in again.stdout, again.stdout

        # A copy from an earlier `pip install --break-system-packages .` (which python3 finds
        # first) would run instead of the package: the install names it and how to remove it.
        site = root.check("python3 -c 'import site; print(site.getsitepackages()[0])'").strip()
        write_tree(root.path, {f"{site}/nestctl/__init__.py": '__version__ = "0.0.1"\n'})
        shadowed = root.run("cd /root/nestctl && scripts/install")
        assert shadowed.returncode == 0, shadowed.stdout + shadowed.stderr
        assert f"python3 imports nestctl from {site}/nestctl" in shadowed.stderr
        assert "pip uninstall --break-system-packages nestctl" in shadowed.stderr


def test_install_refuses_where_it_cannot_install() -> None:
    """Not root, or not Debian: say what to do instead, exit 2, change nothing."""
    with pristine_root(PYTHON_ONLY) as root:
        clone_into(root.host_path("/opt/nestctl"))
        before = root.check("dpkg-query -W -f='${Package}\\n' | sort")

        as_user = root.run(
            "setpriv --reuid=65534 --regid=65534 --clear-groups /opt/nestctl/scripts/install"
        )
        assert as_user.returncode == 2, as_user.stdout + as_user.stderr
        assert "run it as root" in as_user.stderr

        root.check("mv /etc/debian_version /etc/debian_version.hidden")
        other = root.run("/opt/nestctl/scripts/install")
        assert other.returncode == 2, other.stdout + other.stderr
        assert "pipx install ." in other.stderr
        assert root.check("dpkg-query -W -f='${Package}\\n' | sort") == before
        assert not root.host_path("/opt/nestctl/dist").exists()
