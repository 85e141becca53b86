"""Windows guest probes: commands run through `Machine.run`, and parsers for what Windows prints.

The same probes run inside the guest (Python for Windows, `Host("/")`) and from the host through the
QEMU guest agent's guest-exec. What they print is parsed as Windows really prints it
(reference: shared/reference/windows-guest.md):
* wsl.exe writes UTF-16LE to a pipe, lines may end "\\r\\r\\n" (§6): decoded by sniffing NULs;
* Windows PowerShell 5.1's ConvertTo-Json writes enums as numbers (§4): mapped back to names;
* labels are localized (§4, §5): only invariant names and codes are matched, never prose.
PowerShell scripts go in with -EncodedCommand (UTF-16LE base64), so no argv quoting can break them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any

from nestctl.guest.facts import GuestFacts, WindowsFacts
from nestctl.machine import CommandResult, CommandStatus, Machine
from nestctl.parse import parse_uint

#: Optional features that decide Hyper-V, WSL2 and Docker Desktop (§4 "Feature names in scope").
FEATURES = (
    "Microsoft-Hyper-V-All",
    "Microsoft-Hyper-V",
    "Microsoft-Hyper-V-Hypervisor",
    "VirtualMachinePlatform",
    "Microsoft-Windows-Subsystem-Linux",
    "HypervisorPlatform",
    "Containers",
)
#: Windows PowerShell 5.1 ConvertTo-Json writes FeatureState as a number (§4 "Numeric values").
FEATURE_STATES = {
    0: "Disabled",
    1: "DisablePending",
    2: "Enabled",
    3: "EnablePending",
    4: "Superseded",
    5: "PartiallyInstalled",
    6: "DisabledWithPayloadRemoved",
}
#: System.ServiceProcess.ServiceControllerStatus, should a status come back as a number.
SERVICE_STATES = {
    1: "Stopped",
    2: "StartPending",
    3: "StopPending",
    4: "Running",
    5: "ContinuePending",
    6: "PausePending",
    7: "Paused",
}
SERVICES = ("vmms", "vmcompute")
#: HCS HRESULTs and their names (§6 "HCS codes"); WSL prints either.
HCS_CODES = {
    "0x80370102": "HCS_E_HYPERV_NOT_INSTALLED",
    "0x80370114": "HCS_E_SERVICE_NOT_AVAILABLE",
}
#: Event IDs of source Microsoft-Windows-Hyper-V-Hypervisor whose meaning the reference verifies.
EVENT_LAUNCH_DISABLED = 5  # "Hyper-V launch aborted due to auto-launch being disabled ..."

_PS_PREFIX = (
    "$ProgressPreference='SilentlyContinue'\n"
    "try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch {}\n"
)
PS_FEATURES = (
    "$names = " + ",".join(f"'{n}'" for n in FEATURES) + "\n"
    "Get-WindowsOptionalFeature -Online -ErrorAction Stop |"
    " Where-Object { $names -contains $_.FeatureName } |"
    " Format-Table -AutoSize FeatureName,State | Out-String -Width 250\n"
)
PS_SERVICES = (
    "Get-Service -Name " + ",".join(SERVICES) + " -ErrorAction SilentlyContinue |"
    " ForEach-Object { '{0} {1}' -f $_.Name, $_.Status }\n"
)
PS_EVENTS = (
    "Get-WinEvent -FilterHashtable @{LogName='System';"
    "ProviderName='Microsoft-Windows-Hyper-V-Hypervisor'} -MaxEvents 20"
    " -ErrorAction SilentlyContinue | ForEach-Object { $_.Id }\n"
)
PS_RUNNING_VMS = (
    "Get-VM -ErrorAction SilentlyContinue | Where-Object { $_.State -eq 'Running' } |"
    " ForEach-Object { $_.Name }\n"
)
PS_HINTS = (
    "$cs = Get-CimInstance Win32_ComputerSystem\n"
    "$p = @(Get-CimInstance Win32_Processor)[0]\n"
    "$os = Get-CimInstance Win32_OperatingSystem\n"
    "$me = [Security.Principal.WindowsPrincipal]"
    "[Security.Principal.WindowsIdentity]::GetCurrent()\n"
    "[pscustomobject]@{HypervisorPresent=$cs.HypervisorPresent; Manufacturer=$cs.Manufacturer;"
    " Model=$cs.Model; ProcessorName=$p.Name; ProcessorManufacturer=$p.Manufacturer;"
    " VMMonitorModeExtensions=$p.VMMonitorModeExtensions;"
    " VirtualizationFirmwareEnabled=$p.VirtualizationFirmwareEnabled;"
    " SecondLevelAddressTranslationExtensions=$p.SecondLevelAddressTranslationExtensions;"
    " BuildNumber=$os.BuildNumber; ProductType=$os.ProductType;"
    " IsAdmin=$me.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)}"
    " | ConvertTo-Json\n"
)
#: bcdedit called directly, not through PowerShell, where an unquoted {current} is a script block.
BCDEDIT = ("bcdedit.exe", "/enum", "{current}")
WSL_STATUS = ("wsl.exe", "--status")
WSL_LIST = ("wsl.exe", "--list", "--verbose")
WSL_TRY = ("wsl.exe", "--exec", "true")


def powershell_argv(script: str) -> tuple[str, ...]:
    """Windows PowerShell 5.1 running `script`, passed as -EncodedCommand (UTF-16LE base64)."""
    encoded = base64.b64encode((_PS_PREFIX + script).encode("utf-16-le")).decode("ascii")
    return ("powershell.exe", "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded)


def decode_script(argv: Sequence[str]) -> str | None:
    """The script inside a `powershell_argv` command line (for logs and fakes), else None."""
    if len(argv) >= 2 and argv[-2] == "-EncodedCommand":
        try:
            text = base64.b64decode(argv[-1], validate=True).decode("utf-16-le")
        except ValueError:
            return None
        return text.removeprefix(_PS_PREFIX)
    return None


# -- decoding --------------------------------------------------------------------------------


def decode_output(data: bytes | str) -> str:
    """Text of a Windows program's output: UTF-16LE (wsl.exe on a pipe) or UTF-8/ANSI.

    Accepts bytes (as read from a pipe) or text already decoded as UTF-8 by whoever ran the command,
    in which case UTF-16LE shows as NUL-separated characters. Line ends become "\\n".
    """
    if isinstance(data, bytes):
        if data.startswith(b"\xff\xfe"):
            text = data[2:].decode("utf-16-le", errors="replace")
        elif _looks_utf16le(data):
            text = data.decode("utf-16-le", errors="replace")
        else:
            text = data.decode("utf-8", errors="replace")
    else:
        text = data.removeprefix("\ufeff")
        if "\x00" in text:
            text = text.replace("\x00", "").removeprefix("\ufffd\ufffd")
    text = text.removeprefix("\ufeff")
    return re.sub(r"\r+\n|\r", "\n", text)


def _looks_utf16le(data: bytes) -> bool:
    """ASCII-heavy UTF-16LE has NULs in most odd positions; UTF-8 text has none."""
    odd = data[1::2]
    return len(odd) > 0 and odd.count(0) >= len(odd) // 2 and data[0::2].count(0) < len(odd) // 2


# -- parsers ---------------------------------------------------------------------------------


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _state_name(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return FEATURE_STATES.get(value, f"unknown({value})")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_features(text: str) -> dict[str, str]:
    """FeatureName -> state name from Get-WindowsOptionalFeature output.

    Accepts ConvertTo-Json (object or array, State as number or name), the list view
    ("FeatureName : X" / "State : Enabled") and the table view (§4). FeatureName and State are
    not localized; DisplayName and Description are, and are ignored.
    """
    text = decode_output(text)
    data = _json(text.strip()) if text.strip()[:1] in ("{", "[") else None
    if data is not None:
        items = data if isinstance(data, list) else [data]
        found: dict[str, str] = {}
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("FeatureName"), str):
                state = _state_name(item.get("StateName", item.get("State")))
                if state is not None:
                    found[item["FeatureName"]] = state
        return found
    return _parse_feature_text(text)


_STATE_WORDS = {s.lower(): s for s in FEATURE_STATES.values()}


def _parse_feature_text(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("FeatureName", "State") and line[:1] != " ":
            if key.strip() == "FeatureName":
                current = value.strip() or None
            elif current is not None and value.strip():
                found[current] = _STATE_WORDS.get(value.strip().lower(), value.strip())
                current = None
            continue
        fields = line.split()
        if len(fields) == 2 and fields[1].lower() in _STATE_WORDS and fields[0] != "FeatureName":
            found[fields[0]] = _STATE_WORDS[fields[1].lower()]
    return found


_LAUNCHTYPE = re.compile(
    r"^hypervisorlaunchtype[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE | re.ASCII
)


def parse_bcdedit(text: str) -> str:
    """The hypervisorlaunchtype value ("Auto", "Off"), or "" when {current} does not set it.

    Element names and values stay English on localized Windows; headers do not (§5).
    """
    match = _LAUNCHTYPE.search(decode_output(text))
    return match.group(1) if match else ""


def parse_services(text: str) -> dict[str, str]:
    """Service name -> status from lines "vmms Running" (status as name or number)."""
    found: dict[str, str] = {}
    for line in decode_output(text).splitlines():
        fields = line.split()
        if len(fields) != 2 or fields[0].lower() not in SERVICES:
            continue
        status = fields[1]
        number = parse_uint(status)
        if number is not None:
            status = SERVICE_STATES.get(number, f"unknown({status})")
        found[fields[0].lower()] = status
    return found


def parse_event_ids(text: str) -> tuple[int, ...]:
    """Event IDs, one per line, newest first (as Get-WinEvent returns them)."""
    ids = (parse_uint(s, max_digits=6) for s in decode_output(text).split())
    return tuple(i for i in ids if i is not None)


def parse_lines(text: str) -> tuple[str, ...]:
    """Non-empty lines, stripped (names printed one per line)."""
    return tuple(ln.strip() for ln in decode_output(text).splitlines() if ln.strip())


_HRESULT = re.compile(r"\b0x8[0-9a-f]{7}\b", re.IGNORECASE | re.ASCII)
_WSL_ERROR_NAME = re.compile(r"\b((?:HCS|WSL)_E_[A-Z0-9_]+)\b", re.ASCII)


def is_virtualization_error(code: str) -> bool:
    """HCS errors (facility 0x37, HCS_E_*): the VM behind WSL2 could not be created."""
    return code.startswith(("0x8037", "HCS_E_"))


def find_wsl_errors(text: str) -> tuple[str, ...]:
    """Error codes in WSL's output, as "0x80370102" and/or "HCS_E_..." names, in order seen.

    Codes, not prose: the message text comes in three generations and is localized (§6).
    """
    text = decode_output(text)
    codes: list[str] = []
    for match in _HRESULT.finditer(text):
        code = "0x" + match.group(0)[2:].lower()
        codes.append(code)
        if code in HCS_CODES:
            codes.append(HCS_CODES[code])
    codes.extend(m.group(1) for m in _WSL_ERROR_NAME.finditer(text))
    return tuple(dict.fromkeys(codes))


def parse_wsl_status(text: str) -> int | None:
    """The "Default Version" from `wsl --status` (a localized label; the value is the digit)."""
    for line in decode_output(text).splitlines():
        if line.strip().lower().startswith("default version:"):
            value = line.partition(":")[2].strip()
            return parse_uint(value)
    return None


_WSL_STATES = ("Running", "Stopped", "Installing", "Uninstalling", "Converting", "Exporting")


def parse_wsl_list(text: str) -> tuple[tuple[str, str, int | None], ...]:
    """(name, state, version) rows of `wsl -l -v` (headers and states are hard-coded English)."""
    rows: list[tuple[str, str, int | None]] = []
    for line in decode_output(text).splitlines():
        fields = (
            line.replace("*", " ", 1).split() if line.lstrip().startswith("*") else line.split()
        )
        if len(fields) < 3 or fields[-2] not in _WSL_STATES:
            continue
        version = parse_uint(fields[-1])
        rows.append((" ".join(fields[:-2]), fields[-2], version))
    return tuple(rows)


def parse_hints(text: str) -> dict[str, object]:
    """The Win32_* hint object (PS 5.1 ConvertTo-Json; an array when there are several)."""
    data = _json(decode_output(text).strip())
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and not isinstance(v, dict | list)}


# -- the probe -------------------------------------------------------------------------------


def _why(result: CommandResult) -> str:
    first = next((ln for ln in decode_output(result.stderr).splitlines() if ln.strip()), "")
    text = result.describe().splitlines()[0]
    return f"{text}: {first.strip()}" if first else text


def _run(machine: Machine, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
    return machine.run(list(argv), timeout=timeout)


def _probe_features(machine: Machine) -> tuple[dict[str, str] | None, str | None]:
    result = _run(machine, powershell_argv(PS_FEATURES), timeout=180.0)
    if not result.ok:
        return None, _why(result)
    return parse_features(result.stdout), None


def _probe_bcdedit(machine: Machine) -> tuple[str | None, str | None]:
    result = _run(machine, BCDEDIT)
    if not result.ok:  # not elevated: "The boot configuration data store could not be opened."
        return None, _why(result) if result.stderr.strip() else _why_stdout(result)
    return parse_bcdedit(result.stdout), None


def _why_stdout(result: CommandResult) -> str:
    first = next((ln for ln in decode_output(result.stdout).splitlines() if ln.strip()), "")
    text = result.describe().splitlines()[0]
    return f"{text}: {first.strip()}" if first else text


def _probe_wsl(
    machine: Machine, try_start: bool
) -> tuple[bool | None, int | None, tuple[tuple[str, str, int | None], ...], tuple[str, ...]]:
    status = _run(machine, WSL_STATUS)
    if status.status is CommandStatus.NOT_FOUND:
        return False, None, (), ()
    outputs = [status.stdout + "\n" + status.stderr]
    listing = _run(machine, WSL_LIST)
    outputs.append(listing.stdout + "\n" + listing.stderr)
    if try_start:
        trial = _run(machine, WSL_TRY, timeout=120.0)
        outputs.append(trial.stdout + "\n" + trial.stderr)
    default = parse_wsl_status(status.stdout)
    distros = parse_wsl_list(listing.stdout) if listing.ok else ()
    errors = find_wsl_errors("\n".join(outputs))
    # wsl.exe answering in a language we do not parse is not "not installed": leave it None.
    installed = True if (default is not None or distros) else None
    return installed, default, distros, errors


def probe_windows(machine: Machine, *, try_wsl: bool = False) -> GuestFacts:
    """Run the Windows probes through `machine`. `try_wsl` starts the default WSL distro once
    (`wsl.exe --exec true`) to see WSL2's real error code; off by default (it boots a VM)."""
    features, features_problem = _probe_features(machine)
    launchtype, bcd_problem = _probe_bcdedit(machine)
    services_run = _run(machine, powershell_argv(PS_SERVICES))
    events_run = _run(machine, powershell_argv(PS_EVENTS))
    vms_run = _run(machine, powershell_argv(PS_RUNNING_VMS))
    hints_run = _run(machine, powershell_argv(PS_HINTS))
    installed, default, distros, errors = _probe_wsl(machine, try_wsl)
    hints = parse_hints(hints_run.stdout) if hints_run.ok else {}
    admin = hints.get("IsAdmin")
    facts = WindowsFacts(
        features=features,
        features_problem=features_problem,
        launchtype=launchtype,
        bcdedit_problem=bcd_problem,
        services=parse_services(services_run.stdout) if services_run.ok else None,
        hypervisor_events=parse_event_ids(events_run.stdout) if events_run.ok else None,
        running_vms=parse_lines(vms_run.stdout) if vms_run.ok else None,
        wsl_installed=installed,
        wsl_default_version=default,
        wsl_distros=distros,
        wsl_errors=errors,
        hints={k: v for k, v in hints.items() if k != "IsAdmin"},
        is_admin=admin if isinstance(admin, bool) else None,
    )
    return GuestFacts(os="windows", windows=facts)
