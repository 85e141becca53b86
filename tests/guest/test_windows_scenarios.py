"""Windows guests end to end through `probe_windows` and the rules, with recorded outputs.

Each scenario answers the probes' real command lines with outputs taken from the captures in
shared/reference/windows-guest.md (tests/data/windows, provenance on each file's first line).
"""

from __future__ import annotations

from nestctl.findings import Verdict, verdict_for
from nestctl.guest import windows as win
from nestctl.guest.facts import HostSide
from nestctl.guest.report import guest_json, guest_report
from nestctl.guest.rules import guest_findings
from tests.guest.windows_fake import Answer, FakeWindows, wire

FEATURES = win.powershell_argv(win.PS_FEATURES)
QGA_MINUS_ONE = 4294967295  # wsl.exe exits -1; Windows reports it as an unsigned DWORD


def _utf16(name: str) -> bytes:
    return wire(name, "utf-16-le")


def _judge(machine: FakeWindows, hs: HostSide | None = None, *, try_wsl: bool = False):  # type: ignore[no-untyped-def]
    facts = win.probe_windows(machine, try_wsl=try_wsl)
    found = guest_findings(facts, hs)
    return facts, found, {f.code: f for f in found}, guest_json(facts, found, hs)


def test_ready_wsl2_distribution_running() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-table.txt")),
            win.BCDEDIT: Answer(0, wire("bcdedit-ja-JP.txt", "cp932")),
            win.WSL_STATUS: Answer(0, _utf16("wsl-status.txt")),
            win.WSL_LIST: Answer(0, _utf16("wsl-list.txt")),
        }
    )
    facts, found, codes, obj = _judge(machine)
    assert facts.windows is not None
    assert facts.windows.features == {
        "VirtualMachinePlatform": "Enabled",
        "Microsoft-Hyper-V-All": "Enabled",
        "Containers-DisposableClientVM": "Disabled",
    }
    assert facts.windows.launchtype == "Auto"
    assert facts.windows.wsl_default_version == 2
    assert facts.windows.wsl_distros == (
        ("Ubuntu", "Running", 2),
        ("docker-desktop", "Stopped", 2),
    )
    assert verdict_for(found) is Verdict.READY
    assert obj["kvm_usable"] is True
    assert (obj["os"], obj["dev_kvm"], obj["virt_flag"]) == ("windows", False, None)
    verdicts = obj["windows"]["verdicts"]
    assert verdicts["wsl2"] == {
        "status": "ready",
        "reason": "a WSL2 distribution is running",
        "rests_on": ["guest outcome"],
    }
    # vmms was not recorded: Hyper-V stays unknown, and says so without failing the guest.
    assert verdicts["hyperv"]["status"] == "unknown"
    assert "guest.windows.hyperv.unknown" in codes
    assert not codes["guest.windows.hyperv.unknown"].undetermined
    assert verdicts["docker_desktop"]["status"] == "ready"
    assert "unsupported here" in verdicts["docker_desktop"]["reason"]


def test_requirements_met_but_features_off() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-table-off.txt")),
            win.WSL_STATUS: Answer(0, _utf16("wsl-status.txt")),
        }
    )
    hs = HostSide(vmid=104, running_cpu="host", exposes_virt=True, host_nested=True)
    _facts, found, codes, obj = _judge(machine, hs)
    assert verdict_for(found) is Verdict.NOT_READY
    hyperv = codes["guest.windows.hyperv.not-enabled"]
    assert "-cpu host, which exposes vmx/svm" in hyperv.message
    assert "rests on: host side, guest outcome" in hyperv.message
    assert hyperv.fix is not None
    assert "Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-All" in hyperv.fix
    wsl = codes["guest.windows.wsl2.not-enabled"]
    assert "wsl.exe --install --no-distribution" in (wsl.fix or "")
    assert obj["kvm_usable"] is False
    assert obj["windows"]["verdicts"]["docker_desktop"]["status"] == "not-enabled"


def test_features_off_without_host_side_says_what_cannot_be_told() -> None:
    machine = FakeWindows({FEATURES: Answer(0, wire("features-table-off.txt"))})
    _facts, _found, codes, _obj = _judge(machine)
    assert "cannot be told from inside Windows" in codes["guest.windows.hyperv.not-enabled"].message
    assert codes["guest.windows.host-side-unknown"].fix == (
        "on the Proxmox host: nestctl vm <vmid> --guest"
    )


