"""`vm enable --snapshot` on the node: `qm snapshot` first, `qm set` with the digest after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.machine import CommandResult, CommandStatus, Host, RecordingRunner
from tests.vm.test_cli_vm import LINUX, enable
from tests.vm.vmtrees import digest_args, node, vm_conf

DISK = "scsi0: local-lvm:vm-100-disk-0,size=8G\n"
STORAGE_CFG = (
    "dir: local\n\tpath /var/lib/vz\n\tcontent backup,iso\n\n"
    "lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n"
)


def tree(root: Path, storage_cfg: str = STORAGE_CFG) -> Path:
    node(root)
    vm_conf(root, 100, LINUX + DISK)
    (root / "etc/pve/storage.cfg").write_text(storage_cfg)
    return root / "etc/pve/qemu-server/100.conf"


def test_the_snapshot_comes_first_and_qm_set_carries_the_new_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tree(tmp_path)

    def fake_qm(argv: tuple[str, ...]) -> CommandResult:
        if argv[:2] == ("qm", "snapshot"):  # what qm does: parent + a snapshot section
            body = conf.read_text()
            conf.write_text(f"parent: {argv[3]}\n{body}\n[{argv[3]}]\n{body}snaptime: 1\n")
        return CommandResult(argv, CommandStatus.OK, 0)

    old = tuple(digest_args(tmp_path, 100))
    rc, data, rec = enable(
        tmp_path, monkeypatch, "100", "--profile", "linux-kvm", "--snapshot",
        runner=RecordingRunner(respond=fake_qm),
    )  # fmt: skip
    assert rc == 0, data
    name = data["snapshot"]["name"]
    new = tuple(digest_args(tmp_path, 100))
    assert new != old
    assert rec.calls[0][:4] == ("qm", "snapshot", "100", name)
    assert rec.calls[1][:5] == ("qm", "set", "100", "--cpu", "host")
    assert rec.calls[1][-2:] == new  # the digest after our own snapshot
    assert data["snapshot"]["taken"] is True


def test_a_failed_qm_snapshot_stops_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(tmp_path)

    def failing(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, CommandStatus.FAILED, 255, stderr="VM is locked (backup)\n")

    rc, data, rec = enable(
        tmp_path, monkeypatch, "100", "--profile", "linux-kvm", "--snapshot",
        runner=RecordingRunner(failing),
    )  # fmt: skip
    assert rc == 1
    assert [c[:2] for c in rec.calls] == [("qm", "snapshot")]
    assert data["applied"] is False
    codes = [f["code"] for f in data["findings"] if f["severity"] == "error"]
    assert codes == ["vm.enable.snapshot-failed"]


def test_raw_on_a_dir_storage_is_said_with_the_reason_and_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, LINUX + "scsi0: local:100/vm-100-disk-0.raw,size=8G\n")
    (tmp_path / "etc/pve/storage.cfg").write_text(STORAGE_CFG)
    rc, data, rec = enable(tmp_path, monkeypatch, "100", "--profile", "linux-kvm", "--snapshot")
    assert rc == 1
    assert rec.calls == []
    assert data["snapshot"]["supported"] is False
    assert "scsi0 is on local (dir) in raw format" in data["snapshot"]["why"]


def test_vm_disable_rollback_runs_qm_rollback_to_the_newest_nestctl_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tree(tmp_path)
    body = conf.read_text()
    conf.write_text(
        "parent: nestctl-before-pve-lab-20261202\n" + body
        + "\n[nestctl-before-linux-kvm-20261201]\n" + body + "snaptime: 100\n"
        + "\n[nestctl-before-pve-lab-20261202]\n" + body + "snaptime: 200\n"
        + "\n[mine]\n" + body + "snaptime: 300\n"
    )  # fmt: skip
    rec = RecordingRunner()
    monkeypatch.setattr("nestctl.cli.vm.make_host", lambda r: Host(r, runner=rec))
    result = CliRunner().invoke(
        cli, ["vm", "disable", "100", "--rollback", "--yes", "--root", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert rec.calls == [("qm", "rollback", "100", "nestctl-before-pve-lab-20261202")]
    result = CliRunner().invoke(
        cli, ["vm", "disable", "100", "--rollback", "--root", str(tmp_path), "--json"]
    )
    assert result.exit_code == 2  # no terminal to confirm on, and no --yes
