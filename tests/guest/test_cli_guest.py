"""`nestctl guest` as users and scripts meet it: exit codes 0/1/2 and the pinned JSON contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.cli import cli, main
from tests.guest.linux_trees import l1_kvm
from tests.helpers import write_tree

GUEST_KEYS = ["os", "virt_flag", "dev_kvm", "kvm_usable", "accel", "level"]


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["guest", *args])
    return result.exit_code, result.output


def test_json_contract_for_a_usable_guest(tmp_path: Path) -> None:
    write_tree(tmp_path, l1_kvm())
    code, out = _run(["--root", str(tmp_path), "--json", "--os", "linux"])
    assert code == 0
    body = json.loads(out)
    assert list(body) == ["guest", "findings", "verdict"]
    assert body["verdict"] == "ready"
    guest = body["guest"]
    assert list(guest)[:6] == GUEST_KEYS
    assert {k: guest[k] for k in GUEST_KEYS} == {
        "os": "linux",
        "virt_flag": "svm",
        "dev_kvm": True,
        "kvm_usable": True,
        "accel": "kvm",
        "level": 1,
    }
    for finding in body["findings"]:
        assert set(finding) == {"code", "severity", "message", "fix"}


def test_not_usable_exits_1_with_the_fix(tmp_path: Path) -> None:
    tree = l1_kvm()
    del tree["/dev/kvm"]
    del tree["/sys/module/kvm_amd/parameters/nested"]
    write_tree(tmp_path, tree)
    code, out = _run(["--root", str(tmp_path), "--os", "linux"])
    assert code == 1
    assert "NOT READY" in out
    assert "modprobe kvm_amd" in out


def test_could_not_check_exits_2(tmp_path: Path) -> None:
    code, out = _run(["--root", str(tmp_path), "--json", "--os", "linux"])
    assert code == 2
    body = json.loads(out)
    assert body["verdict"] == "unknown"
    assert body["guest"]["virt_flag"] is None


def test_windows_probes_under_a_fake_root_are_recorded_not_run(tmp_path: Path) -> None:
    # Commands are recorded under a non-live root, so every Windows probe is "could not check".
    code, out = _run(["--root", str(tmp_path), "--json", "--os", "windows"])
    assert code == 2
    guest = json.loads(out)["guest"]
    assert guest["os"] == "windows"
    assert guest["windows"]["verdicts"]["hyperv"]["status"] == "unknown"


def test_missing_root_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["guest", "--root", str(tmp_path / "nope"), "--os", "linux"])
    assert exc.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def test_os_defaults_to_the_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    code, out = _run(["--root", str(tmp_path), "--json"])
    assert json.loads(out)["guest"]["os"] == "windows"
    assert code == 2
