"""How noisy `nestctl bench` is here, and how long it takes (issue 12's performance targets).

Runs `nestctl bench --quick` five times (each a fresh process, as a user would) and once without
--quick, then prints for every workload the spread of the five medians (max/min - 1, and the
median absolute deviation in %), the same for the geometric mean of the no-exit workloads, and
the wall time of each run. Targets: --quick <= 20 s, full <= 120 s, and the no-exit geometric
mean steady enough that a 10% difference stands out (spread well under 10%).

Usage: .venv/latest/bin/python perf/bench_noise.py [RUNS] [--no-full]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nestctl.bench.stats import geomean

NESTCTL = Path(sys.executable).with_name("nestctl")


def one_run(quick: bool) -> tuple[dict[str, object], float]:
    start = time.monotonic()
    argv = [str(NESTCTL), "bench", "--json", *(["--quick"] if quick else [])]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out), time.monotonic() - start


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 5
    docs, walls = [], []
    for _ in range(runs):
        doc, wall = one_run(quick=True)
        docs.append(doc)
        walls.append(wall)
    medians: dict[str, list[float]] = {}
    groups: dict[str, str] = {}
    for doc in docs:
        for r in doc["results"]:  # type: ignore[attr-defined]
            if r["status"] == "ok":
                medians.setdefault(r["name"], []).append(r["median"])
                groups[r["name"]] = r["group"]
    print(f"{'workload':16} {'group':10} {'median':>12} {'max/min-1':>9} {'MAD %':>6}")
    for name, values in medians.items():
        med = statistics.median(values)
        mad = statistics.median(abs(v - med) for v in values) / med * 100
        span = (max(values) / min(values) - 1) * 100
        print(f"{name:16} {groups[name]:10} {med:12.1f} {span:8.1f}% {mad:5.1f}%")
    no_exit = [n for n, g in groups.items() if g == "no_exit"]
    geo = [geomean(medians[n][i] for n in no_exit) or 0.0 for i in range(runs)]
    ratios = [g / statistics.median(geo) for g in geo]
    span = (max(geo) / min(geo) - 1) * 100
    print(f"no-exit geometric mean across {runs} runs: max/min-1 {span:.1f}%")
    print(f"  each run vs their median: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"--quick wall time: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")
    if "--no-full" not in sys.argv:
        _doc, wall = one_run(quick=False)
        print(f"full run wall time: {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
