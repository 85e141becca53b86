"""`nestctl doctor`: the host and every VM in one report, with one verdict and one exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.cli import cli, main
from tests.helpers import write_tree
from tests.host.scenarios import build
from tests.vm.vmtrees import PVE92, dpkg_status, run_vm, vm_conf

HOST = "host,+kvm_pv_eoi,+kvm_pv_unhalt"
KVM64 = "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"


def node(root: Path, *, nested: str = "Y") -> Path:
    """A complete Intel host (the host layer's scenario) that is also a PVE 9.2 node."""
    build(root, "intel-nested-on")
    write_tree(
        root,
        {
            "/sys/module/kvm_intel/parameters/nested": f"{nested}\n",
            "/var/lib/dpkg/status": dpkg_status(PVE92),
            "/etc/hostname": "pve1\n",
        },
    )
    (root / "etc/pve/qemu-server").mkdir(parents=True, exist_ok=True)
    return root


def doctor_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["doctor", "--root", str(root), "--json", "--no-qemu", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def codes(data: dict[str, Any]) -> list[str]:
    return [f["code"] for f in data["findings"]]


def test_a_ready_node_with_a_ready_vm(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "name: lab\nostype: l26\ncpu: host\n")
    run_vm(tmp_path, 100, 4242, HOST)
    rc, data = doctor_json(tmp_path)
    assert rc == 0, data["findings"]
    assert data["verdict"] == "ready"
    assert data["proxmox"] is True
    assert data["host"]["nested"]["live"] is True
    assert data["host"]["running_vms"] == [100]
    assert [v["vmid"] for v in data["vms"]] == [100]
    assert data["vms"][0]["nested"]["exposed"] is True


def test_a_vm_problem_makes_the_node_not_ready(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ntags: nested\n\n[PENDING]\ncpu: host\n")
    run_vm(tmp_path, 100, 4242, KVM64)
    rc, data = doctor_json(tmp_path)
    assert rc == 1
    assert data["verdict"] == "not-ready"
    assert "vm.restart-required" in codes(data)


def test_host_nested_off_is_reported_once(tmp_path: Path) -> None:
    node(tmp_path, nested="N")
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\ntags: nested\n")
    rc, data = doctor_json(tmp_path)
    assert rc == 1
    assert data["host"]["nested"]["live"] is False
    assert "vm.host.nested-off" not in codes(data)  # the host layer's own finding says it
    assert any(c.startswith("host.") and "nested" in c for c in codes(data))


def test_nested_off_is_a_note_when_no_vm_wants_nesting(tmp_path: Path) -> None:
    """Web servers and databases (`cpu: host` for speed, no tag): nothing wants nesting, so
    nested=N is no problem and doctor exits 0; --all-vms asks "which could nest?"."""
    node(tmp_path, nested="N")
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n")
    rc, data = doctor_json(tmp_path)
    assert (rc, data["verdict"]) == (0, "ready")
    assert data["vms"][0]["verdict"] == "not-nested"
    nested = [f for f in data["findings"] if f["code"].startswith("host.nested.")]
    assert nested
    assert {f["severity"] for f in nested} == {"info"}
    rc, data = doctor_json(tmp_path, "--all-vms")
    assert (rc, data["vms"][0]["verdict"], data["vms"][0]["broken_link"]) == (
        1,
        "not-ready",
        "host",
    )


def test_not_a_proxmox_node_checks_the_host_only(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    rc, data = doctor_json(tmp_path)
    assert data["proxmox"] is False
    assert data["vms"] == []
    assert "doctor.not-proxmox" in codes(data)
    assert rc == 0, data["findings"]


def test_human_output_names_both_layers(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "name: lab\nostype: l26\ncpu: host\n")
    result = CliRunner().invoke(cli, ["doctor", "--root", str(tmp_path), "--no-qemu"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("READY")
    assert "nested" in result.output
    assert "100" in result.output


def test_a_root_that_does_not_exist_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--root", str(tmp_path / "nope"), "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "Traceback" not in err


def test_garbage_everywhere_gives_findings_not_tracebacks(tmp_path: Path) -> None:
    node(tmp_path)
    write_tree(
        tmp_path,
        {
            "/proc/cpuinfo": b"\xff\xfe garbage\x00\n",
            "/sys/module/kvm_intel/parameters/nested": b"\x00\x01\x02",
            "/etc/pve/qemu-server/100.conf": b"\xff\xfe\n[[[\ncpu: ,,,=\n",
            "/etc/modprobe.d/x.conf": b"options\x00 kvm_intel nested=\xff\n",
        },
    )
    rc, data = doctor_json(tmp_path)
    assert rc in (1, 2)
    assert data["verdict"] in ("not-ready", "unknown")
