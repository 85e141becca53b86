"""`nestctl backup status`'s reading of a 2,000-guest cluster (16 nodes, 1,400 VMs, 600 CTs),
each guest with a backup on its node's `local`, and five failed job tasks whose logs are read.

In-process simulator (no added latency): prints the requests one collect sends (bounded: one
resource list, one storage list and one content list per node, one task list, the failed job
tasks' logs, the jobs, not-backed-up) and the median wall time of RUNS collects + judgements,
with the load average (the machine is shared).

Usage: .venv/latest/bin/python perf/backup_scan.py [RUNS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pvesim

from tests.pvesim import PveSim, generate_cluster

from nestctl.api.backups import backup_findings, collect_backups, per_guest
from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken


def main(runs: int) -> None:
    cluster = generate_cluster(nodes=16, vms=1400, cts=600)
    cluster.task_seconds = 0
    now = int(time.time())
    for node in cluster.nodes.values():
        for vmid in [*node.vms, *node.cts]:
            cluster.storage.add_backup("local", node.name, vmid, ctime=now - 3600)
    with PveSim(cluster) as sim:
        for name in list(cluster.nodes)[:5]:
            cluster.storage.vzdump_errors[next(iter(cluster.nodes[name].vms))] = "boom"
            upid = sim.request("POST", f"/nodes/{name}/vzdump", {"all": "1"}).data
            sim.wait_task(name, upid, timeout=60)
        sim.clear_requests()
        token = ApiToken.parse(sim.root_token, source="perf")
        times = []
        with ApiClient(sim.url, token, fingerprint=sim.fingerprint) as client:
            for _ in range(runs):
                start = time.perf_counter()
                entries = per_guest(collect_backups(client))
                backup_findings(entries, time.time())
                times.append(time.perf_counter() - start)
        requests = len([r for r in sim.requests if not r.harness]) // runs
    failed = sum(1 for e in entries if e.status == "failed")
    print(f"guests {len(entries)}, failed {failed}, requests per collect {requests}")
    print(f"median {statistics.median(times):.3f} s over {runs} runs; load {os.getloadavg()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
