"""Unknown is never "no": what nestctl could not read stays null with a finding, on the host layer.

The unreadable-file cases run as an unprivileged user (`tests.privileges`): CI runs as root, which
reads anything, so they drop privileges instead of skipping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nestctl.host.change import change_report
from nestctl.host.klog import scan_log
from nestctl.host.kvm import decide_builtin
from nestctl.host.pidfiles import PIDFILE_FIX, check_pidfile, scan_pidfiles
from nestctl.host.probe import probe_host
from nestctl.host.report import host_report
from nestctl.machine import Host, ReadStatus
from nestctl.render.jsonout import dumps_report
from nestctl.vm.running import check_running
from tests.helpers import write_tree
from tests.host.scenarios import SCENARIOS, build, qemu_cmdline, running_vms
from tests.privileges import DENY_DIR, DENY_FILE, as_unprivileged, is_root, needs_root

OK, MISSING, DENIED = ReadStatus.OK, ReadStatus.MISSING, ReadStatus.NOT_PERMITTED


def host_json(root: Path) -> dict[str, object]:
    body = json.loads(dumps_report(host_report(Host(root)).to_json()))
    assert isinstance(body, dict)
    return body


def test_unreadable_cpuinfo_gives_a_null_vendor_not_other(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    (tmp_path / "proc/cpuinfo").unlink()
    (tmp_path / "proc/cpuinfo").mkdir()  # read() refuses it: could not check
    body = host_json(tmp_path)
    host = body["host"]
    assert isinstance(host, dict)
    assert host["vendor"] is None
    assert host["virtualized"] is None
    assert host["level"] is None
    assert body["verdict"] == "unknown"
    assert "host.proc.unreadable" in {f["code"] for f in body["findings"]}  # type: ignore[index,union-attr]


def test_unreadable_dmi_leaves_virtualized_unknown(tmp_path: Path) -> None:
    build(tmp_path, "firmware-disabled-vt-x")  # bare metal: no hypervisor flag
    (tmp_path / "sys/class/dmi/id/product_name").unlink()
    (tmp_path / "sys/class/dmi/id/product_name").mkdir()
    body = host_json(tmp_path)
    host = body["host"]
    assert isinstance(host, dict)
    assert host["virtualized"] is None
    codes = {f["code"] for f in body["findings"]}  # type: ignore[index,union-attr]
    assert "host.virtualization-unknown" in codes
    # DMI that is simply absent (ARM boards, microVMs) is a checked answer.
    (tmp_path / "sys/class/dmi/id/product_name").rmdir()
    assert host_json(tmp_path)["host"]["virtualized"] is False  # type: ignore[index]


@pytest.mark.parametrize(
    ("initstate", "refcnt", "proc", "listed", "expected"),
    [
        (OK, OK, True, False, False),  # a loadable module, every sign agrees
        (MISSING, OK, True, None, False),  # a snapshot without initstate: still loadable
        (MISSING, MISSING, False, True, True),  # built in, every sign agrees
        (MISSING, MISSING, False, None, True),  # modules.builtin missing: the rest agrees
        (MISSING, MISSING, None, True, True),  # /proc/modules missing: modules.builtin says it
        (OK, OK, True, True, None),  # loadable signs, yet modules.builtin lists it
        (MISSING, MISSING, False, False, None),  # no file, no line, not listed either
        (MISSING, MISSING, None, None, None),  # one missing file decides nothing
        (DENIED, DENIED, None, None, None),
    ],
)
def test_built_in_is_decided_from_all_the_evidence(
    initstate: ReadStatus,
    refcnt: ReadStatus,
    proc: bool | None,
    listed: bool | None,
    expected: bool | None,
) -> None:
    assert decide_builtin(initstate, refcnt, proc, listed)[0] is expected


def test_snapshot_without_initstate_is_not_called_built_in(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    (tmp_path / "sys/module/kvm_intel/initstate").unlink()
    (tmp_path / "proc/modules").unlink()
    body = host_json(tmp_path)
    assert body["host"]["kvm_module_builtin"] is False  # type: ignore[index]  # refcnt exists
    (tmp_path / "sys/module/kvm_intel/refcnt").unlink()
    body = host_json(tmp_path)
    assert body["host"]["kvm_module_builtin"] is None  # type: ignore[index]
    codes = {f["code"] for f in body["findings"]}  # type: ignore[index,union-attr]
    assert "host.kvm.builtin-unknown" in codes
    assert "host.kvm.builtin" not in codes
    assert body["verdict"] == "not-ready"  # nested is off: that error still decides


def _pidfiles_0600(root: Path) -> None:
    """As QEMU writes them: 0600, root's (run as a normal user, the test owns the tree: 000)."""
    for pidfile in (root / "var/run/qemu-server").glob("*.pid"):
        pidfile.chmod(0o600 if is_root() else DENY_FILE)


