"""A real `nestctl bench --quick` run on this machine: structure and sanity, not timings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.bench.workloads import WORKLOADS
from nestctl.cli import cli

RESULT_KEYS = {"name", "unit", "median", "spread", "runs", "status", "reason"}
WHERE_KEYS = {
    "level", "hypervisor", "accel", "cpu_model", "ept_npt", "shadow_vmcs", "clocksource",
    "mitigations", "steal",
}  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any]:
    out = tmp_path_factory.mktemp("bench") / "here.json"
    result = CliRunner().invoke(cli, ["bench", "--quick", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(out.read_text())  # stdout and file agree
    return json.loads(out.read_text()), out


def test_the_result_file_has_the_contract_keys(quick_run: tuple[dict[str, Any], Path]) -> None:
    doc, _ = quick_run
    assert {"where", "results", "started", "duration_s", "version"} <= set(doc)
    assert set(doc["where"]) >= WHERE_KEYS
    assert [r["name"] for r in doc["results"]] == [w.name for w in WORKLOADS]
    for r in doc["results"]:
        assert set(r) >= RESULT_KEYS, r
        assert r["status"] in ("ok", "not-measurable")


def test_every_measured_result_is_sane(quick_run: tuple[dict[str, Any], Path]) -> None:
    doc, _ = quick_run
    tsc = doc["where"]["tsc_hz"]
    for r in doc["results"]:
        if r["status"] != "ok":
            assert r["reason"].startswith("not measurable here"), r
            continue
        # --quick: five runs of each (three at least, when a busy machine slows them down).
        assert 3 <= len(r["runs"]) <= 5
        assert r["median"] > 0
        assert 0 <= r["spread"] <= max(r["runs"]) - min(r["runs"]) + 1e-6
        assert min(r["runs"]) <= r["median"] <= max(r["runs"])
        assert r["unit"].startswith("ns/")
        assert r["iterations"] >= 1
        if tsc:
            assert r["cycles"] == pytest.approx(r["median"] * tsc / 1e9, rel=1e-3, abs=0.1)
    steal = doc["where"]["steal"]
    assert steal["percent"] is None or 0 <= steal["percent"] <= 100


def test_a_forced_exit_costs_more_than_its_no_exit_control(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = quick_run
    r = {x["name"]: x for x in doc["results"]}
    if r["cpuid"]["status"] != "ok":
        pytest.skip(f"cpuid not measurable here: {r['cpuid']['reason']}")
    if doc["where"]["accel"] in ("kvm", "other"):
        # Under a hypervisor cpuid always exits (hundreds of ns); rdtsc does not (~10 ns).
        assert r["cpuid"]["median"] > 5 * r["rdtsc"]["median"]
    # Touching fresh pages faults; touching mapped ones does not.
    assert r["page_touch_cold"]["median"] > r["page_touch_warm"]["median"]


def test_a_result_compared_with_itself_is_in_line(quick_run: tuple[dict[str, Any], Path]) -> None:
    _doc, path = quick_run
    shown = CliRunner().invoke(cli, ["bench", "compare", str(path), str(path), "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    for w in report["workloads"]:
        if w["ratios"][0] is not None:
            assert w["ratios"] == [1.0, 1.0]
            assert w["verdict"] == "in line"
