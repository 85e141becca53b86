"""`nestctl ct --api` against the simulator: 16 nodes, 1,400 VMs and 600 containers (issue 19).

Starts the simulator standalone (`python -m tests.pvesim --generate 16x1400+600 --latency-ms
L`), then times the container scan (`/cluster/resources` once, then each CT's config and
pending with 16 requests in flight) and its analysis, RUNS times. Prints the median wall time,
the requests sent, and the CPU seconds nestctl (this process) and the simulator spent per scan.

Usage: .venv/latest/bin/python perf/ct_scan.py [RUNS] [LATENCY_MS] [NODESxVMS+CTS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from proctime import cpu_seconds

from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken
from nestctl.ct.collect import CtOptions, ct_report_api

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = 16


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    latency = sys.argv[2] if len(sys.argv) > 2 else "20"
    size = sys.argv[3] if len(sys.argv) > 3 else "16x1400+600"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pvesim", "--generate", size, "--latency-ms", latency],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        token = ApiToken.parse(info["token"], source="sim")
        walls: list[float] = []
        cpus: list[tuple[float, float]] = []
        for _ in range(runs):
            client = ApiClient(
                info["url"], token, fingerprint=info["fingerprint"], pool_size=CONCURRENCY,
                timeout=60,
            )  # fmt: skip
            mine, sim = time.process_time(), cpu_seconds(proc.pid)
            start = time.perf_counter()
            report = ct_report_api(client, CtOptions(sections=False), concurrency=CONCURRENCY)
            walls.append(time.perf_counter() - start)
            cpus.append((time.process_time() - mine, cpu_seconds(proc.pid) - sim))
            sent = client.requests_sent
            client.close()
        cts = len(report.payload["cts"])
        print(
            f"{size} at {latency} ms: {cts} containers, {sent} requests, median "
            f"{statistics.median(walls):.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)}); "
            f"CPU per scan: nestctl {statistics.median(c[0] for c in cpus):.2f} s, simulator "
            f"{statistics.median(c[1] for c in cpus):.2f} s"
        )
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
