"""`nestctl host [enable|disable]` as a user runs it: exit codes, JSON contract, human output,
errors as one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.cli import cli, main
from nestctl.cli import host as host_cli
from nestctl.cli.common import NestctlError
from nestctl.machine import Host, RecordingRunner
from tests.helpers import read_tree
from tests.host.fakes import FakeModprobe
from tests.host.scenarios import build

#: Every key docs/host.md promises in `nestctl host --json` (the issue's contract plus extras).
HOST_KEYS = {
    "vendor", "virt_flag", "virtualized", "kvm_module", "dev_kvm", "nested", "running_vms",
    "cpu_model", "vendor_id", "hypervisor", "level", "kernel", "kvm_modules", "kvm_module_builtin",
    "refcount", "performance", "vm_pids", "other_kvm_processes", "modprobe_files",
    "running_vms_unknown",
}  # fmt: skip
NESTED_KEYS = {"live", "after_reboot", "decided_by", "live_raw", "after_reboot_raw", "settings"}
FINDING_KEYS = {"code", "severity", "message", "fix"}
CHANGE_KEYS = {
    "action", "dry_run", "outcome", "message", "module", "value", "managed_file", "nothing_to_do",
    "steps", "reload_blockers", "backups", "commands", "restored", "remaining", "live_after",
}  # fmt: skip


@pytest.fixture
def fake_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Route the CLI's Host through a recording runner with a fake modprobe, as root."""
    state: dict[str, Any] = {"fake": None}

    def make_host(root: str) -> Host:
        host_cli_open = Host(root, runner=RecordingRunner(state["fake"]), euid=0)
        problem = host_cli_open.root_problem()
        if problem:
            raise NestctlError(f"cannot check: {problem}")
        state["host"] = host_cli_open
        return host_cli_open

    monkeypatch.setattr(host_cli, "make_host", make_host)
    return state


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_json_contract_pins_every_documented_key(tmp_path: Path, fake_root: dict[str, Any]) -> None:
    build(tmp_path, "running-vms")
    result = invoke("host", "--root", str(tmp_path), "--json")
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert set(body) == {"host", "findings", "verdict"}
    assert set(body["host"]) == HOST_KEYS
    assert set(body["host"]["nested"]) == NESTED_KEYS
    assert body["verdict"] == "not-ready"
    assert body["host"]["vendor"] in ("intel", "amd", "other")
    assert body["host"]["virt_flag"] in ("vmx", "svm", None)
    assert body["host"]["running_vms"] == [100, 101]
    for f in body["findings"]:
        assert set(f) == FINDING_KEYS
        assert f["severity"] in ("error", "warning", "info")


def test_ready_host_exits_0(tmp_path: Path, fake_root: dict[str, Any]) -> None:
    build(tmp_path, "intel-nested-on")
    result = invoke("host", "--root", str(tmp_path), "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["verdict"] == "ready"


def test_human_output_has_verdict_findings_and_fixes(
    tmp_path: Path, fake_root: dict[str, Any]
) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    result = invoke("host", "--root", str(tmp_path))
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith("NOT READY")
    assert "host.nested.off" in result.output
    assert "fix: nestctl host enable" in result.output
    assert "/etc/modprobe.d/kvm-intel.conf:1" in result.output
    assert "\x1b[" not in result.output  # no colour when not on a terminal


def test_nonexistent_root_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["host", "--root", "/nonexistent/nestctl-root", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "nestctl: error: cannot check: root directory /nonexistent/nestctl-root does not exist"
    ]


def test_empty_root_is_could_not_check(tmp_path: Path) -> None:
    result = invoke("host", "--root", str(tmp_path), "--json")
    assert result.exit_code == 2
    assert json.loads(result.output)["verdict"] == "unknown"


def test_enable_json_and_idempotence(tmp_path: Path, fake_root: dict[str, Any]) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    fake_root["fake"] = FakeModprobe(tmp_path)
    result = invoke("host", "enable", "--root", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert set(body) == {"change", "findings", "verdict"}
    assert set(body["change"]) == CHANGE_KEYS
    assert body["change"]["outcome"] == "done"
    assert [c["argv"] for c in body["change"]["commands"]] == [
        ["modprobe", "-r", "kvm_intel"],
        ["modprobe", "kvm_intel"],
    ]
    snapshot = read_tree(tmp_path)
    again = invoke("host", "--root", str(tmp_path), "enable")
    assert again.exit_code == 0
    assert "nothing to do" in again.output
    assert read_tree(tmp_path) == snapshot


def test_dry_run_prints_plan_and_diff(tmp_path: Path, fake_root: dict[str, Any]) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    before = read_tree(tmp_path)
    result = invoke("host", "disable", "--dry-run", "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output  # it is already off, now and after reboot
    result = invoke("host", "enable", "--dry-run", "--root", str(tmp_path))
    assert result.exit_code == 0
    assert "+options kvm_intel nested=Y" in result.output
    assert "modprobe -r kvm_intel" in result.output
    assert read_tree(tmp_path) == before


def test_refusal_exit_2_with_json(tmp_path: Path, fake_root: dict[str, Any]) -> None:
    build(tmp_path, "cloud-vm-without-nesting")
    result = invoke("host", "enable", "--root", str(tmp_path), "--json")
    assert result.exit_code == 2
    body = json.loads(result.output)
    assert body["change"]["outcome"] == "refused"
    assert body["findings"][0]["code"] == "host.change.refused"


def test_no_reload_flag(tmp_path: Path, fake_root: dict[str, Any]) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    fake_root["fake"] = FakeModprobe(tmp_path)
    result = invoke("host", "enable", "--no-reload", "--root", str(tmp_path), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["change"]["commands"] == []


@pytest.mark.parametrize("sub", [[], ["enable"], ["disable"]])
def test_help(sub: list[str]) -> None:
    result = invoke("host", *sub, "--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.output
