"""Parsers of what Windows prints: encodings, localized labels, PS 5.1 JSON, fuzzed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.guest import windows as win
from nestctl.guest.report import guest_json
from nestctl.guest.rules import guest_findings
from tests.guest.windows_fake import Answer, FakeWindows, recorded, wire


def test_utf16le_from_a_pipe_is_decoded_as_bytes_or_as_utf8_text() -> None:
    raw = wire("wsl-status.txt", "utf-16-le")
    assert b"\x00" in raw
    expected = "Default Distribution: openSUSE-Tumbleweed\nDefault Version: 2\n"
    assert win.decode_output(raw) == expected
    # What Machine.run hands over: the same bytes decoded as UTF-8 (NULs kept).
    assert win.decode_output(raw.decode("utf-8", errors="replace")) == expected
    assert win.decode_output(b"\xff\xfe" + raw) == expected


def test_wsl_double_carriage_returns() -> None:
    # tailscale/tailscale#3170 (§6): lines end \r\x00\r\x00\n\x00 on the pipe.
    raw = wire("wsl-list.txt", "utf-16-le", newline="\r\r\n")
    assert b"\r\x00\r\x00\n\x00" in raw
    assert win.parse_wsl_list(raw.decode("utf-8", errors="replace")) == (
        ("Ubuntu", "Running", 2),
        ("docker-desktop", "Stopped", 2),
    )


def test_utf8_text_is_left_alone() -> None:
    assert win.decode_output("État : Activé\r\n".encode()) == "État : Activé\n"


def test_feature_views() -> None:
    assert win.parse_features(recorded("features-list-vmp.txt")) == {
        "VirtualMachinePlatform": "Enabled"
    }
    assert win.parse_features(recorded("features-table-off.txt"))["Microsoft-Hyper-V-All"] == (
        "Disabled"
    )


def test_feature_json_with_numeric_states() -> None:
    # Windows PowerShell 5.1 shape: enums as numbers (§4 mapping), "key":  value spacing (§1).
    text = (
        '[\n    {\n        "FeatureName":  "VirtualMachinePlatform",\n        "State":  2\n'
        '    },\n    {\n        "FeatureName":  "Microsoft-Hyper-V-All",\n'
        '        "State":  0\n    }\n]'
    )
    assert win.parse_features(text) == {
        "VirtualMachinePlatform": "Enabled",
        "Microsoft-Hyper-V-All": "Disabled",
    }
    single = '{"FeatureName":  "HypervisorPlatform", "State":  3}'
    assert win.parse_features(single) == {"HypervisorPlatform": "EnablePending"}
    assert win.parse_features('{"FeatureName": "X", "State": 9}') == {"X": "unknown(9)"}


def test_bcdedit_values() -> None:
    assert win.parse_bcdedit(recorded("bcdedit-ja-JP.txt")) == "Auto"
    assert win.parse_bcdedit(recorded("bcdedit-off.txt")) == "Off"
    assert win.parse_bcdedit("identifier              {current}\r\nnx  OptIn\r\n") == ""


def test_wsl_error_codes_of_every_generation() -> None:
    hcs = ("0x80370102", "HCS_E_HYPERV_NOT_INSTALLED")
    assert win.find_wsl_errors(recorded("wsl-register-0x80370102.txt")) == hcs
    assert win.find_wsl_errors(recorded("wsl-error-0x80370102.txt")) == hcs
    assert win.find_wsl_errors(recorded("wsl-gen2-hcs.txt")) == ("HCS_E_HYPERV_NOT_INSTALLED",)
    assert win.find_wsl_errors(recorded("wsl-gen3-hcs.txt")) == ("HCS_E_HYPERV_NOT_INSTALLED",)
    assert win.find_wsl_errors("allowedinmemorysettings 0x15000075") == ()  # not an HRESULT
    assert win.find_wsl_errors(recorded("wsl-status.txt")) == ()
    assert win.is_virtualization_error("0x80370114")
    assert win.is_virtualization_error("HCS_E_SERVICE_NOT_AVAILABLE")
    assert not win.is_virtualization_error("0x80070005")  # E_ACCESSDENIED: not about the VM


def test_services_events_and_hints() -> None:
    assert win.parse_services("vmms Running\r\nvmcompute 1\r\nother Running\r\n") == {
        "vmms": "Running",
        "vmcompute": "Stopped",
    }
    assert win.parse_event_ids("5\r\n1\r\n") == (5, 1)
    # §1/§3: PS 5.1 ConvertTo-Json spacing; booleans and nulls; one bare object per socket.
    hints = win.parse_hints(
        '{\n    "HypervisorPresent":  true,\n    "VirtualizationFirmwareEnabled":  false,\n'
        '    "VMMonitorModeExtensions":  null,\n    "Manufacturer":  "QEMU"\n}'
    )
    assert hints == {
        "HypervisorPresent": True,
        "VirtualizationFirmwareEnabled": False,
        "VMMonitorModeExtensions": None,
        "Manufacturer": "QEMU",
    }
    assert win.parse_hints('[{"HypervisorPresent":  true}, {"HypervisorPresent":  true}]') == {
        "HypervisorPresent": True
    }


def test_powershell_scripts_travel_encoded() -> None:
    argv = win.powershell_argv(win.PS_FEATURES)
    assert argv[:4] == ("powershell.exe", "-NoProfile", "-NonInteractive", "-EncodedCommand")
    assert win.decode_script(argv) == win.PS_FEATURES
    assert "'{current}'" not in " ".join(win.BCDEDIT)  # no shell: bcdedit gets {current} as is


text_or_bytes = st.one_of(st.text(max_size=400), st.binary(max_size=400))


@settings(max_examples=300, deadline=None)
@given(text_or_bytes)
def test_parsers_never_raise(data: str | bytes) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    win.decode_output(data)
    assert isinstance(win.parse_features(text), dict)
    assert isinstance(win.parse_bcdedit(text), str)
    win.parse_services(text)
    win.parse_event_ids(text)
    win.find_wsl_errors(text)
    win.parse_wsl_status(text)
    win.parse_wsl_list(text)
    win.parse_hints(text)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-1, 2**32), text_or_bytes, text_or_bytes), min_size=9, max_size=9
    )
)
def test_probe_never_raises_on_arbitrary_answers(outs: list[tuple[int, object, object]]) -> None:
    commands = [
        win.powershell_argv(win.PS_FEATURES),
        win.BCDEDIT,
        win.powershell_argv(win.PS_SERVICES),
        win.powershell_argv(win.PS_EVENTS),
        win.powershell_argv(win.PS_HINTS),
        win.powershell_argv(win.PS_RUNNING_VMS),
        win.WSL_STATUS,
        win.WSL_LIST,
        win.WSL_TRY,
    ]

    def raw(value: object) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")

    answers = {
        c: Answer(rc, raw(out), raw(err)) for c, (rc, out, err) in zip(commands, outs, strict=True)
    }
    facts = win.probe_windows(FakeWindows(answers), try_wsl=True)
    obj = guest_json(facts, guest_findings(facts))
    assert {"os", "virt_flag", "dev_kvm", "kvm_usable", "accel", "level"} <= set(obj)
