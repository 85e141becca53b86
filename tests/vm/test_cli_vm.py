"""`nestctl vm` and `nestctl vm enable` on fake Proxmox nodes (commands recorded, never run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.cli import cli
from nestctl.machine import CommandResult, CommandStatus, Host, RecordingRunner
from tests.e2e.required import require_program
from tests.vm.vmtrees import PVE84, PVE92, digest_args, node, run_vm, vm_conf

KVM64 = "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"
HOST = "host,+kvm_pv_eoi,+kvm_pv_unhalt"


def vm_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["vm", "--root", str(root), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def by_id(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {v["vmid"]: v for v in data["vms"]}


def codes(vm: dict[str, Any]) -> list[str]:
    return [f["code"] for f in vm["findings"]]


# -- nestctl vm ------------------------------------------------------------------------------


def test_running_vm_with_pending_cpu_needs_a_proxmox_restart(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "name: web\nostype: l26\ntags: nested\n\n[PENDING]\ncpu: host\n")
    run_vm(tmp_path, 100, 4242, KVM64)
    rc, data = vm_json(tmp_path, "100")
    vm = by_id(data)[100]
    assert rc == 1
    assert vm["running"] is True
    assert vm["cpu_arg"] == KVM64
    assert vm["cpu_arg_pending"] == HOST
    assert vm["running_cpu_arg"] == KVM64
    assert vm["restart_required"] is True
    assert vm["nested"] == {"exposed": False, "flag": None, "source": "table"}
    assert vm["broken_link"] == "process"
    restart = next(f for f in vm["findings"] if f["code"] == "vm.restart-required")
    assert "reboot inside the guest does not apply it" in restart["message"]
    assert restart["fix"] == "qm reboot 100"
    assert restart["severity"] == "error"  # the restart changes what the guest sees
    not_exposed = next(f for f in vm["findings"] if f["code"] == "vm.nested.not-exposed")
    assert not_exposed["severity"] == "error"  # the VM wants nesting (its tag)
    assert (vm["wants_nested"], vm["intent"], vm["verdict"]) == (True, "tag", "not-ready")
    assert not_exposed["fix"] == "qm reboot 100"  # the pending config would expose vmx


def test_running_cpu_differs_from_config_without_pending(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n")
    run_vm(tmp_path, 100, 10, KVM64)  # started before someone edited the file by hand
    _, data = vm_json(tmp_path)
    vm = by_id(data)[100]
    assert vm["restart_required"] is True
    assert vm["cpu_arg_pending"] is None
    assert "differs from the config's" in vm["findings"][0]["message"]


def test_pending_machine_change_is_a_warning_when_nesting_stays(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n\n[PENDING]\nmachine: q35\n")
    run_vm(tmp_path, 100, 10, HOST)
    rc, data = vm_json(tmp_path)
    vm = by_id(data)[100]
    restart = next(f for f in vm["findings"] if f["code"] == "vm.restart-required")
    assert restart["severity"] == "warning"
    assert "machine waits in [PENDING]" in restart["message"]
    assert vm["restart_required"] is True
    assert rc == 0


def test_ready_vm(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n")
    run_vm(tmp_path, 100, 10, HOST)
    rc, data = vm_json(tmp_path)
    vm = by_id(data)[100]
    assert rc == 0
    assert data["verdict"] == "ready"
    assert vm["nested"] == {"exposed": True, "flag": "vmx", "source": "table"}
    assert vm["restart_required"] is False
    assert vm["broken_link"] is None
    assert vm["chain"] == {"host": "ok", "config": "ok", "process": "ok", "guest": "ok"}


def test_args_cpu_is_what_runs(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\nargs: -cpu host,+vmx\n")
    run_vm(tmp_path, 100, 10, KVM64, "-cpu", "host,+vmx")
    _, data = vm_json(tmp_path)
    vm = by_id(data)[100]
    assert vm["cpu_arg"] == "host,+vmx"
    assert vm["proxmox_cpu_arg"] == KVM64
    assert vm["running_cpu_arg"] == "host,+vmx"  # the last -cpu wins
    assert vm["restart_required"] is False
    lost = next(f for f in vm["findings"] if f["code"] == "vm.args.cpu-replaced")
    assert "enforce, +kvm_pv_eoi, +kvm_pv_unhalt, +lahf_lm, +sep are dropped" in lost["message"]


def test_refused_config_has_null_cpu_arg_and_proxmox_message(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 101, "ostype: l26\ncpu: host,flags=+vmx\n")
    rc, data = vm_json(tmp_path)
    vm = by_id(data)[101]
    assert rc == 1
    assert vm["cpu_arg"] is None
    refused = next(f for f in vm["findings"] if f["code"] == "vm.cpu.refused")
    assert refused["severity"] == "error"
    assert refused["message"].endswith(
        "VM-specific CPU flags must be a subset of: aes, amd-no-ssb, amd-ssbd, hv-evmcs, "
        "hv-tlbflush, ibpb, md-clear, nested-virt, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd"
    )
    raw = next(f for f in vm["findings"] if f["code"] == "vm.cpu.raw-virt-flag")
    assert raw["fix"] == "qm set 101 --cpu host,flags=+nested-virt"
    assert vm["broken_link"] == "config"


def test_pve84_refuses_nested_virt(tmp_path: Path) -> None:
    node(tmp_path, versions=PVE84)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host,flags=+nested-virt\n")
    _, data = vm_json(tmp_path)
    vm = by_id(data)[100]
    assert vm["cpu_arg"] is None
    refused = next(f for f in vm["findings"] if f["code"] == "vm.cpu.refused")
    assert "nested-virt" not in refused["message"].partition("subset of:")[2]


def test_amd_named_model_needs_nested_virt(tmp_path: Path) -> None:
    node(tmp_path, vendor="amd")
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: EPYC-v4\n")
    vm_conf(tmp_path, 101, "ostype: l26\ncpu: EPYC-v4,flags=+nested-virt\n")
    _, data = vm_json(tmp_path)
    vms = by_id(data)
    assert vms[100]["nested"]["exposed"] is False
    assert vms[101]["nested"] == {"exposed": True, "flag": "svm", "source": "table"}
    assert "+svm" in vms[101]["cpu_arg"]


def test_custom_model_with_vmx(tmp_path: Path) -> None:
    node(tmp_path, versions=PVE84)
    (tmp_path / "etc/pve/virtual-guest").mkdir(parents=True)
    (tmp_path / "etc/pve/virtual-guest/cpu-models.conf").write_text(
        "cpu-model: nestvmx\n    flags +vmx\n    reported-model host\n"
    )
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: custom-nestvmx\n")
    vm_conf(tmp_path, 101, "ostype: l26\ncpu: custom-missing\n")
    _, data = vm_json(tmp_path)
    vms = by_id(data)
    assert vms[100]["cpu_arg"] == "host,+kvm_pv_eoi,+kvm_pv_unhalt,+vmx"
    assert vms[100]["nested"]["exposed"] is True
    assert vms[101]["cpu_arg"] is None
    assert any("Custom cputype 'missing' not found" in f["message"] for f in vms[101]["findings"])


def test_host_nested_off_breaks_the_first_link(tmp_path: Path) -> None:
    node(tmp_path, nested="N")
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host,flags=+nested-virt\n")
    rc, data = vm_json(tmp_path)
    vm = by_id(data)[100]
    assert rc == 1
    assert (vm["wants_nested"], vm["intent"]) == (True, "config")
    assert vm["nested"]["exposed"] is False
    assert vm["broken_link"] == "host"
    assert "vm.host.nested-off" in [f["code"] for f in data["findings"]]


def test_host_nested_off_leaves_vms_that_do_not_want_nesting_alone(tmp_path: Path) -> None:
    """`cpu: host` alone is no intent: the VM is "not nested", neutral, exit 0; the node's
    nested=N is a note, since no VM on it wants nesting."""
    node(tmp_path, nested="N")
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n")
    rc, data = vm_json(tmp_path, "100")
    vm = by_id(data)[100]
    assert (rc, data["verdict"]) == (0, "ready")
    assert (vm["wants_nested"], vm["intent"], vm["verdict"]) == (False, "none", "not-nested")
    assert vm["broken_link"] is None
    assert vm["chain"]["host"] == "broken"  # the fact stays; it just does not matter here
    assert {f["severity"] for f in data["findings"] if f["code"].startswith("vm.host.")} == {"info"}


def test_bad_configs_give_findings_not_tracebacks(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "this is not a config line\n\x00\xff garbage\nostype: l26\n")
    vm_conf(tmp_path, 101, "cpu: host\ncpu: kvm64\n")
    vm_conf(tmp_path, 102, "cpu: host,flags=+pcid,flags=+aes\n")
    vm_conf(tmp_path, 103, "cpu: Frobnicator-v9\n")
    vm_conf(tmp_path, 104, "[broken\nmemory: lots\ncpu: host,hidden=maybe\n")
    result = CliRunner().invoke(cli, ["vm", "--root", str(tmp_path), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    data = json.loads(result.output)
    vms = by_id(data)
    assert set(vms) == {100, 101, 102, 103, 104}
    assert "vm.config.problem" in codes(vms[100])
    assert vms[102]["cpu_arg"] is None
    assert vms[103]["cpu_arg"] is None
    assert any("Frobnicator-v9" in f["message"] for f in vms[103]["findings"])
    assert vms[104]["findings"]


def test_missing_vmid_and_all_nodes(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n", node_name="pve1")
    vm_conf(tmp_path, 200, "ostype: l26\n", node_name="pve2")
    run_vm(tmp_path, 200, 33, KVM64)  # a pid file here says nothing about pve2's VM
    rc, data = vm_json(tmp_path, "999")
    assert rc == 2  # nothing was checked: never "not ready"
    assert data["vms"] == []
    assert data["findings"][-1]["code"] == "vm.not-found"
    assert data["findings"][-1]["message"] == "no VM 999 on this cluster"
    # VM 200 is pve2's: named here without --all-nodes, the message says where it is.
    rc, data = vm_json(tmp_path, "200")
    assert rc == 2
    assert "it is on node pve2" in data["findings"][-1]["message"]
    _, data = vm_json(tmp_path, "--all-nodes")
    vms = by_id(data)
    assert vms[100]["node"] == "pve1"
    assert vms[200]["node"] == "pve2"
    assert vms[200]["running"] is False


def test_guest_view_needs_a_running_vm_and_an_agent(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n")
    vm_conf(tmp_path, 101, "ostype: l26\ncpu: host\n")
    run_vm(tmp_path, 101, 11, HOST)
    _, data = vm_json(tmp_path, "--guest")
    vms = by_id(data)
    assert vms[100]["guest"] is None
    assert "vm.guest.not-running" in codes(vms[100])
    assert vms[101]["guest"] is None
    no_agent = next(f for f in vms[101]["findings"] if f["code"] == "vm.guest.no-agent")
    assert no_agent["fix"] == "qm set 101 --agent 1"


def test_guest_view_through_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    from nestctl.guest import agent as agent_mod  # noqa: PLC0415
    from tests.guest.fake_agent import FakeAgent  # noqa: PLC0415

    monkeypatch.setattr(agent_mod, "SYNC_ATTEMPT", 0.2)
    # Unix socket paths are limited to 107 bytes: a short root instead of tmp_path.
    root = Path(tempfile.mkdtemp(prefix="nv-"))
    try:
        node(root)
        vm_conf(root, 100, "ostype: l26\ncpu: host\nagent: 1\n")
        run_vm(root, 100, 11, HOST)
        guest_cpuinfo = (
            b"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx hypervisor\n"
        )
        fake = FakeAgent(
            root / "var/run/qemu-server/100.qga", files={"/proc/cpuinfo": guest_cpuinfo}
        )
        try:
            _, data = vm_json(root, "100", "--guest")
        finally:
            fake.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    guest = by_id(data)[100]["guest"]
    assert guest["via"] == "agent"
    assert guest["os"] == "linux"
    assert guest["virt_flag"] == "vmx"


def test_not_a_proxmox_node(tmp_path: Path) -> None:
    node(tmp_path)
    shutil.rmtree(tmp_path / "etc/pve")
    rc, data = vm_json(tmp_path)
    assert rc == 2
    assert data["vms"] == []
    assert data["findings"][0]["code"] == "vm.no-proxmox"


def test_text_output(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "name: web\nostype: l26\ncpu: host\n")
    result = CliRunner().invoke(cli, ["vm", "--root", str(tmp_path)])
    assert "VM 100 (web)" in result.output
    assert "1 of 1 VM(s) give the guest vmx/svm" in result.output


def test_json_run_does_not_import_rich(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\n")
    code = (
        "import sys\nfrom nestctl.cli import main\n"
        "try:\n    main(['vm', '--root', sys.argv[1], '--json'])\n"
        "except SystemExit:\n    pass\n"
        "assert 'rich' not in sys.modules, 'rich imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


# -- nestctl vm enable -----------------------------------------------------------------------


def enable(
    root: Path, monkeypatch: pytest.MonkeyPatch, *args: str, runner: RecordingRunner | None = None
) -> tuple[int, dict[str, Any], RecordingRunner]:
    rec = runner or RecordingRunner()
    monkeypatch.setattr("nestctl.cli.vm.make_host", lambda r: Host(r, runner=rec))
    result = CliRunner().invoke(cli, ["vm", "enable", "--root", str(root), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output), rec


LINUX = "name: lab\nostype: l26\nmemory: 2048\ncpu: x86-64-v2-AES\n"
WINDOWS = "name: win\nostype: win11\nmemory: 4096\nballoon: 2048\ncpu: x86-64-v2-AES\n"

#: What the Windows profiles add to a 4 GiB, ballooning i440fx VM.
WIN_TAIL = ["--machine", "q35", "--memory", "8192", "--balloon", "0"]
PLANS = [
    # (versions, vendor, profile, migratable, expected qm argv after "qm set 100")
    (PVE92, "intel", "linux-kvm", False, ["--cpu", "host"]),
    (PVE92, "amd", "linux-kvm", True, ["--cpu", "EPYC-v4,flags=+nested-virt"]),
    (PVE92, "intel", "windows-hyperv", False, ["--cpu", "host", *WIN_TAIL]),
    (PVE92, "amd", "windows-hyperv", True, ["--cpu", "EPYC-v4,flags=+nested-virt", *WIN_TAIL]),
    (
        PVE92,
        "intel",
        "windows-wsl2-docker",
        True,
        ["--cpu", "Cascadelake-Server-noTSX,flags=+nested-virt", *WIN_TAIL],
    ),
    (PVE92, "amd", "pve-lab", False, ["--cpu", "host"]),
    (PVE84, "intel", "linux-kvm", False, ["--cpu", "host"]),
    (PVE84, "amd", "windows-hyperv", False, ["--cpu", "host", *WIN_TAIL]),
    (PVE84, "intel", "windows-wsl2-docker", False, ["--cpu", "host", *WIN_TAIL]),
    (PVE84, "intel", "pve-lab", False, ["--cpu", "host"]),
]


@pytest.mark.parametrize(("versions", "vendor", "profile", "migratable", "expected"), PLANS)
def test_enable_plans_exact_argv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    versions: dict[str, str],
    vendor: str,
    profile: str,
    migratable: bool,
    expected: list[str],
) -> None:
    node(tmp_path, vendor=vendor, versions=versions)
    vm_conf(tmp_path, 100, WINDOWS if "windows" in profile else LINUX)
    args = ["100", "--profile", profile, "--dry-run"] + (["--migratable"] if migratable else [])
    rc, data, rec = enable(tmp_path, monkeypatch, *args)
    assert rc == 0
    # `vm enable` also marks the VM as meant to nest: the tag, in the same change.
    tagged = [*expected, "--tags", "nested"]
    assert data["commands"] == [["qm", "set", "100", *tagged, *digest_args(tmp_path, 100)]]
    assert rec.calls == []  # dry run: nothing ran, nothing recorded


def test_enable_pve84_migratable_prints_the_custom_model_and_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(tmp_path, vendor="amd", versions=PVE84)
    vm_conf(tmp_path, 100, LINUX)
    rc, data, rec = enable(tmp_path, monkeypatch, "100", "--profile", "linux-kvm", "--migratable")
    assert rc == 1
    assert data["commands"] == [
        ["qm", "set", "100", "--cpu", "custom-nested-epyc-v4", *digest_args(tmp_path, 100)]
    ]
    assert (
        "cpu-model: nested-epyc-v4\n    flags +svm\n    reported-model EPYC-v4\n"
        in (data["manual"][0])
    )
    assert rec.calls == []
    assert not (tmp_path / "etc/pve/virtual-guest/cpu-models.conf").exists()


def test_enable_refuses_a_locked_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, LINUX + "lock: backup\n")
    rc, data, rec = enable(tmp_path, monkeypatch, "100", "--profile", "linux-kvm")
    assert rc == 1
    assert data["blocked"] == "VM is locked (backup)"
    assert rec.calls == []


def test_enable_applies_through_qm_and_reports_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, LINUX)
    run_vm(tmp_path, 100, 50, "qemu64,+aes,enforce,+kvm_pv_eoi,+kvm_pv_unhalt")
    before = (tmp_path / "etc/pve/qemu-server/100.conf").read_text()
    digest = tuple(digest_args(tmp_path, 100))
    rc, data, rec = enable(tmp_path, monkeypatch, "100", "--profile", "linux-kvm")
    # --digest: Proxmox refuses the change if the config changed since nestctl checked it.
    assert rec.calls == [("qm", "set", "100", "--cpu", "host", "--tags", "nested", *digest)]
    assert data["applied"] is True
    assert "vm.restart-required" in [f["code"] for f in data["findings"]]
    # Proxmox's file is changed only by qm (here recorded), never by nestctl.
    assert (tmp_path / "etc/pve/qemu-server/100.conf").read_text() == before
    assert rc == 0


def test_enable_restart_reboots_and_verifies_the_running_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, LINUX)
    run_vm(tmp_path, 100, 50, "qemu64,+aes,enforce,+kvm_pv_eoi,+kvm_pv_unhalt")
    conf = tmp_path / "etc/pve/qemu-server/100.conf"
    digest = tuple(digest_args(tmp_path, 100))

    def fake_qm(argv: tuple[str, ...]) -> CommandResult | None:
        # What qm does on a running VM: set puts cpu into [PENDING]; reboot applies it and
        # starts a new QEMU with Proxmox's new -cpu.
        if argv[:2] == ("qm", "set"):
            conf.write_text(conf.read_text() + "\n[PENDING]\ncpu: host\n")
        elif argv[:2] == ("qm", "reboot"):
            conf.write_text(LINUX.replace("cpu: x86-64-v2-AES", "cpu: host"))
            run_vm(tmp_path, 100, 51, HOST)
        return CommandResult(argv, CommandStatus.OK, 0)

    rc, data, rec = enable(
        tmp_path,
        monkeypatch,
        "100",
        "--profile",
        "linux-kvm",
        "--restart",
        runner=RecordingRunner(respond=fake_qm),
    )
    assert rec.calls == [
        ("qm", "set", "100", "--cpu", "host", "--tags", "nested", *digest),
        ("qm", "reboot", "100"),
    ]
    assert data["restart"] == {"running_cpu_arg": HOST, "expected_cpu_arg": HOST, "matches": True}
    assert "vm.enable.verified" in [f["code"] for f in data["findings"]]
    assert rc == 0


def test_enable_failed_qm_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, LINUX)

    def failing(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, CommandStatus.FAILED, 255, stderr="VM is locked (migrate)\n")

    rc, data, _ = enable(
        tmp_path, monkeypatch, "100", "--profile", "linux-kvm", runner=RecordingRunner(failing)
    )
    assert rc == 1
    failed = next(f for f in data["findings"] if f["code"] == "vm.enable.failed")
    assert "VM is locked (migrate)" in failed["message"]


def test_enable_unknown_vm_and_bad_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node(tmp_path)
    rc, data, _ = enable(tmp_path, monkeypatch, "100", "--profile", "linux-kvm")
    assert rc == 2  # nothing to change, nothing checked: the same exit code as `vm 100`
    assert data["blocked"] == "no such VM on this node"
    vm_conf(tmp_path, 100, LINUX)
    args = ["vm", "enable", "100", "--profile", "linux-kvm", "--root", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--pve-version", "nine"])
    assert result.exit_code == 2


def test_options_after_vmids_and_misplaced_subcommand(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\n")
    result = CliRunner().invoke(cli, ["vm", "100", "--root", str(tmp_path), "--json"])
    assert json.loads(result.output)["vms"][0]["vmid"] == 100
    result = CliRunner().invoke(cli, ["vm", "--root", str(tmp_path), "enable", "100"])
    assert result.exit_code == 2
    assert "must come right after 'vm'" in result.output


_LINES = st.sampled_from(
    [
        "cpu: host",
        "cpu: host,flags=+vmx",
        "cpu: custom-nope",
        "cpu: EPYC-v4,flags=+nested-virt",
        "cpu: ,,,=",
        "args: -cpu 'host",
        "args: -hypervisor -cpu max",
        "ostype: win11",
        "machine: pc-q35-99.9",
        "machine: q35,viommu=intel",
        "kvm: 0",
        "template: 1",
        "lock: backup",
        "hostpci0: 01:00.0,x-vga=1",
        "[PENDING]",
        "delete: cpu,machine",
        "[snap1]",
        "[special:cloudinit]",
        "garbage without colon",
        "#a description",
    ]
)


@given(lines=st.lists(_LINES | st.text(max_size=30), max_size=12))
@settings(max_examples=200, deadline=None)
def test_analyse_never_raises(lines: list[str]) -> None:
    from nestctl.vm.config import parse_vm_config  # noqa: PLC0415
    from nestctl.vm.cpuarg import predict_cpu  # noqa: PLC0415
    from nestctl.vm.model import CpuEnv  # noqa: PLC0415
    from nestctl.vm.report import VmContext, analyse_vm  # noqa: PLC0415
    from nestctl.vm.running import RunningCheck  # noqa: PLC0415

    cfg = parse_vm_config("\n".join(lines), 100, "/etc/pve/qemu-server/100.conf")
    ctx = VmContext(CpuEnv(), predict_cpu, "intel", True, nested_virt_supported=True)
    result = analyse_vm(cfg, RunningCheck(False), ctx)
    body = result.to_json()
    assert body["vmid"] == 100
    refused_now = [
        f for f in body["findings"] if f["code"] == "vm.cpu.refused" and "in force" in f["message"]
    ]
    assert (body["cpu_arg"] is None) == bool(refused_now)


@pytest.mark.e2e
def test_real_qemu_answers_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_program("qemu-system-x86_64")  # CI (NESTCTL_E2E_REQUIRED) fails instead of skipping
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "root"
    node(root)
    vm_conf(root, 100, "ostype: l26\n")  # kvm64: QEMU validates it, KVM rules decide
    vm_conf(root, 101, "ostype: l26\nargs: -cpu Frobnicator-v9\n")  # QEMU has no such model
    vm_conf(root, 102, "ostype: l26\nkvm: 0\n")  # software emulation: QEMU's own answer
    _, data = vm_json(root, "--use-qemu")
    vms = by_id(data)
    assert vms[100]["nested"]["exposed"] is False
    assert vms[100]["nested"]["source"].startswith("qemu ")
    refused = next(f for f in vms[101]["findings"] if f["code"] == "vm.cpu.qemu-refuses")
    assert "Frobnicator-v9" in refused["message"]
    assert vms[102]["nested"]["source"].startswith("qemu ")
    assert vms[102]["nested"]["flag"] in ("svm", None)
    # A second run answers from the cache, with the same result.
    _, again = vm_json(root, "--use-qemu")
    assert by_id(again)[100]["nested"] == vms[100]["nested"]


def test_a_vm_qemu_cannot_start_breaks_the_config_link(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\nargs: -hypervisor\n")
    rc, data = vm_json(tmp_path, "100")
    vm = by_id(data)[100]
    assert rc == 1
    assert "vm.args.bare-hypervisor" in codes(vm)
    assert vm["chain"]["config"] == "broken"
    assert vm["broken_link"] == "config"


def test_text_shows_lock_and_per_vm_notes(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 100, "name: db\nostype: l26\ncpu: host\nlock: backup\n")
    result = CliRunner().invoke(cli, ["vm", "--root", str(tmp_path)])
    assert "lock" in result.output
    assert "backup" in result.output
    assert "VM is locked (backup)" in result.output.replace("\n", " ")


def test_an_unknown_vmid_is_the_same_words_and_exit_2_from_every_command(tmp_path: Path) -> None:
    node(tmp_path)
    vm_conf(tmp_path, 101, "ostype: l26\ncpu: host\n")
    vm_conf(tmp_path, 1010, "ostype: l26\n")
    want = "no VM 1011 on this cluster (did you mean 101 or 1010?)"
    rc, data = vm_json(tmp_path, "1011")
    assert (rc, data["verdict"]) == (2, "unknown")
    assert [f["message"] for f in data["findings"] if f["code"] == "vm.not-found"] == [want]
    text = CliRunner().invoke(cli, ["vm", "--root", str(tmp_path), "1011"])
    assert text.exit_code == 2
    assert want in text.output
    assert "0 of 0" not in text.output
    for verb in (["enable", "1011", "--profile", "linux-kvm"], ["disable", "1011"]):
        res = CliRunner().invoke(cli, ["vm", *verb, "--root", str(tmp_path), "--json"])
        assert res.exit_code == 2, (verb, res.output)
        found = json.loads(res.output)["findings"]
        assert [f["message"] for f in found if f["code"] == "vm.not-found"] == [
            want.replace("on this cluster", "on this node")
        ], verb
