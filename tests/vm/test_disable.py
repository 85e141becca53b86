"""`nestctl vm disable VMID`: no longer meant to nest (locally through qm, over the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.machine import Host, RecordingRunner
from nestctl.vm.disable import plan_disable
from tests.api.clirun import nestctl_json
from tests.pvesim import PveSim
from tests.vm.vmtrees import digest_args, node, run_vm, vm_conf

pytest_plugins = ["tests.pvesim.fixtures"]


def disable(
    root: Path, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, dict[str, Any], RecordingRunner]:
    rec = RecordingRunner()
    monkeypatch.setattr("nestctl.cli.vm.make_host", lambda r: Host(r, runner=rec))
    result = CliRunner().invoke(cli, ["vm", "disable", "--root", str(root), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output), rec


@pytest.mark.parametrize(
    ("conf", "options"),
    [
        ({"tags": "nested", "cpu": "host"}, [("--delete", "tags")]),
        ({"tags": "web;nested", "cpu": "host"}, [("--tags", "web")]),
        (
            {"tags": "nested", "cpu": "EPYC-v4,flags=+aes;+nested-virt"},
            [("--cpu", "EPYC-v4,flags=+aes"), ("--delete", "tags")],
        ),
        ({"cpu": "host,flags=+nested-virt,hidden=1"}, [("--cpu", "host,hidden=1")]),
        ({"cpu": "host,flags=-nested-virt"}, []),  # switching it off is no ask: kept
        ({"cpu": "host"}, []),
    ],
)
def test_plan_removes_the_tag_and_the_configs_asks(
    conf: dict[str, str], options: list[tuple[str, str]]
) -> None:
    plan = plan_disable(100, conf, "nested", running=False)
    assert plan.options == options
    assert plan.blocked is None


def test_what_cannot_be_undone_is_said_not_guessed() -> None:
    plan = plan_disable(100, {"args": "-cpu host,+vmx"}, "nested", running=False)
    assert plan.options == []
    assert [f.code for f in plan.findings] == ["vm.disable.manual"]
    locked = plan_disable(100, {"tags": "nested", "lock": "backup"}, "nested", running=False)
    assert (locked.options, locked.blocked) == ([], "VM is locked (backup)")


def test_disable_locally_through_qm_with_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host,flags=+nested-virt\ntags: db;nested\n")
    run_vm(tmp_path, 100, 4242, "host,+kvm_pv_eoi,+kvm_pv_unhalt")
    digest = digest_args(tmp_path, 100)
    code, data, rec = disable(tmp_path, monkeypatch, "100", "--dry-run")
    want = ["qm", "set", "100", "--cpu", "host", "--tags", "db", *digest]
    assert (code, data["commands"], rec.calls) == (0, [want], [])
    code, data, rec = disable(tmp_path, monkeypatch, "100")
    assert rec.calls == [tuple(want)]  # recorded (not run) under a --root
    codes = {f["code"] for f in data["findings"]}
    assert {"vm.disable.restart", "vm.disable.cpu-host"} <= codes
    assert code == 0


def test_disable_over_the_api_removes_the_tag_under_the_digest(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text(pve_sim.root_token)
    api = ["--api", pve_sim.url, "--fingerprint", pve_sim.fingerprint, "--token-file", str(token)]
    # enable then disable: the tag comes and goes, through PUT .../config with the digest.
    code, _data = nestctl_json(capsys, "vm", "enable", "103", "--profile", "linux-kvm", *api)
    assert code == 0
    assert pve_sim.cluster.vm(103).conf.main["tags"] == "nested"
    code, data = nestctl_json(capsys, "vm", "disable", "103", *api)
    assert (code, data["applied"]) == (0, True)
    assert "tags" not in pve_sim.cluster.vm(103).conf.main
    puts = [r for r in pve_sim.requests if r.method == "PUT"]
    assert puts[-1].params["delete"] == "tags"
    assert puts[-1].params["digest"]
    # Now nothing asks for nesting: VM 103 is "not nested" in every view.
    code, body = nestctl_json(capsys, "vm", "103", *api)
    assert body["vms"][0]["verdict"] == "not-nested"
    assert code == 0