def test_unreadable_pid_files_make_running_unknown_not_no(open_tmp_path: Path) -> None:
    write_tree(open_tmp_path, running_vms())
    _pidfiles_0600(open_tmp_path)  # as QEMU writes them

    def look() -> tuple[dict[str, object], str | None]:
        body = host_json(open_tmp_path)
        return body, check_running(Host(open_tmp_path), 100).reason

    body, reason = as_unprivileged(look)
    host = body["host"]
    assert isinstance(host, dict)
    assert host["running_vms"] is None
    assert host["running_vms_unknown"] == [100, 101, 102]
    [finding] = [f for f in body["findings"] if f["code"] == "host.vms.unknown"]  # type: ignore[index,union-attr]
    assert finding["fix"] == PIDFILE_FIX == "run as root to read QEMU's pid files"
    assert reason is not None
    assert "/var/run/qemu-server/100.pid cannot be read" in reason


def test_pid_files_read_as_root_are_facts(open_tmp_path: Path) -> None:
    needs_root()
    write_tree(open_tmp_path, running_vms())
    _pidfiles_0600(open_tmp_path)
    host = host_json(open_tmp_path)["host"]
    assert isinstance(host, dict)
    assert host["running_vms"] == [100, 101]
    assert host["running_vms_unknown"] == []
    assert check_running(Host(open_tmp_path), 100).running is True


def test_an_unlistable_pid_directory_makes_every_vm_unknown(open_tmp_path: Path) -> None:
    write_tree(open_tmp_path, running_vms())
    (open_tmp_path / "var/run/qemu-server").chmod(DENY_DIR)

    def look() -> tuple[bool | None, bool | None, tuple[str, ...]]:
        scan = scan_pidfiles(Host(open_tmp_path))
        return (
            scan.check(100).running,
            check_pidfile(Host(open_tmp_path), 100).running,
            (scan.problems),
        )

    listed, single, problems = as_unprivileged(look)
    assert listed is None
    assert single is None
    assert problems == ("/var/run/qemu-server: not-permitted (Permission denied)",)


def test_a_reload_waits_for_vms_whose_state_is_unknown(open_tmp_path: Path) -> None:
    files = dict(SCENARIOS["intel-pve8-nested-off"][0])
    files["/var/run/qemu-server/100.pid"] = "4242\n"
    files["/proc/4242/cmdline"] = qemu_cmdline(100)
    write_tree(open_tmp_path, files)
    _pidfiles_0600(open_tmp_path)

    def plan() -> list[str]:
        # euid=0 plans as root would; the files are still read as nobody.
        report = change_report(Host(open_tmp_path, euid=0), "enable", dry_run=True)
        blockers = report.payload["change"]["reload_blockers"]
        assert isinstance(blockers, list)
        return blockers

    blockers = as_unprivileged(plan)
    assert any(b.startswith("whether VM 100 runs is unknown") for b in blockers)


def test_a_kernel_log_over_the_read_limit_is_read_from_its_end(tmp_path: Path) -> None:
    old_boot = "Nov  1 00:00:00 pve kernel: [    0.000000] Hypervisor detected: VMware\n"
    filler = "Nov  2 00:00:00 pve kernel: [   12.000000] e1000e: link up\n" * 160_000
    new_boot = "Nov 24 08:00:01 pve kernel: [    0.000000] Hypervisor detected: KVM   \n"
    files = dict(SCENARIOS["cloud-vm-without-nesting"][0])
    del files["/sys/class/dmi/id/sys_vendor"], files["/sys/class/dmi/id/product_name"]
    files["/var/log/kern.log"] = old_boot + filler + new_boot  # about 9 MiB: over the limit
    write_tree(tmp_path, files)
    log = probe_host(Host(tmp_path)).kernel_log
    assert log is not None
    assert log.hypervisor == "KVM"  # the running boot's line, at the end


def test_hypervisor_line_with_a_long_space_run() -> None:
    line = "kernel: Hypervisor detected:" + " " * 100_000 + "KVM" + " " * 100_000 + "x\n"
    assert scan_log(line, "dmesg").hypervisor == "KVM" + " " * 100_000 + "x"


def test_unknown_vms_do_not_change_the_host_verdict(open_tmp_path: Path) -> None:
    # Which VMs run matters for a reload, not for whether nesting is ready.
    files = dict(SCENARIOS["intel-nested-on"][0])
    files["/var/run/qemu-server/100.pid"] = "4242\n"
    files["/proc/4242/cmdline"] = qemu_cmdline(100)
    write_tree(open_tmp_path, files)
    _pidfiles_0600(open_tmp_path)
    body = as_unprivileged(lambda: host_json(open_tmp_path))
    assert body["verdict"] == "ready"
    assert body["host"]["running_vms"] is None  # type: ignore[index]
    [finding] = [f for f in body["findings"] if f["code"] == "host.vms.unknown"]  # type: ignore[index,union-attr]
    assert finding["severity"] == "warning"
