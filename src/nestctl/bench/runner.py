"""Run the microbenchmarks and build the result document (the JSON contract of docs/bench.md).

Standard library only, with `main` as a click-free entry point: the same code runs on a host
(`nestctl bench`) and inside a guest from a zip the host copied in (`nestctl bench --vm`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nestctl import __version__
from nestctl.bench import stats
from nestctl.bench.stub import Stub, load_stub
from nestctl.bench.where import contention, cpu_ticks, steal, where
from nestctl.bench.workloads import WORKLOADS, Context, Op, Workload
from nestctl.machine import Host

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """How long to measure: `runs` repetitions of about `seconds` each, per workload."""

    runs: int
    seconds: float


QUICK = Plan(runs=5, seconds=0.08)
FULL = Plan(runs=9, seconds=0.4)
MIN_RUNS = 3
WALL_BUDGET = 2.0  # wall time allowed per workload, in multiples of its planned CPU time
#: Calibration stops growing the iteration count here (a stub loop of 2**40 would take hours).
MAX_ITERATIONS = 1 << 32


def calibrate(op: Op, seconds: float) -> int:
    """Iterations for one run of about `seconds` (the calibration also warms the op up)."""
    target = seconds * 1e9
    n = 1
    elapsed = op(n)
    while elapsed < target / 4 and n < MAX_ITERATIONS:
        grow = (target / 4) / max(elapsed, 1.0)
        n = min(int(n * min(max(grow, 2.0), 100.0)) + 1, MAX_ITERATIONS)
        elapsed = op(n)
    return max(1, min(int(n * target / max(elapsed, 1.0)), MAX_ITERATIONS))


def measure(workload: Workload, ctx: Context, plan: Plan, tsc_hz: float | None) -> dict[str, Any]:
    """One workload's result entry: median and spread over `plan.runs` runs, or why not."""
    entry: dict[str, Any] = {
        "name": workload.name,
        "group": workload.group,
        "what": workload.what,
        "unit": "ns/op",
        "median": None,
        "spread": None,
        "runs": [],
        "iterations": None,
        "cycles": None,
        "status": "not-measurable",
        "reason": None,
        "note": None,
        "clock": None,
    }
    try:
        op = workload.prepare(ctx)
    except OSError as exc:
        entry["reason"] = f"could not set up: {exc.strerror or exc}"
        return entry
    if isinstance(op, str):
        entry["reason"] = f"not measurable here: {op}"
        return entry
    entry["unit"], entry["note"], entry["clock"] = op.unit, op.note, op.clock
    try:
        n = calibrate(op, plan.seconds)
        # CPU-timed runs take longer in wall time on a busy machine: past this budget, stop at
        # the minimum number of runs rather than overrun the promised duration.
        budget = time.monotonic() + plan.runs * plan.seconds * WALL_BUDGET
        runs: list[float] = []
        while len(runs) < plan.runs:
            runs.append(op(n) / n)
            if len(runs) >= MIN_RUNS and time.monotonic() > budget:
                break
    except OSError as exc:
        entry["reason"] = f"failed while running: {exc.strerror or exc}"
        return entry
    finally:
        with contextlib.suppress(OSError):
            op.close()
    med = stats.median(runs)
    entry.update(
        median=round(med, 3),
        spread=round(stats.spread(runs), 3),
        runs=[round(r, 3) for r in runs],
        iterations=n,
        status="ok",
    )
    if tsc_hz:
        entry["cycles"] = round(med * tsc_hz / 1e9, 1)
    return entry


def tsc_frequency(stub: Stub | str, host: Host) -> float | None:
    """TSC ticks per second, timed against the monotonic clock; None unless the TSC is invariant."""
    if isinstance(stub, str):
        return None
    flags = (host.read_text("/proc/cpuinfo") or "").split()
    if "constant_tsc" not in flags:
        return None  # a TSC that changes with frequency converts to no fixed cycle count
    rates = []
    for _ in range(3):
        t0, c0 = time.perf_counter_ns(), stub.rdtsc()
        time.sleep(0.02)
        t1, c1 = time.perf_counter_ns(), stub.rdtsc()
        if t1 > t0 and c1 > c0:
            rates.append((c1 - c0) * 1e9 / (t1 - t0))
    return stats.median(rates) if rates else None


def _own_cpu_ticks() -> float:
    """CPU time of this process and its finished children (fork_exec, pingpong), in ticks."""
    t = os.times()
    return (t.user + t.system + t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK")


def scratch_dir() -> str | None:
    """A directory for the fsync file: /var/tmp (usually a disk) before the temp dir (tmpfs?)."""
    for candidate in ("/var/tmp", tempfile.gettempdir()):  # noqa: S108 - files there are made by mkstemp
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def run(
    *,
    quick: bool,
    host: Host | None = None,
    stub: Stub | str | None = None,
    workloads: Sequence[Workload] = WORKLOADS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every workload on this machine and return the result document."""
    host = host or Host("/")
    started = time.time()
    clock0 = time.monotonic()
    stub = load_stub() if stub is None else stub
    tsc_hz = tsc_frequency(stub, host)
    context = where(host, stub, tsc_hz=tsc_hz)
    cpus = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
    ctx = Context(stub, scratch_dir(), context.get("clocksource"), cpus)
    plan = QUICK if quick else FULL
    before, own_before = cpu_ticks(host), _own_cpu_ticks()
    results = []
    for w in workloads:
        if progress is not None:
            progress(w.name)
        results.append(measure(w, ctx, plan, tsc_hz))
    after = cpu_ticks(host)
    context["steal"] = steal(before, after)
    context["contention"] = contention(before, after, _own_cpu_ticks() - own_before)
    return {
        "where": context,
        "results": results,
        "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "duration_s": round(time.monotonic() - clock0, 2),
        "version": __version__,
        "mode": "quick" if quick else "full",
    }


def select(only: str | None) -> tuple[Workload, ...]:
    """The workloads named in a comma-separated list (all when None); ValueError for unknown."""
    if not only:
        return WORKLOADS
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)


def dumps(doc: dict[str, Any]) -> str:
    """A result document as strict JSON: a NaN or infinity (a failed measurement) is null."""
    from nestctl.parse import finite_or_none  # noqa: PLC0415

    return json.dumps(finite_or_none(doc), indent=1, allow_nan=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python3 nestctl-bench.pyz [--quick] [-o FILE]`: the runner without click or rich."""
    parser = argparse.ArgumentParser(prog="nestctl-bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (under 20 s)")
    parser.add_argument("-o", "--output", help="write the result file here (default: stdout)")
    parser.add_argument("--only", help="comma-separated workloads (default: all)")
    args = parser.parse_args(argv)
    try:
        chosen = select(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    doc = run(quick=args.quick, workloads=chosen)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(dumps(doc))
    else:
        sys.stdout.write(dumps(doc))
    return 0
