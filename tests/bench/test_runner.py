"""The runner's own rules: calibration, the wall-time budget, failures mid-run."""

from __future__ import annotations

import time

from nestctl.bench.runner import MIN_RUNS, Plan, calibrate, measure
from nestctl.bench.workloads import Context, SimpleOp, Workload


def test_calibration_aims_at_the_planned_time() -> None:
    op = SimpleOp(lambda n: 100.0 * n)  # 100 ns per iteration
    n = calibrate(op, 0.01)
    assert 90_000 <= n <= 110_000  # 10 ms / 100 ns


def test_a_busy_machine_stops_at_the_minimum_runs_instead_of_overrunning() -> None:
    def slow_in_wall_time(n: int) -> float:
        time.sleep(0.03)  # descheduled: wall time passes, CPU time does not
        return 1000.0 * n

    w = Workload("slow", "no_exit", "test", lambda _ctx: SimpleOp(slow_in_wall_time))
    entry = measure(w, Context("no stub", None), Plan(runs=9, seconds=0.001), None)
    assert entry["status"] == "ok"
    assert len(entry["runs"]) == MIN_RUNS
    assert entry["median"] == 1000.0


def test_a_workload_failing_mid_run_is_reported_not_raised() -> None:
    calls = []

    def flaky(n: int) -> float:
        calls.append(n)
        if len(calls) > 3:
            raise OSError(28, "No space left on device")
        return 1e6 * n

    closed = []
    w = Workload(
        "flaky", "io", "test", lambda _ctx: SimpleOp(flaky, cleanup=lambda: closed.append(1))
    )
    entry = measure(w, Context("no stub", None), Plan(runs=5, seconds=0.001), None)
    assert entry["status"] == "not-measurable"
    assert entry["reason"] == "failed while running: No space left on device"
    assert closed == [1]  # the scratch file / child process is cleaned up either way


def test_cpu_time_workloads_do_not_count_time_spent_waiting() -> None:
    # The CPU-time clock must be CPU time: a wall clock would count this sleep (50 ms).
    from nestctl.bench import workloads  # noqa: PLC0415

    start = workloads.CPU_TIME()
    time.sleep(0.05)
    assert workloads.CPU_TIME() - start < 20_000_000
    op = workloads._timed(lambda _n: time.sleep(0.05))
    assert op(1) < 20_000_000
    assert workloads._timed(lambda _n: time.sleep(0.05), workloads.WALL)(1) >= 50_000_000
