"""Throughput of reading VM configs and predicting their -cpu, in process (no start-up cost).

Parses every conformance config (../shared/conformance/pve-cfg2cmd) replicated to N configs and
predicts the -cpu for the config in force, as `nestctl vm` does. Prints the median of several
runs and configs per second. Target (issue 4): the whole `nestctl vm --all-nodes --json` over
5,000 configs within 1.5 s; this part should be a small share of it (see perf/vm_cluster.sh).

Usage: .venv/latest/bin/python perf/vm_predict.py [N] [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from nestctl.vm.config import parse_vm_config
from nestctl.vm.cpuarg import predict_cpu
from nestctl.vm.model import CpuEnv

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pve-cfg2cmd"


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    if not CONFORMANCE.is_dir():
        print(f"needs {CONFORMANCE} (the configs it replicates)", file=sys.stderr)
        return 2
    texts = [p.read_text() for p in sorted(CONFORMANCE.glob("*.conf"))]
    batch = [texts[i % len(texts)] for i in range(count)]
    env = CpuEnv(host_vendor="GenuineIntel", host_flags=frozenset({"vmx"}))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for i, text in enumerate(batch):
            predict_cpu(
                parse_vm_config(text, 100 + i, f"/etc/pve/qemu-server/{i}.conf").current(), env
            )
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"{count} configs: parse + predict median {median * 1000:.1f} ms "
        f"(min {min(times) * 1000:.1f} ms), {count / median:,.0f} configs/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
