"""The local collector's honesty: what could not be read is "could not check", never "no"."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.machine import Host
from nestctl.vm.facts import VmOptions
from nestctl.vm.report import collect
from tests.privileges import as_unprivileged
from tests.vm.vmtrees import node, vm_conf


def invoke(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, [*args, "--root", str(root), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def codes(data: dict[str, Any]) -> list[str]:
    return [f["code"] for f in data["findings"]]


def test_unreadable_config_is_could_not_check_not_not_found(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "cpu: host\n")
    conf = tmp_path / "etc/pve/qemu-server/101.conf"
    os.mkfifo(conf)  # a config that is there but cannot be read (even by root)
    rc, data = invoke(tmp_path, "vm", "101")
    assert rc == 2
    assert codes(data) == ["vm.config.unreadable"]
    assert data["verdict"] == "unknown"
    rc, data = invoke(tmp_path, "vm", "102")
    assert rc == 2  # an unknown VMID: nothing checked (the same exit code everywhere)
    assert "vm.not-found" in codes(data)


def test_empty_etc_pve_is_unknown_not_ready_with_zero_vms(tmp_path: Path) -> None:
    node(tmp_path)
    shutil.rmtree(tmp_path / "etc/pve")
    (tmp_path / "etc/pve").mkdir()
    for verb in ("vm", "doctor"):
        rc, data = invoke(tmp_path, verb)
        assert rc == 2, verb
        assert "vm.pmxcfs.not-mounted" in codes(data), verb
        assert data["vms"] == []


def test_unreadable_pid_file_is_unknown_not_stopped(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "cpu: host\ntags: nested\n")  # wants nesting: running matters
    piddir = tmp_path / "var/run/qemu-server"
    piddir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(piddir / "100.pid")  # there, but not readable as a file
    rc, data = invoke(tmp_path, "vm")
    vm = data["vms"][0]
    assert vm["running"] is None
    assert vm["chain"]["process"] == "unknown"
    assert "vm.running.unknown" in [f["code"] for f in vm["findings"]]
    assert rc == 2


def test_a_0600_config_is_could_not_check_for_a_normal_user(open_tmp_path: Path) -> None:
    """What an admin without root sees: Proxmox's configs are root's (and www-data's) to read."""
    root = open_tmp_path
    node(root)
    vm_conf(root, 100, "cpu: host\n")
    conf = root / "etc/pve/qemu-server/100.conf"
    conf.chmod(0o600)

    def check() -> tuple[int, dict[str, Any]]:
        report = collect(Host(str(root)), VmOptions(vmids=(100,), use_qemu=False))
        return report.exit_code, report.to_json()

    code, data = as_unprivileged(check)
    assert [f["code"] for f in data["findings"] if f["code"].startswith("vm.")][-1] == (
        "vm.config.unreadable"
    )
    assert "not-found" not in json.dumps(data)
    assert code == 2
