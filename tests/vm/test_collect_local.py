"""The local collector's honesty: what could not be read is "could not check", never "no"."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from nestctl.cli import cli
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
    assert rc == 1
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
