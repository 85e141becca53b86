"""Each fake host tree gives the facts, findings and exit code a user of that real host expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nestctl.host.probe import probe_host
from nestctl.host.report import host_report
from nestctl.machine import Host
from tests.helpers import write_tree
from tests.host.scenarios import SCENARIOS, build, proc_modules


def assert_subset(expected: dict[str, Any], actual: dict[str, Any], path: str = "host") -> None:
    for key, value in expected.items():
        assert key in actual, f"{path}.{key} missing"
        if isinstance(value, dict) and isinstance(actual[key], dict) and key != "vm_pids":
            assert_subset(value, actual[key], f"{path}.{key}")
        else:
            assert actual[key] == value, f"{path}.{key}: {actual[key]!r} != {value!r}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str, tmp_path: Path) -> None:
    _, expected, codes, exit_code = SCENARIOS[name]
    report = host_report(Host(build(tmp_path, name)))
    body = json.loads(json.dumps(report.to_json()))  # what --json prints
    assert_subset(expected, body["host"])
    found = {f["code"] for f in body["findings"]}
    assert codes <= found, f"missing {codes - found}; got {found}"
    assert report.exit_code == exit_code, body["findings"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_null_comes_with_a_finding(name: str, tmp_path: Path) -> None:
    body = host_report(Host(build(tmp_path, name))).to_json()
    host, nested = body["host"], body["host"]["nested"]
    nulls = [k for k in ("virt_flag", "kvm_module") if host[k] is None]
    nulls += [k for k in ("live", "after_reboot") if nested[k] is None]
    if nulls:
        assert any(f["severity"] in ("error", "warning") for f in body["findings"]), nulls


def test_scenarios_read_nothing_outside_the_root(tmp_path: Path) -> None:
    host = Host(build(tmp_path, "running-vms"))
    probe_host(host)
    assert host.manifest, "the probe records what it read"
    assert all(not e.target.startswith(str(tmp_path)) for e in host.manifest)
    assert not [e for e in host.manifest if e.kind == "run"], "no command on a non-live root"


def test_firmware_disabled_on_an_old_kernel_that_keeps_vmx(tmp_path: Path) -> None:
    """Before 5.6 vmx stays in cpuinfo; only kvm_intel refuses to load ("kvm: disabled by bios")."""
    files = dict(SCENARIOS["intel-nested-on"][0])
    for key in [k for k in files if k.startswith("/sys/module/kvm_intel") or k == "/dev/kvm"]:
        del files[key]
    files["/proc/sys/kernel/osrelease"] = "4.15.18-30-pve\n"
    files["/var/log/dmesg"] = "[    5.1] kvm: disabled by bios\n"

    report = host_report(Host(write_tree(tmp_path, files)))
    codes = {f.code for f in report.findings}
    assert "host.cpu.virt-disabled-in-firmware" in codes
    assert "host.kvm.module-not-loaded" not in codes
    assert report.payload["host"]["nested"]["decided_by"] == "kernel default (Linux < 4.20)"
    assert report.payload["host"]["nested"]["after_reboot"] is False


def test_bare_cpu_without_extensions_and_no_log(tmp_path: Path) -> None:
    files = dict(SCENARIOS["firmware-disabled-vt-x"][0])
    del files["/var/log/kern.log"]

    report = host_report(Host(write_tree(tmp_path, files)))
    [cpu] = [f for f in report.findings if f.code.startswith("host.cpu.")]
    assert cpu.code == "host.cpu.no-virt-extensions"
    assert "cannot be ruled out" in cpu.message


@pytest.mark.parametrize(
    ("raw", "live", "code", "exit_code"),
    [
        ("Y", True, None, 0),
        ("1", True, None, 0),
        ("N", False, "host.nested.off", 1),
        ("0", False, "host.nested.off", 1),
        ("maybe", None, "host.nested.unreadable", 2),
        ("", None, "host.nested.unreadable", 2),
    ],
)
def test_live_nested_values(
    raw: str, live: bool | None, code: str | None, exit_code: int, tmp_path: Path
) -> None:

    write_tree(tmp_path, SCENARIOS["intel-nested-on"][0])
    (tmp_path / "sys/module/kvm_intel/parameters/nested").write_text(raw + "\n")
    report = host_report(Host(tmp_path))
    assert report.payload["host"]["nested"]["live"] is live
    if code:
        assert code in {f.code for f in report.findings}
    assert report.exit_code == exit_code


def test_missing_proc_is_could_not_check(tmp_path: Path) -> None:
    report = host_report(Host(tmp_path))
    assert report.exit_code == 2
    assert [f.code for f in report.findings] == ["host.proc.unreadable"]
    assert report.payload["host"]["virt_flag"] is None


def test_fix_points_at_the_kernel_command_line_where_it_rules(tmp_path: Path) -> None:
    build(tmp_path, "kernel-cmdline-override")
    [off] = [f for f in host_report(Host(tmp_path)).findings if f.code == "host.nested.off"]
    assert off.fix is not None
    assert off.fix.startswith("set kvm_intel.nested=Y on the kernel command line")


def test_builtin_module_fix_is_the_kernel_command_line(tmp_path: Path) -> None:
    build(tmp_path, "intel-pve8-nested-off")
    (tmp_path / "sys/module/kvm_intel/initstate").unlink()
    (tmp_path / "sys/module/kvm_intel/refcnt").unlink()
    (tmp_path / "proc/modules").write_text(proc_modules("kvm"))
    report = host_report(Host(tmp_path))
    codes = {f.code: f for f in report.findings}
    assert "host.kvm.builtin" in codes
    # modprobe.d does not apply to a built-in module: the file saying nested=0 does not count.
    assert report.payload["host"]["nested"]["decided_by"] == "kernel default (Linux >= 4.20)"
    assert codes["host.nested.off"].fix == "reboot (kvm_intel is built in and cannot be reloaded)"
    # With nothing to wait for, the only lasting way is the kernel command line.
    (tmp_path / "proc/sys/kernel/osrelease").write_text("4.19.0-27-amd64\n")
    fix = {f.code: f for f in host_report(Host(tmp_path)).findings}["host.nested.off"].fix
    assert fix is not None
    assert fix.startswith(
        "kvm_intel is built in: add kvm_intel.nested=Y to the kernel command line"
    )


def test_dev_vm_reports_the_module_that_is_there(tmp_path: Path) -> None:
    """A microVM with /dev/kvm from a built-in kvm_pvm: report it as it is, guess nothing."""
    host = host_report(Host(build(tmp_path, "dev-vm-kvm-pvm"))).payload["host"]
    assert (host["kvm_module"], host["kvm_module_builtin"], host["refcount"]) == (
        "kvm_pvm",
        True,
        None,
    )
    assert host["performance"] == {}