def test_hyperv_enabled_but_hypervisor_launch_off() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-table.txt")),
            win.BCDEDIT: Answer(0, wire("bcdedit-off.txt")),
        }
    )
    _facts, found, codes, obj = _judge(machine)
    assert verdict_for(found) is Verdict.NOT_READY
    finding = codes["guest.windows.hyperv.not-ready"]
    assert "hypervisorlaunchtype is Off" in finding.message
    assert finding.fix == (
        "in Windows (admin): bcdedit /set hypervisorlaunchtype Auto, then restart Windows"
    )
    assert obj["windows"]["verdicts"]["wsl2"]["status"] == "not-ready"  # same hypervisor
    assert obj["windows"]["hypervisorlaunchtype"] == "Off"


def test_hyperv_enabled_but_launch_aborted_event() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-table.txt")),
            win.BCDEDIT: Answer(0, wire("bcdedit-ja-JP.txt", "cp932")),
            win.powershell_argv(win.PS_EVENTS): Answer(0, wire("events-launch-aborted.txt")),
        }
    )
    _facts, _found, codes, obj = _judge(machine)
    assert "event ID 5" in codes["guest.windows.hyperv.not-ready"].message
    assert obj["windows"]["hypervisor_events"] == [5]


def test_wsl2_fails_with_0x80370102() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-list-vmp.txt")),
            win.WSL_STATUS: Answer(0, _utf16("wsl-status.txt")),
            win.WSL_TRY: Answer(QGA_MINUS_ONE, _utf16("wsl-error-0x80370102.txt")),
        }
    )
    facts, found, codes, obj = _judge(machine, try_wsl=True)
    assert win.WSL_TRY in machine.ran
    assert facts.windows is not None
    assert facts.windows.wsl_errors == ("0x80370102", "HCS_E_HYPERV_NOT_INSTALLED")
    finding = codes["guest.windows.wsl2.not-ready"]
    assert "0x80370102 (HCS_E_HYPERV_NOT_INSTALLED)" in finding.message
    assert "qm set <vmid> --cpu host" in (finding.fix or "")
    assert verdict_for(found) is Verdict.NOT_READY
    assert obj["windows"]["wsl"]["errors"] == ["0x80370102", "HCS_E_HYPERV_NOT_INSTALLED"]


def test_wsl2_failure_with_host_side_names_the_vm_cpu() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-list-vmp.txt")),
            win.WSL_TRY: Answer(QGA_MINUS_ONE, _utf16("wsl-error-0x80370102.txt")),
        }
    )
    hs = HostSide(vmid=104, running_cpu="kvm64", exposes_virt=False, host_nested=True)
    _facts, _found, codes, obj = _judge(machine, hs, try_wsl=True)
    assert codes["guest.vm.cpu-no-virt"].fix == (
        "on the Proxmox host: qm set 104 --cpu host, then qm reboot 104"
    )
    assert obj["windows"]["verdicts"]["wsl2"]["rests_on"] == ["host side"]


def test_wsl_is_not_started_unless_asked() -> None:
    machine = FakeWindows({})
    win.probe_windows(machine)
    assert win.WSL_TRY not in machine.ran


def test_non_english_windows() -> None:
    # French feature names stay English; ja-JP bcdedit arrives in CP932 and its header garbles,
    # but the invariant element name and value do not.
    machine = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-list-vmp-fr.txt")),
            win.BCDEDIT: Answer(0, wire("bcdedit-ja-JP.txt", "cp932")),
        }
    )
    hs = HostSide(vmid=104, running_cpu="host", exposes_virt=True, host_nested=True)
    facts, found, _codes, obj = _judge(machine, hs)
    assert facts.windows is not None
    assert facts.windows.features == {"VirtualMachinePlatform": "Enabled"}
    assert facts.windows.launchtype == "Auto"
    wsl2 = obj["windows"]["verdicts"]["wsl2"]
    assert wsl2["status"] == "ready"
    assert wsl2["rests_on"] == ["host side", "guest outcome"]
    assert obj["windows"]["verdicts"]["hyperv"]["status"] == "not-enabled"
    assert verdict_for(found) is Verdict.READY


