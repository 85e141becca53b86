"""Proxmox's own outputs: every case in ../shared/conformance must match byte for byte.

- pve-cfg2cmd/X.conf + X.conf.cmd (qemu-server's cfg2cmd suite): the `-cpu` argument exactly as
  quoted in the .cmd file, and the `-machine type=` value.
- pve-cfg2cmd/X.conf without .cmd: the EXPECT_ERROR message, where the error is one nestctl
  models (CPU, machine, QEMU version); storage/USB/drive errors are skipped with the reason.
- pve-derived-cpu-cases.json: value or error, the lines Proxmox prints and its warnings.

The data stays in ../shared (never copied here); without it these tests skip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nestctl.vm.config import parse_vm_config
from nestctl.vm.cpuarg import predict_cpu, quote_arg
from nestctl.vm.cpumodels import parse_custom_models
from nestctl.vm.model import CpuEnv
from nestctl.vm.versions import parse_version_arg
from tests.helpers import SHARED

CONFORMANCE = SHARED / "conformance"
CFG2CMD = CONFORMANCE / "pve-cfg2cmd"
DERIVED = CONFORMANCE / "pve-derived-cpu-cases.json"
MISSING = f"conformance data not found at {CONFORMANCE} (../shared is absent; CI always has it)"

#: Errors of config_to_command that are about devices nestctl does not model.
OUT_OF_SCOPE = [
    (re.compile(r"using usb\d+ is only possible"), "USB controller checks are out of scope"),
    (re.compile(r"storage '.*' does not support content-type"), "storage checks are out of scope"),
    (re.compile(r"\w+\d+: explicit media parameter is required"), "drive checks are out of scope"),
]

#: Warnings of the -cpu code that nestctl reproduces (others are about devices).
MODELLED_WARNINGS = (
    "warning: CPU flag",
    "WARN: ignoring 'nested-virt'",
    "WARN: OVMF firmware might limit CPU",
    "warning: Installed QEMU version",
)

_DIRECTIVE = re.compile(r"\s*([A-Z_]+):\s*(.*?)\s*")
_OPTION = re.compile(r"^\s*-(cpu|machine) (.*?)(?: \\)?$", re.MULTILINE)


def _cfg2cmd_cases() -> list[Any]:
    if not CFG2CMD.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="no-shared-data")]
    # Top level plus arch subdirectories (aarch64/), as the upstream Makefile runs them.
    files = sorted(CFG2CMD.glob("*.conf")) + sorted(
        f for f in CFG2CMD.glob("*/*.conf") if not f.parent.name.startswith("_")
    )
    return [pytest.param(f, id=str(f.relative_to(CFG2CMD))) for f in files]


def _derived_cases() -> list[Any]:
    if not DERIVED.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="no-shared-data")]
    cases = json.loads(DERIVED.read_text())["cases"]
    return [pytest.param(c, id=c["id"]) for c in cases]


def _fixture_models() -> dict[str, dict[str, str]]:
    models, problems = parse_custom_models((CFG2CMD / "_fixtures" / "cpu-models.conf").read_text())
    assert problems == []
    return models


def _directives(description: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in description.splitlines():
        m = _DIRECTIVE.fullmatch(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _env(d: dict[str, str]) -> CpuEnv:
    text = d.get("QEMU_VERSION", "11.0.0")
    qemu = parse_version_arg(text)
    assert qemu is not None
    q3 = (*qemu, 0, 0, 0)[:3]
    return CpuEnv(
        qemu_version_text=text,
        host_vendor=d.get("HOST_CPU_VENDOR", "GenuineIntel"),
        host_arch=d.get("HOST_ARCH", "x86_64"),
        qemu_version=(q3[0], q3[1], q3[2]),
        custom_models=_fixture_models(),
        nodename="localhost",
    )


@pytest.mark.parametrize("conf_file", _cfg2cmd_cases())
def test_cfg2cmd_case(conf_file: Path) -> None:
    conf = parse_vm_config(conf_file.read_text(), 8006, f"{conf_file.name}/qemu-server/8006.conf")
    d = _directives(conf.description)
    pred = predict_cpu(conf.current(), _env(d))
    cmd_file = conf_file.with_name(conf_file.name + ".cmd")
    if not cmd_file.exists():
        expected = d["EXPECT_ERROR"]
        for pattern, reason in OUT_OF_SCOPE:
            if pattern.search(expected):
                pytest.skip(f"{reason}: {expected}")
        assert pred.error == expected
        assert pred.value is None
        return
    options = dict(_OPTION.findall(cmd_file.read_text()))
    assert pred.error is None
    assert pred.value is not None
    assert quote_arg(pred.value) == options["cpu"]
    machine_type = re.search(r"type=([^,']+)", options["machine"])
    assert machine_type is not None
    assert pred.machine == machine_type.group(1)
    # The upstream harness fails on any warning it was not told to expect.
    expected_warnings = {v for k, v in d.items() if k in ("EXPECT_WARN", "EXPECT_WARNING")}
    assert set(pred.warnings) <= expected_warnings
    for expected in expected_warnings:
        if expected.startswith(MODELLED_WARNINGS):
            assert expected in pred.warnings


@pytest.mark.parametrize("case", _derived_cases())
def test_derived_case(case: dict[str, Any]) -> None:
    if "custom_models_file" in case:
        models, problems = parse_custom_models(case["custom_models_file"])
        assert problems == []
    else:
        models = _fixture_models()
    text = "\n".join(case["config"]) + "\n"
    conf = parse_vm_config(text, 8006, "derived/qemu-server/8006.conf")
    assert conf.problems == []
    qemu = parse_version_arg(case["qemu_binary_version"])
    assert qemu is not None
    env = CpuEnv(
        host_vendor=case["host_cpu_vendor"],
        host_flags=frozenset(case["host_cpuinfo_flags_contains"].split()),
        qemu_version=(qemu[0], qemu[1], qemu[2]),
        custom_models=models,
    )
    pred = predict_cpu(conf.current(), env)
    assert pred.value == case.get("expected_cpu_arg")
    assert ([pred.error] if pred.error else []) == (case.get("error") or [])
    assert list(pred.stdout) == case["stdout_lines"]
    assert [*pred.warnings, *([pred.error] if pred.error else [])] == case["stderr"]
