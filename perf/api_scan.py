"""The API scan against the simulator: 16 nodes, 2,000 VMs, TLS, keep-alive (issues 13 and 24).

Starts the simulator in its standalone mode (`python -m tests.pvesim --generate 16x2000
--latency-ms 20`), then, in the same run, each run interleaving them:
- a bare client (the yardstick): `http.client`, one kept-alive connection per thread, one GET
  config per VM decoded with json, nothing else; 16 and 64 in flight;
- the scan `nestctl vm --api` performs (collect_api + the report), 16 and 64 in flight, each a
  first scan (the scan memo emptied), then a second scan of the unchanged cluster (memo kept);
- the --ssh fast path: every config from one tar of /etc/pve/nodes (the SSH transfer itself not
  included), then the API only for node facts and run state;
- once, the same scan one request at a time (about a minute at 20 ms).
Medians of RUNS runs; CPU is this process's (nestctl's or the bare client's) and the
simulator's. On a small shared machine the simulator's own CPU (a Python server) caps the bare
client and the scan alike, so the goals are ratios within one run:

  client CPU per API request, whole scan at 16 in flight    <= 0.5 ms
  scan at 16 in flight / bare client at 16                  <= 1.15
  scan at 64 in flight / bare client at 64                  <= 1.3, and faster than the scan at 16
  second scan's CPU / first scan's CPU (unchanged cluster)  <= 0.5
  one at a time / scan at 16                                >= 10
  --ssh fast path                                           <= 2 s

Usage: .venv/latest/bin/python perf/api_scan.py [RUNS] [LATENCY_MS] [NODESxVMS] [--no-serial]
"""

from __future__ import annotations

import http.client
import io
import json
import os
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from proctime import cpu_seconds

from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken
from nestctl.vm.collect import memo
from nestctl.vm.collect.api import collect_api
from nestctl.vm.collect.pmxcfs import read_archive
from nestctl.vm.facts import VmOptions
from nestctl.vm.remote import vm_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))  # tests.pvesim, when run as `python perf/api_scan.py`
CONCURRENCY = 16  # nestctl's default (--concurrency): see docs/vm.md, "Over the API"
WIDE = 64


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


class Timed:
    """Wall time, this process's CPU and the simulator's CPU over one block."""

    def __init__(self, sim_pid: int) -> None:
        self.pid = sim_pid
        self.wall = self.cpu = self.sim = 0.0

    def __enter__(self) -> Timed:
        self._start = (time.perf_counter(), time.process_time(), cpu_seconds(self.pid))
        return self

    def __exit__(self, *exc: object) -> None:
        wall, cpu, sim = self._start
        self.wall = time.perf_counter() - wall
        self.cpu = time.process_time() - cpu
        self.sim = cpu_seconds(self.pid) - sim


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


def listed_vms(info: dict[str, str]) -> list[tuple[str, int]]:
    token = ApiToken.parse(info["token"], source="sim")
    with ApiClient(info["url"], token, fingerprint=info["fingerprint"], timeout=60) as api:
        listed = api.get("/cluster/resources", type="vm")
    return [(r["node"], r["vmid"]) for r in listed if r["type"] == "qemu"]


