"""Cluster mode: `nestctl metrics --api ...` against the Proxmox API simulator (tests.pvesim),
whose every request is checked against Proxmox's schema at teardown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.api.clirun import nestctl
from tests.metrics.tools import parse, promtool, value
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures"]


def api_args(sim: PveSim, tmp_path: Path, *, fingerprint: str | None = None) -> list[str]:
    token = tmp_path / "token"
    token.write_text(sim.root_token + "\n")
    return ["--api", sim.url, "--fingerprint", fingerprint or sim.fingerprint,
            "--token-file", str(token)]  # fmt: skip


def test_every_node_and_vm_of_the_cluster(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = nestctl(capsys, "metrics", "--textfile", str(out), *api_args(pve_sim, tmp_path))
    assert code == 0, err
    assert os.listdir(out) == ["nestctl.prom"]
    text = (out / "nestctl.prom").read_text()
    assert pve_sim.root_token.split("=", 1)[1] not in text  # the secret never leaks
    s = parse(text)
    assert value(s, "nestctl_run_success") == 1
    assert value(s, "nestctl_host_info", id="node/pve1", vendor="intel", virt_flag="vmx",
                 kvm_module="unknown") == 1  # fmt: skip
    assert value(s, "nestctl_host_info", id="node/pve2", vendor="amd", virt_flag="svm",
                 kvm_module="unknown") == 1  # fmt: skip
    # pve3 is down: up 0, and its VM is up 0 with no values (never a guessed 0).
    assert value(s, "nestctl_up", id="node/pve3", layer="host") == 0
    assert value(s, "nestctl_up", id="qemu/301", layer="vm") == 0
    assert value(s, "nestctl_vm_nested_exposed", id="qemu/301") is None
    # Without --ssh: pve1 (qemu-server 9.2.6) lists nested-virt's supported-on, so its dated
    # value is known; pve2 (8.3.13) has no such listing: absent plus a failed probe.
    assert value(s, "nestctl_host_nested_enabled", id="node/pve1") == 1
    assert value(s, "nestctl_host_nested_enabled", id="node/pve2") is None
    assert value(s, "nestctl_probe_failed", id="node/pve2", probe="host_nested_enabled") == 1
    vms = {dict(labels)["id"] for name, labels in s if name == "nestctl_up"}
    assert {f"qemu/{vm.vmid}" for vm in pve_sim.cluster.all_vms()} <= vms
    assert value(s, "nestctl_vm_restart_pending", id="qemu/102") == 1  # [PENDING] cpu: host
    promtool("check", "metrics", stdin=text)


def test_a_wrong_fingerprint_is_a_failed_run_with_no_cluster_data(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    wrong = ":".join(["AA"] * 32)
    code, _, err = nestctl(
        capsys, "metrics", "--textfile", str(out), *api_args(pve_sim, tmp_path, fingerprint=wrong)
    )
    assert code == 2
    assert "failure metrics written" in err
    s = parse((out / "nestctl.prom").read_text())
    assert value(s, "nestctl_run_success") == 0
    assert not [k for k in s if k[0] not in (
        "nestctl_build_info", "nestctl_run_success", "nestctl_run_duration_seconds")]  # fmt: skip


def test_an_unknown_target_is_a_usage_error_before_any_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[targets.outer]\nurl = "https://192.0.2.10:8006"\n')
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = nestctl(
        capsys, "metrics", "--textfile", str(out), "--config", str(config), "--target", "nope"
    )
    assert code == 2
    assert "no target 'nope'" in err
    assert os.listdir(out) == []


def test_backups_are_metrics_joinable_with_pve_exporter(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time  # noqa: PLC0415

    now = int(time.time())
    pve_sim.cluster.storage.add_backup("local", "pve1", 101, ctime=now - 600, size=4096)
    pve_sim.cluster.storage.add_backup("local", "pve1", 102, ctime=now - 9 * 86400)
    pve_sim.cluster.storage.vzdump_errors[103] = "no space left on device"
    upid = pve_sim.request("POST", "/nodes/pve1/vzdump", {"vmid": "103", "storage": "local"}).data
    pve_sim.wait_task("pve1", upid)
    code, out, err = nestctl(capsys, "metrics", "--backups", "7", *api_args(pve_sim, tmp_path))
    assert code == 0, err
    s = parse(out)
    assert value(s, "nestctl_guest_last_backup_timestamp_seconds", id="qemu/101") == now - 600
    assert value(s, "nestctl_guest_last_backup_size_bytes", id="qemu/101") == 4096
    assert value(s, "nestctl_guest_backup_status", id="qemu/101", status="ok") == 1
    assert value(s, "nestctl_guest_backup_status", id="qemu/102", status="stale") == 1
    assert value(s, "nestctl_guest_backup_status", id="qemu/103", status="failed") == 1
    assert value(s, "nestctl_guest_backup_status", id="qemu/104", status="none") == 1
    assert value(s, "nestctl_guest_backup_status", id="qemu/301", status="unknown") == 1
    assert value(s, "nestctl_guest_last_backup_timestamp_seconds", id="qemu/104") is None
    promtool("check", "metrics", stdin=out)


def test_backups_without_a_cluster_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = nestctl(capsys, "metrics", "--backups", "7", "--root", str(tmp_path))
    assert code == 2
    assert "--backups needs --api or --target" in err
