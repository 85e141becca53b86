"""The shared parsers (nestctl.parse) and the rules every parser in nestctl follows: ASCII digits
only, `re.ASCII` on patterns using \\d \\w \\s \\b, no quadratic lazy-group-then-spaces pattern."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nestctl.findings import Report
from nestctl.parse import (
    cpu_vendor,
    cpuid_vendor,
    finite_or_none,
    is_ascii_digits,
    parse_uint,
    proxmox_bool,
    qemu_bool,
)
from nestctl.qemu.cpuprobe import parse_cpu_arg
from nestctl.render.jsonout import dumps_report
from nestctl.vm.config import key_value
from nestctl.vm.propstring import parse_boolean

SRC = Path(__file__).resolve().parents[1] / "src" / "nestctl"
_RE_FUNCS = {
    "compile",
    "match",
    "search",
    "fullmatch",
    "sub",
    "subn",
    "findall",
    "finditer",
    "split",
}


@pytest.mark.parametrize(
    "text", ["¹", "٣", "١٢", "²³", "\U0001d7d9", "Ⅻ", "", " ", "-1", "+1", "1.0", "0x1"]
)
def test_non_ascii_and_signed_digits_are_not_numbers(text: str) -> None:
    assert parse_uint(text) is None
    assert not is_ascii_digits(text)


def test_numbers_are_bounded() -> None:
    assert parse_uint(" 4096\n") == 4096
    assert parse_uint("9" * 20) == int("9" * 20)
    assert parse_uint("9" * 21) is None  # int() on a huge digit string is slow, and no value
    assert parse_uint("12345678901", max_digits=10) is None


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("1", True), ("on", True), ("ON", True), ("Yes", True), ("TRUE", True),
        ("0", False), ("off", False), ("No", False), ("FALSE", False),
        ("01", None), ("2", None), ("", None), (" 1", None), ("y", None), ("enabled", None),
        ("\uff4f\uff4e", None), ("İ", None),
    ],
)  # fmt: skip
def test_proxmox_booleans_follow_qemu_server_check_type(word: str, value: bool | None) -> None:
    # qemu-server: `return 1 if ($value eq '1') || ($value =~ m/^(on|yes|true)$/i)`.
    assert proxmox_bool(word) is value
    assert parse_boolean(word) == (None if value is None else "1" if value else "0")


def test_one_vendor_mapping() -> None:
    assert cpu_vendor("GenuineIntel") == "intel"
    assert cpu_vendor("AuthenticAMD") == "amd"
    assert cpu_vendor("HygonGenuine") == "amd"
    assert cpu_vendor("CentaurHauls") == "other"
    assert cpu_vendor("") is None
    assert cpu_vendor(None) is None
    # ... and the way back, for models that know only the name (Hygon builds AMD's design).
    assert cpuid_vendor(cpu_vendor("HygonGenuine")) == "AuthenticAMD"
    assert cpuid_vendor("intel") == "GenuineIntel"
    assert cpuid_vendor("other") is None
    assert cpuid_vendor(None) is None


def test_the_vendor_mapping_lives_once() -> None:
    # One table (nestctl.parse), so a new vendor reaches every caller: no other module maps
    # CPUID vendor strings to names or back in a literal.
    mapping = re.compile(
        r"[\"'](GenuineIntel|AuthenticAMD|HygonGenuine)[\"']\s*[:}]"
        r"|[\"'](intel|amd)[\"']\s*:\s*[\"'](GenuineIntel|AuthenticAMD)"
    )
    bad = [
        f"{rel}:{n}"
        for rel, text in _sources()
        if rel != "parse.py"
        for n, line in enumerate(text.splitlines(), start=1)
        if mapping.search(line)
    ]
    assert not bad, bad


def test_json_output_is_strict_with_non_finite_values_as_null() -> None:
    report = Report("t", {"x": {"ratio": math.nan, "list": [1.5, math.inf, -math.inf]}})
    text = dumps_report(report.to_json())
    body = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert body["x"] == {"ratio": None, "list": [1.5, None, None]}
    assert finite_or_none((1.0, {"a": math.nan})) == [1.0, {"a": None}]


_PROXMOX_KV = re.compile(r"([a-z][a-z_\-]*\d*):\s*(.+?)\s*", re.ASCII)


@given(
    st.lists(
        st.sampled_from(["a", "b", "1", "_", "-", ":", " ", "\t", "\x0b", "\xa0", "x", "é"]),
        max_size=12,
    ).map("".join)
)
def test_config_key_value_splits_as_proxmox_does(line: str) -> None:
    m = _PROXMOX_KV.fullmatch(line)
    assert key_value(line) == ((m.group(1), m.group(2)) if m else None)


def test_config_key_value_is_linear_on_long_space_runs() -> None:
    line = "args: -cpu" + " " * 200_000 + "x"
    assert key_value(line) == ("args", "-cpu" + " " * 200_000 + "x")


def _sources() -> list[tuple[str, str]]:
    return [
        (path.relative_to(SRC).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(SRC.rglob("*.py"))
    ]


def test_the_scans_cover_every_package() -> None:
    # No package is exempt: the layers added later (API, tree, metrics, bench, VM collectors)
    # read hostile text too.
    scanned = {rel.rsplit("/", 1)[0] for rel, _ in _sources() if "/" in rel}
    for package in ("api", "bench", "guest", "host", "metrics", "qemu", "tree", "vm/collect"):
        assert package in scanned


def _pattern(node: ast.expr) -> str | None:
    """The literal text of a regex argument; an f-string's literal parts (its holes are named
    sub-patterns checked where they are defined)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    return None


