"""`bench compare` on recorded result files: ratios, intervals, verdicts and named causes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nestctl.bench.compare import compare, pathological
from nestctl.bench.published import expected
from nestctl.bench.results import ResultFileError, parse_result
from tests.bench.recorded import GUEST_TCG, HOST, load, medians, variant

NESTED = {"cpuid": 15.0, "page_touch_cold": 1.15, "fork_exec": 1.15, "pingpong": 3.0,
          "sleep": 2.0, "fsync": 3.0}  # fmt: skip
EPT_OFF = "kvm_amd parameter npt=0"


def l2_of(base: dict[str, Any], factors: dict[str, float], **where: Any) -> dict[str, Any]:
    """`base` measured one level deeper (a guest of the L1 that `base` is)."""
    where.setdefault("level", "L2")
    return variant(base, {**NESTED, **factors}, default=1.01, **where)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in report["workloads"]}


@pytest.fixture
def host() -> dict[str, Any]:
    return variant(load(HOST), {}, level="L1")


def test_tcg_guest_is_flagged_as_emulation_not_nesting() -> None:
    report = compare([load(HOST), load(GUEST_TCG)], ["host.json", "guest.json"])
    assert report["files"][1]["emulation"] is True
    assert report["files"][0]["emulation"] is False
    for w in report["workloads"]:
        assert w["verdict"] == "emulation", w["name"]
        assert "software emulation (QEMU TCG), not nesting" in w["cause"]
    assert pathological(report)


def test_a_healthy_nested_level_is_in_line_with_the_published_figures(
    host: dict[str, Any],
) -> None:
    report = compare([host, l2_of(host, {})], ["l1", "l2"])
    w = by_name(report)
    assert w["cpuid"]["ratios"][1] == pytest.approx(15.0)
    for name in ("cpu", "syscall", "cpuid", "page_touch_cold", "fork_exec", "pingpong"):
        assert w[name]["verdict"] == "in line", (name, w[name])
        assert w[name]["cause"] is None
    assert w["cpuid"]["expected"] == [8.0, 20.0]
    assert not pathological(report)


def test_ept_off_below_names_the_cause(host: dict[str, Any]) -> None:
    slow = {"page_touch_cold": 2.2, "fork_exec": 1.9}
    chain = {"vmid": 101, "node": "l1", "host_ept_npt": False, "host_ept_npt_source": EPT_OFF}
    report = compare([host, l2_of(host, slow, chain=chain)], ["l1", "l2"])
    w = by_name(report)
    for name in slow:
        assert w[name]["verdict"] == "worse"
        assert "EPT/NPT off" in w[name]["cause"]
        assert EPT_OFF in w[name]["cause"]
    assert w["cpu"]["cause"] is None  # in line: nothing to explain
    assert pathological(report)


def test_ept_off_in_the_first_file_explains_its_guest(host: dict[str, Any]) -> None:
    base = variant(host, {}, ept_npt={"value": False, "source": EPT_OFF})
    report = compare([base, l2_of(base, {"page_touch_cold": 2.2})], ["l1", "l2"])
    cause = by_name(report)["page_touch_cold"]["cause"]
    assert cause is not None
    assert "EPT/NPT off on vm" in cause


def test_a_loss_no_setting_explains_has_no_cause(host: dict[str, Any]) -> None:
    report = compare([host, l2_of(host, {"page_touch_cold": 2.2})], ["l1", "l2"])
    w = by_name(report)["page_touch_cold"]
    assert w["verdict"] == "worse"
    assert w["cause"] is None


def test_an_exiting_clock_source_steal_time_and_a_busy_machine_are_named(
    host: dict[str, Any],
) -> None:
    guest = l2_of(
        host,
        {"clock": 9.0, "cpu": 1.3},
        clocksource="hpet",
        clocksource_exits=True,
        steal={"percent": 12.5, "ticks": 50},
        contention={"percent": 60.0},
    )
    w = by_name(compare([host, guest], ["l1", "l2"]))
    assert w["clock"]["verdict"] == "worse"
    assert "clock source hpet" in w["clock"]["cause"]
    assert "steal time 12.5%" in w["cpu"]["cause"]
    assert "other processes used 60% of the CPUs" in w["cpu"]["cause"]


def test_verdicts_better_and_worse_for_cpuid(host: dict[str, Any]) -> None:
    w_fast = by_name(compare([host, l2_of(host, {"cpuid": 3.0})], ["a", "b"]))["cpuid"]
    w_slow = by_name(compare([host, l2_of(host, {"cpuid": 45.0})], ["a", "b"]))["cpuid"]
    assert w_fast["verdict"] == "better"
    assert w_slow["verdict"] == "worse"


def test_intervals_come_from_the_spreads(host: dict[str, Any]) -> None:
    report = compare([host, l2_of(host, {})], ["a", "b"])
    for w in report["workloads"]:
        assert w["interval"][0] is None
        iv = w["interval"][1]
        if iv is not None:
            assert iv[0] <= w["ratios"][1] <= iv[1]


def test_geometric_means_per_group(host: dict[str, Any]) -> None:
    guest = l2_of(host, {"cpu": 1.04, "syscall": 1.0, "rdtsc": 1.0, "page_touch_warm": 1.0})
    geo = compare([host, guest], ["a", "b"])["geomean"]
    assert geo["no_exit"][0] == pytest.approx(1.0)
    assert geo["no_exit"][1] == pytest.approx(1.04 ** (1 / 4), rel=1e-3)
    assert geo["exit_heavy"][1] == pytest.approx((15.0 * 3.0 * 2.0) ** (1 / 3), rel=1e-3)


def test_three_levels_compose_the_published_ranges(host: dict[str, Any]) -> None:
    l0 = variant(host, {"cpuid": 1 / 20}, level="L0", accel="none")
    l2 = l2_of(host, {})
    report = compare([l0, host, l2], ["l0", "l1", "l2"])
    cpuid = by_name(report)["cpuid"]
    assert cpuid["ratios"][1] == pytest.approx(20.0)
    assert cpuid["ratios"][2] == pytest.approx(300.0)
    assert cpuid["expected"] == [40.0, 600.0]  # (5-30x from metal) x (8-20x per level)
    assert cpuid["verdicts"] == [None, "in line", "in line"]
    assert expected("cpuid", 1, from_metal=True) is not None


def test_shadow_vmcs_off_two_levels_below_names_the_cause(host: dict[str, Any]) -> None:
    l0 = variant(
        host,
        {"cpuid": 1 / 20},
        level="L0",
        accel="none",
        cpu_vendor="intel",
        shadow_vmcs={"value": False, "source": "kvm_intel parameter enable_shadow_vmcs=N"},
    )
    l2 = l2_of(host, {"cpuid": 15.0 * 3})
    cpuid = by_name(compare([l0, host, l2], ["l0", "l1", "l2"]))["cpuid"]
    assert cpuid["verdicts"][2] == "worse"
    assert "shadow VMCS off" in cpuid["causes"][2]


def test_a_workload_not_measurable_on_one_side_has_no_ratio(host: dict[str, Any]) -> None:
    guest = l2_of(host, {})
    for r in guest["results"]:
        if r["name"] == "cpuid":
            r.update(status="not-measurable", median=None, reason="executable memory refused")
    w = by_name(compare([host, guest], ["a", "b"]))["cpuid"]
    assert w["ratios"] == [1.0, None]
    assert w["verdict"] == "unknown"
    assert "executable memory refused" in w["cause"]


def test_hostile_result_files_give_errors_or_unknowns_never_tracebacks(
    host: dict[str, Any],
) -> None:
    for text in ("", "[]", '{"where": 1}', "nan", '{"where": {}, "results": {}}'):
        with pytest.raises(ResultFileError):
            parse_result(text, "x.json")
    doc = parse_result(
        '{"where": {"level": 7}, "results": [1, {"name": "cpu", "status": "ok", "median": true},'
        ' {"name": "syscall", "status": "ok", "median": -5}, {"name": "rdtsc", "status": "ok",'
        ' "median": 1e400}]}',
        "bad.json",
    )
    w = by_name(compare([host, doc], ["host", "bad"]))
    assert all(w[n]["ratios"][1] is None for n in ("cpu", "syscall", "rdtsc"))
    assert medians(host)["cpu"] > 0
    assert not math.isnan(w["cpuid"]["ratios"][0] or 0.0)


def test_a_disk_cache_that_ignores_flushes_is_named_for_fsync(host: dict[str, Any]) -> None:
    chain = {"vmid": 101, "node": "l1", "disk_cache": {"scsi0": "unsafe", "scsi1": "none"}}
    w = by_name(compare([host, l2_of(host, {"fsync": 0.5}, chain=chain)], ["l1", "l2"]))
    assert w["fsync"]["verdict"] == "better"
    assert "disk cache=unsafe on scsi0" in w["fsync"]["cause"]
    assert w["cpu"]["cause"] is None
