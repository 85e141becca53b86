"""What doctor and the metrics exporter read from result files."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from nestctl.bench.feed import (
    RESULTS_DIR,
    doctor_findings,
    metric_samples,
    recent_results,
    result_id,
)
from nestctl.machine import Host
from tests.bench.recorded import GUEST_TCG, HOST, load, variant
from tests.helpers import write_tree

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC).timestamp()
CHAIN = {"node": "pve1", "vmid": 101, "cpu": "host", "host_ept_npt": True}


def dated(doc: dict[str, Any], days_ago: float) -> dict[str, Any]:
    when = datetime.datetime.fromtimestamp(NOW - days_ago * 86400, datetime.UTC)
    return {**doc, "started": when.isoformat(timespec="seconds")}


@pytest.fixture
def l1() -> dict[str, Any]:
    return dated(variant(load(HOST), {}, level="L1"), 1)


def test_metric_samples_are_ratios_per_id_and_bench(l1: dict[str, Any]) -> None:
    guest = dated(variant(l1, {"cpuid": 12.0}, level="L2", chain=CHAIN), 1)
    samples = {s["bench"]: (s["id"], v) for s, v in metric_samples([guest, l1])}
    assert samples["cpuid"] == ("pve1/101", pytest.approx(12.0))
    assert samples["cpu"] == ("pve1/101", pytest.approx(1.0))
    assert metric_samples([l1]) == []
    assert result_id(l1) == "vm"


def test_doctor_warns_on_a_pathological_recent_result_and_names_the_cause(
    l1: dict[str, Any],
) -> None:
    chain = {**CHAIN, "host_ept_npt": False, "host_ept_npt_source": "kvm_amd parameter npt=0"}
    bad = dated(variant(l1, {"page_touch_cold": 2.5}, level="L2", chain=chain), 2)
    findings = doctor_findings([l1, bad], now=NOW)
    assert [f.code for f in findings] == ["bench-pathological"]
    assert "pve1/101" in findings[0].message
    assert "page_touch_cold 2.50x (published 1.1-1.25x)" in findings[0].message
    assert "EPT/NPT off" in findings[0].message
    # An old result is not "recent": no line in doctor.
    assert doctor_findings([l1, dated(bad, 90)], now=NOW) == []


def test_doctor_flags_emulation(l1: dict[str, Any]) -> None:
    tcg = dated(load(GUEST_TCG), 1)
    findings = doctor_findings([l1, tcg], now=NOW)
    assert [f.code for f in findings] == ["bench-emulation"]


def test_saved_results_are_read_through_host_and_foreign_files_skipped(
    tmp_path: Path, l1: dict[str, Any]
) -> None:
    write_tree(
        tmp_path,
        {
            f"{RESULTS_DIR}/a.json": json.dumps(l1),
            f"{RESULTS_DIR}/b.json": "{not json",
            f"{RESULTS_DIR}/c.txt": json.dumps(l1),
        },
    )
    docs = recent_results(Host(tmp_path))
    assert len(docs) == 1
    assert docs[0]["where"]["level"] == "L1"