def test_regexes_are_ascii_and_not_quadratic() -> None:
    bad: list[str] = []
    for rel, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _RE_FUNCS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.args
            ):
                continue
            pattern = _pattern(node.args[0])
            if pattern is None:
                continue
            call = ast.get_source_segment(text, node) or ""
            if re.search(r"\\[dwsbDWSB]", pattern) and "ASCII" not in call:
                bad.append(f"{rel}:{node.lineno}: {pattern!r} lacks re.ASCII")
            if re.search(r"\.[+*]\?\)?\\s\*", pattern):
                bad.append(f"{rel}:{node.lineno}: {pattern!r} is quadratic on long space runs")
    assert not bad, "\n".join(bad)


def test_digit_checks_are_ascii_only() -> None:
    bad = [
        f"{rel}:{n}: {line.strip()}"
        for rel, text in _sources()
        for n, line in enumerate(text.splitlines(), start=1)
        if re.search(r"\bis(digit|decimal|numeric)\b", line) and rel != "parse.py"
    ]
    # One helper, so that a fix reaches every caller (issue 8: "one shared helper").
    assert not bad, "str.isdigit() is true for '¹' and '٣': use nestctl.parse\n" + "\n".join(bad)


def test_every_json_writer_is_strict() -> None:
    # JSON has no NaN: every json.dumps in nestctl refuses it (allow_nan=False), after mapping
    # non-finite values to null where they can occur (render.jsonout, bench.runner).
    bad = []
    for rel, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("dump", "dumps")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "json"
            ):
                strict = any(
                    k.arg == "allow_nan" and isinstance(k.value, ast.Constant) and not k.value.value
                    for k in node.keywords
                )
                if not strict:
                    bad.append(f"{rel}:{node.lineno}")
    assert not bad, bad


def test_running_vms_are_found_from_pid_files_in_one_place() -> None:
    # nestctl.host.pidfiles is the one reader of qemu-server's pid files: `host`, `vm`,
    # `doctor`, the metrics and `bench --levels` all ask it, so a fix reaches every caller.
    pid_file = re.compile(r"""PID_DIRS|qemu-server/[^"']*\.pid\b|\.partition\("\."\).*pid""")
    bad = [
        f"{rel}:{n}: {line.strip()}"
        for rel, text in _sources()
        if rel not in ("host/pidfiles.py", "vm/running.py")  # running.py: the VM layer's view
        for n, line in enumerate(text.splitlines(), start=1)
        if pid_file.search(line) and not line.lstrip().startswith(("#", '"', "pid file"))
    ]
    assert not bad, bad


@pytest.mark.parametrize(
    ("value", "truth"),
    [("on", True), ("yes", True), ("true", True), ("y", True), ("off", False), ("n", False),
     ("ON", None), ("1", None), ("0", None), ("", None), ("On", None)],
)  # fmt: skip
def test_qemu_booleans_are_qapi_bool_parse(value: str, truth: bool | None) -> None:
    # One QEMU boolean for the oracle's -cpu reading and the table's: exact, case-sensitive words.
    assert qemu_bool(value) is truth
    assert parse_cpu_arg(f"kvm64,vmx={value}").state("vmx") is truth
    assert parse_cpu_arg(f"kvm64,vmx={value}").features().get("vmx") is truth


def test_the_predictor_and_the_oracle_read_cpu_values_with_one_parser() -> None:
    # Two parsers of one format disagreed once (`vmx=y`): the table and QEMU's answer must read
    # a -cpu value through the same function.
    from nestctl.qemu import cpuprobe, cpuvalue  # noqa: PLC0415
    from nestctl.vm import exposure  # noqa: PLC0415

    assert exposure.parse_cpu_arg is cpuvalue.parse_cpu_arg
    assert cpuprobe.parse_cpu_arg is cpuvalue.parse_cpu_arg
    assert not hasattr(exposure, "parse_cpu_value")