def bare(info: dict[str, str], vms: list[tuple[str, int]], concurrency: int) -> None:
    """The yardstick: one GET config per VM over http.client, kept-alive connections, JSON
    decoded, `concurrency` threads; no TLS policy (the certificate is not checked)."""
    host, port = info["url"].removeprefix("https://").rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    headers = {"Authorization": f"PVEAPIToken={info['token']}"}
    local = threading.local()
    conns: list[http.client.HTTPSConnection] = []

    def one(vm: tuple[str, int]) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPSConnection(host, int(port), context=ctx)
            conns.append(conn)
        conn.request("GET", f"/api2/json/nodes/{vm[0]}/qemu/{vm[1]}/config", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"bare client: HTTP {resp.status}")
        json.loads(body)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, vms))
    for conn in conns:
        conn.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    serial_too = "--no-serial" not in sys.argv
    runs = int(args[0]) if args else 5
    latency = args[1] if len(args) > 1 else "20"
    size = args[2] if len(args) > 2 else "16x2000"
    archive = pmxcfs_tar(size)
    proc, info = start_sim(latency, size)
    got: dict[str, list[Timed]] = {}
    vms = sent = 0
    try:
        listed = listed_vms(info)
        scan(info, CONCURRENCY)  # warm-up: imports, the predictor's first answers
        fasts = []
        for _ in range(runs):
            for width in (CONCURRENCY, WIDE):
                with Timed(proc.pid) as t:
                    bare(info, listed, width)
                got.setdefault(f"bare{width}", []).append(t)
                memo.forget()  # a first scan, as a fresh `nestctl vm --api` makes
                with Timed(proc.pid) as t:
                    _, vms, sent = scan(info, width)
                got.setdefault(f"scan{width}", []).append(t)
                with Timed(proc.pid) as t:  # the exporter's next scrape: nothing changed
                    scan(info, width)
                got.setdefault(f"again{width}", []).append(t)
            fasts.append(fast_path(info, archive))
        serial = 0.0
        if serial_too:
            memo.forget()
            serial, _, _ = scan(info, 1)
    finally:
        proc.terminate()
        proc.wait(10)
    wall = {k: median([t.wall for t in v]) for k, v in got.items()}
    cpu = {k: median([t.cpu for t in v]) for k, v in got.items()}
    sim = {k: median([t.sim for t in v]) for k, v in got.items()}
    ratio = {k: median([t.wall / b.wall for t, b in zip(v, got["bare" + k[4:]], strict=True)])
             for k, v in got.items() if k.startswith("scan")}  # fmt: skip
    second = {w: median([a.cpu / f.cpu for a, f in zip(got[f"again{w}"], got[f"scan{w}"],
                                                         strict=True)])
              for w in (CONCURRENCY, WIDE)}  # fmt: skip
    per_request = cpu[f"scan{CONCURRENCY}"] / sent * 1000
    load = os.getloadavg()
    print(f"simulator: {size} (nodes x VMs), {latency} ms per request; {vms} VMs, {sent} "
          f"requests per scan; medians of {runs} runs; load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'':34}{'wall':>8}{'our CPU':>9}{'sim CPU':>9}")
    for key, label in (
        (f"bare{CONCURRENCY}", f"bare http.client, {CONCURRENCY} in flight"),
        (f"scan{CONCURRENCY}", f"nestctl scan, {CONCURRENCY} in flight"),
        (f"again{CONCURRENCY}", "  again, cluster unchanged"),
        (f"bare{WIDE}", f"bare http.client, {WIDE} in flight"),
        (f"scan{WIDE}", f"nestctl scan, {WIDE} in flight"),
        (f"again{WIDE}", "  again, cluster unchanged"),
    ):
        print(f"{label:34}{wall[key]:7.2f}s{cpu[key]:8.2f}s{sim[key]:8.2f}s")
    goals = [
        (f"client CPU per API request (scan at {CONCURRENCY})", per_request, "ms", 0.5, "<="),
        (f"scan / bare at {CONCURRENCY} in flight", ratio[f"scan{CONCURRENCY}"], "x", 1.15, "<="),
        (f"scan / bare at {WIDE} in flight", ratio[f"scan{WIDE}"], "x", 1.3, "<="),
        (f"scan at {WIDE} / scan at {CONCURRENCY} (wall)",
         wall[f"scan{WIDE}"] / wall[f"scan{CONCURRENCY}"], "x", 1.0, "<"),
        (f"second scan CPU / first (at {CONCURRENCY})", second[CONCURRENCY], "x", 0.5, "<="),
        ("--ssh fast path (configs from one tar)", median(fasts), "s", 2.0, "<="),
    ]  # fmt: skip
    if serial:
        goals.append(("one at a time / scan at 16, (a)", serial / wall[f"scan{CONCURRENCY}"],
                      "x", 10.0, ">="))  # fmt: skip
    missed = 0
    for label, value, unit, goal, op in goals:
        ok = {"<=": value <= goal, "<": value < goal, ">=": value >= goal}[op]
        missed += not ok
        print(f"{label:48} {value:6.3f} {unit:2} goal {op} {goal:g}  {'met' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
