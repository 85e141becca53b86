"""Non-ASCII digits in a VM config are garbage, never an internal error or a number.

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
from nestctl.vm.profiles import HostCpu, plan_enable
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