def test_not_elevated_is_could_not_check() -> None:
    machine = FakeWindows(
        {
            FEATURES: Answer(1, b"", wire("features-not-elevated.stderr.txt")),
            win.BCDEDIT: Answer(1, wire("bcdedit-not-admin-zh-CN.txt", "gbk")),
        }
    )
    facts, found, codes, obj = _judge(machine)
    assert facts.windows is not None
    assert facts.windows.features is None
    assert facts.windows.features_problem is not None
    assert "requires elevation" in facts.windows.features_problem
    assert facts.windows.launchtype is None
    assert verdict_for(found) is Verdict.UNKNOWN
    assert codes["guest.windows.hyperv.unknown"].undetermined
    assert obj["windows"]["features"] is None


def test_guest_report_windows_exit_codes() -> None:
    ready = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-table.txt")),
            win.WSL_LIST: Answer(0, _utf16("wsl-list.txt")),
        }
    )
    assert guest_report(ready, os="windows").exit_code == 0
    broken = FakeWindows(
        {
            FEATURES: Answer(0, wire("features-table.txt")),
            win.BCDEDIT: Answer(0, wire("bcdedit-off.txt")),
        }
    )
    report = guest_report(broken, os="windows")
    assert report.exit_code == 1
    assert report.to_json()["guest"]["os"] == "windows"
    assert guest_report(FakeWindows({}), os="windows").exit_code == 2


HYPERV_ON = {
    FEATURES: Answer(0, wire("features-table.txt")),
    win.BCDEDIT: Answer(0, wire("bcdedit-ja-JP.txt", "cp932")),
}


def test_hyperv_proven_by_a_running_vm() -> None:
    # Get-VM names, one per line (PS_RUNNING_VMS); a running VM proves the hypervisor launched.
    machine = FakeWindows(
        {**HYPERV_ON, win.powershell_argv(win.PS_RUNNING_VMS): Answer(0, b"lab1\r\n")}
    )
    _facts, found, _codes, obj = _judge(machine)
    assert obj["windows"]["verdicts"]["hyperv"] == {
        "status": "ready",
        "reason": "Hyper-V VMs are running: lab1",
        "rests_on": ["guest outcome"],
    }
    assert verdict_for(found) is Verdict.READY


def test_hyperv_enabled_with_vmms_stopped_is_not_ready() -> None:
    services = win.powershell_argv(win.PS_SERVICES)
    machine = FakeWindows(
        {**HYPERV_ON, services: Answer(0, b"vmcompute Running\r\nvmms Stopped\r\n")}
    )
    _facts, _found, codes, _obj = _judge(machine)
    assert "vmms service is Stopped" in codes["guest.windows.hyperv.not-ready"].message


def test_vmms_running_alone_proves_nothing_but_the_host_side_does() -> None:
    services = win.powershell_argv(win.PS_SERVICES)
    machine = FakeWindows({**HYPERV_ON, services: Answer(0, b"vmms Running\r\n")})
    _facts, _found, _codes, obj = _judge(machine)
    assert obj["windows"]["verdicts"]["hyperv"]["status"] == "unknown"
    hs = HostSide(vmid=104, running_cpu="host", exposes_virt=True, host_nested=True)
    _facts, _found, _codes, obj = _judge(machine, hs)
    assert obj["windows"]["verdicts"]["hyperv"]["status"] == "ready"
    assert obj["windows"]["verdicts"]["hyperv"]["rests_on"] == ["host side", "guest outcome"]


def test_windows_l2_guest_is_warned_and_named_by_its_firmware() -> None:
    hints = win.powershell_argv(win.PS_HINTS)
    # §1/§3 PS 5.1 JSON shape; "QEMU" is what SMBIOS names a Proxmox VM's manufacturer.
    machine = FakeWindows(
        {
            hints: Answer(
                0, b'{\r\n    "HypervisorPresent":  true,\r\n    "Manufacturer":  "QEMU"\r\n}'
            )
        }
    )
    _facts, _found, codes, obj = _judge(machine, HostSide(vmid=104, parent_level=1))
    assert (obj["hypervisor"], obj["level"], obj["accel"]) == ("QEMU", 2, "unknown")
    assert "guest.level.deep" in codes
