"""A VM on a node whose CPU could not be read: the host link is unknown, never "broken".

Seen in the nested lab (docs/lab.md): an L0 root without /proc/cpuinfo made every VM's first
broken link "host", sending the admin to fix a host nobody had checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nestctl.cli import cli
from tests.helpers import write_tree


def _vm(root: Path) -> dict:
    res = CliRunner().invoke(cli, ["vm", "101", "--no-qemu", "--json", "--root", str(root)])
    return json.loads(res.stdout)["vms"][0]


def test_unread_cpu_is_an_unknown_host_link(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "/etc/hostname": "pve1\n",
            "/etc/pve/qemu-server/101.conf": "cpu: host\nmemory: 512\n",
        },
    )
    vm = _vm(root)
    assert vm["chain"]["host"] == "unknown"
    assert vm["broken_link"] != "host"


def test_a_cpu_of_no_virtualizing_vendor_is_still_broken(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "/etc/hostname": "pve1\n",
            "/etc/pve/qemu-server/101.conf": "cpu: host\nmemory: 512\n",
            "/proc/cpuinfo": "processor\t: 0\nvendor_id\t: VIA VIA VIA \nflags\t\t: fpu\n\n",
        },
    )
    assert _vm(root)["chain"]["host"] == "broken"
