"""The API scan against the simulator at 20 ms per request, 16 nodes and 2,000 VMs (issue 13).

Starts the simulator in its standalone mode (`python -m tests.pvesim --generate 16x2000
--latency-ms 20`), then times, in the same run:
- the scan `nestctl vm --api` performs (collect_api with its default 16 requests in flight);
- the same scan one request at a time (concurrency 1)  -> ratio (a), goal >= 10x faster;
- a bare concurrent client (16 threads, one requests session) fetching only one config per VM
  -> ratio (b), goal: the scan within 1.5x of it.
- the --ssh fast path: every config from one tar of /etc/pve/nodes (the same generated cluster,
  written by tests.pvesim.write_cluster; the SSH transfer itself is not included), then the API
  only for node facts and run state. Goal: at most 2 s.
Prints medians of RUNS runs (the serial scan runs once: it takes about a minute), and the CPU
seconds nestctl (this process) and the simulator spent per scan and per bare run: on a small
shared machine the simulator's own CPU, not the latency, caps both the scan and the bare client.

Usage: .venv/latest/bin/python perf/api_scan.py [RUNS] [LATENCY_MS] [NODESxVMS]
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import urllib3
from proctime import cpu_seconds

from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken
from nestctl.vm.collect.api import collect_api
from nestctl.vm.collect.pmxcfs import read_archive
from nestctl.vm.facts import VmOptions
from nestctl.vm.remote import vm_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))  # tests.pvesim, when run as `python perf/api_scan.py`
CONCURRENCY = 16


def start_sim(latency: str, size: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pvesim", "--generate", size, "--latency-ms", latency],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info


def scan(info: dict[str, str], concurrency: int) -> tuple[float, int, int]:
    token = ApiToken.parse(info["token"], source="sim")
    client = ApiClient(
        info["url"], token, fingerprint=info["fingerprint"], pool_size=concurrency, timeout=60
    )
    opts = VmOptions(sections=False, all_nodes=True)
    start = time.perf_counter()
    result = collect_api(client, opts, concurrency=concurrency)
    report = vm_report(result, opts)
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed, len(report.payload["vms"]), client.requests_sent


def pmxcfs_tar(size: str) -> bytes:
    """What `tar -cf - etc/pve/nodes/*/qemu-server` would send for the generated cluster."""
    from tests.pvesim import write_cluster  # noqa: PLC0415

    nodes, vms = (int(x) for x in size.split("x"))
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=buf, mode="w") as tar:
        root = write_cluster(Path(tmp), nodes=nodes, vms=vms)
        for conf in sorted(root.glob("nodes/*/etc/pve/qemu-server/*.conf")):
            tar.add(conf, arcname=f"etc/pve/nodes/{conf.parts[-5]}/qemu-server/{conf.name}")
    return buf.getvalue()


def fast_path(info: dict[str, str], archive: bytes) -> float:
    token = ApiToken.parse(info["token"], source="sim")
    client = ApiClient(info["url"], token, fingerprint=info["fingerprint"], timeout=60)
    opts = VmOptions(sections=False, all_nodes=True)
    start = time.perf_counter()
    files = read_archive(io.BytesIO(archive))
    vm_report(collect_api(client, opts, files=files), opts)
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


def bare(info: dict[str, str]) -> float:
    """The floor: one GET config per VM, CONCURRENCY at once, nothing else."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify=False
    session.verify = False  # a baseline: no TLS policy of ours (the cert is self-signed)
    urllib3.disable_warnings()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY)
    session.mount("https://", adapter)
    headers = {"Authorization": f"PVEAPIToken={info['token']}"}
    base = info["url"] + "/api2/json"
    listed = session.get(
        f"{base}/cluster/resources", headers=headers, params={"type": "vm"}, timeout=60
    ).json()["data"]
    vms = [r for r in listed if r["type"] == "qemu"]

    def one(res: dict[str, object]) -> None:
        url = f"{base}/nodes/{res['node']}/qemu/{res['vmid']}/config"
        session.get(url, headers=headers, timeout=60).raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, vms))
    return time.perf_counter() - start


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    latency = sys.argv[2] if len(sys.argv) > 2 else "20"
    size = sys.argv[3] if len(sys.argv) > 3 else "16x2000"
    archive = pmxcfs_tar(size)
    proc, info = start_sim(latency, size)
    try:
        scans, bares, fasts = [], [], []
        vms = sent = 0
        cpu: dict[str, list[tuple[float, float]]] = {"scan": [], "bare": []}
        for _ in range(runs):
            mine, sim = time.process_time(), cpu_seconds(proc.pid)
            elapsed, vms, sent = scan(info, CONCURRENCY)
            scans.append(elapsed)
            cpu["scan"].append((time.process_time() - mine, cpu_seconds(proc.pid) - sim))
            mine, sim = time.process_time(), cpu_seconds(proc.pid)
            bares.append(bare(info))
            cpu["bare"].append((time.process_time() - mine, cpu_seconds(proc.pid) - sim))
            fasts.append(fast_path(info, archive))
        serial, _, _ = scan(info, 1)
    finally:
        proc.terminate()
        proc.wait(10)
    med_scan, med_bare = statistics.median(scans), statistics.median(bares)
    print(f"simulator: {size} (nodes x VMs), {latency} ms per request; {vms} VMs, "
          f"{sent} requests per scan")  # fmt: skip
    print(f"API scan ({CONCURRENCY} in flight): median {med_scan:.2f} s over {runs} runs")
    print(f"one request at a time:        {serial:.2f} s  -> (a) {serial / med_scan:.1f}x faster")
    print(f"bare client, 1 config per VM: median {med_bare:.2f} s -> (b) scan is "
          f"{med_scan / med_bare:.2f}x of it")  # fmt: skip
    for what, pairs in cpu.items():
        print(f"CPU per {what}: nestctl {statistics.median(p[0] for p in pairs):.2f} s, "
              f"simulator {statistics.median(p[1] for p in pairs):.2f} s (medians)")  # fmt: skip
    fast = statistics.median(fasts)
    print(f"--ssh fast path (configs from one tar, API for nodes): median {fast:.2f} s "
          "(goal <= 2 s; the SSH transfer not included)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
