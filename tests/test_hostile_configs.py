"""Hostile VM configs: non-ASCII digits are garbage, never an internal error or a number; configs
that cannot be listed or read whole are "could not check", never "no VMs".

`str.isdigit()` is true for "¹" and "٣": `int("¹")` raises, `int("٣")` is 3. CI once failed on a
fresh clone on `memory: ¹` (a Hypothesis example); these pin the cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.machine import Host, RecordingRunner
from nestctl.vm.config import config_access_problem, load_vm_configs
from nestctl.vm.profiles import HostCpu, plan_enable
from tests.privileges import DENY_DIR, as_unprivileged, is_root
from tests.vm.vmtrees import PVE92, node, vm_conf

WINDOWS = "name: win\nostype: win11\ncpu: x86-64-v2-AES\n"


@pytest.mark.parametrize("memory", ["¹", "٣٢٧٦٨", "current=²", "lots"])
def test_vm_enable_on_a_non_ascii_memory_is_a_finding(
    memory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(tmp_path, vendor="intel", versions=PVE92)
    vm_conf(tmp_path, 100, WINDOWS + f"memory: {memory}\n")
    monkeypatch.setattr("nestctl.cli.vm.make_host", lambda r: Host(r, runner=RecordingRunner()))
    args = ["vm", "enable", "100", "--profile", "windows-hyperv", "--dry-run", "--json"]
    result = CliRunner().invoke(cli, [*args, "--root", str(tmp_path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    data = json.loads(result.output)
    assert "vm.enable.memory-unreadable" in {f["code"] for f in data["findings"]}
    assert not any("--memory" in c for c in data["commands"])  # no guess from a garbage value


def test_a_non_ascii_balloon_is_not_read_as_a_number() -> None:
    conf = {"ostype": "win11", "memory": "8192", "balloon": "١٠٢٤", "cpu": "host"}
    plan = plan_enable(100, conf, "windows-hyperv", HostCpu("intel", frozenset({"vmx"})),
                       nested_virt=True)  # fmt: skip
    assert ("--balloon", "0") not in plan.options  # "١٠٢٤" is not 1024


@pytest.mark.parametrize("word", ["1", "on", "YES", "True"])
def test_a_template_in_any_case_is_not_enabled(word: str) -> None:
    conf = {"ostype": "l26", "template": word}
    plan = plan_enable(100, conf, "linux-kvm", HostCpu("intel", frozenset({"vmx"})),
                       nested_virt=True)  # fmt: skip
    assert plan.blocked is not None
    assert "template" in plan.blocked


def test_vm_configs_that_cannot_be_listed_are_a_problem_not_zero_vms(open_tmp_path: Path) -> None:
    assert config_access_problem(Host(open_tmp_path)) is None  # no /etc/pve: not a PVE node
    (open_tmp_path / "etc/pve").mkdir(parents=True)
    empty = config_access_problem(Host(open_tmp_path))
    assert empty is not None
    assert "pmxcfs is not mounted" in empty
    node(open_tmp_path)
    vm_conf(open_tmp_path, 100, "ostype: l26\n")
    assert config_access_problem(Host(open_tmp_path)) is None
    # root:www-data 0750 on a real node (run as a normal user, the test owns the tree: 000)
    (open_tmp_path / "etc/pve").chmod(0o750 if is_root() else DENY_DIR)
    denied = as_unprivileged(lambda: config_access_problem(Host(open_tmp_path)))
    assert denied == "/etc/pve cannot be read (not permitted): run as root"


def test_a_truncated_vm_config_is_unreadable_not_half_parsed(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\n" + "#" + "x" * (9 * 1024 * 1024) + "\ncpu: host\n")
    [cfg] = load_vm_configs(Host(tmp_path), vmids=[100])
    assert not cfg.readable
    assert "larger than 8388608 bytes" in cfg.problems[0]
