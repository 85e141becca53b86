"""Where a scan's client CPU goes (issue 24), layer by layer, against the simulator.

Starts the simulator (16 nodes, 2,000 VMs, TLS, keep-alive, no latency) and measures, in this
process, the CPU of one thread (`time.thread_time`) over the same N per-VM GETs
(`/nodes/<node>/qemu/<vmid>/pending`), each layer adding one thing to the one before:

  tls         a kept-alive TLS socket: prebuilt request bytes out, the reply read to its length
  http.client the standard library's request building and reply parsing on top
  json        json.loads of the same replies, alone
  ApiClient   nestctl's client (pool, headers, retries loop, typed errors, `data` check)
  urllib3     urllib3's PoolManager alone, JSON decoded (for comparison; if installed)
  requests    a requests Session, JSON decoded (the transport before issue 24; if installed)
  threads     ApiClient.get on 16 threads, through a ThreadPoolExecutor (a Future per request,
                as the scan did before issue 24) and through fan_out (as it does now): the
                hand-off per request (process CPU over all threads, minus the one-thread figure)

then the analysis of a collected scan per VM: the `-cpu` prediction alone (cache cleared, as a
fresh scan finds it), and the whole report (`vm_report`, which includes the findings and JSON).
A profile with py-spy (`py-spy record -f raw -- python perf/api_scan.py`) agrees on the order;
these subtractions give the figures without sampling bias on a loaded 2-core machine.

Usage: python perf/api_breakdown.py [REQUESTS] [RUNS]
"""

from __future__ import annotations

import http.client
import json
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))
from api_scan import start_sim  # noqa: E402

from nestctl.api.client import ApiClient  # noqa: E402
from nestctl.api.credentials import ApiToken  # noqa: E402
from nestctl.vm.collect.fanout import fan_out  # noqa: E402


def executor(func: Callable[[str], object], items: list[str], workers: int) -> None:
    """What the scan used before issue 24: a Future per request."""
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(func, items))


def per_request(run: Callable[[list[Any]], object], paths: list[Any], runs: int) -> float:
    """Median thread CPU per request (ms) over `runs` passes (after one warm-up pass)."""
    run(paths[:50])
    out = []
    for _ in range(runs):
        start = time.thread_time()
        run(paths)
        out.append((time.thread_time() - start) / len(paths) * 1000)
    return statistics.median(out)


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    proc, info = start_sim("0", "16x2000")
    try:
        return measure(info, count, runs)
    finally:
        proc.terminate()
        proc.wait(10)


def measure(info: dict[str, str], count: int, runs: int) -> int:
    token = ApiToken.parse(info["token"], source="sim")
    host, port = info["url"].removeprefix("https://").rsplit(":", 1)
    auth = {"Authorization": f"PVEAPIToken={info['token']}"}
    api = ApiClient(info["url"], token, fingerprint=info["fingerprint"], timeout=60)
    vms = [r for r in api.get("/cluster/resources", type="vm") if r["type"] == "qemu"]
    paths = [f"/nodes/{r['node']}/qemu/{r['vmid']}/pending" for r in vms][:count]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    rows: list[tuple[str, float]] = []

    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
    conn.connect()
    sock = conn.sock

    def raw_tls(batch: list[str]) -> None:
        for path in batch:
            head = f"GET /api2/json{path} HTTP/1.1\r\nHost: {host}\r\n"
            sock.sendall(f"{head}Authorization: {auth['Authorization']}\r\n\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            header, _, body = buf.partition(b"\r\n\r\n")
            length = int(header.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += sock.recv(65536)

    rows.append(("tls (socket + TLS records)", per_request(raw_tls, paths, runs)))
    conn.close()

    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)

    def bare(batch: list[str]) -> None:
        for path in batch:
            conn.request("GET", "/api2/json" + path, headers=auth)
            conn.getresponse().read()

    rows.append(("http.client", per_request(bare, paths, runs)))
    bodies: list[bytes] = []
    for path in paths:
        conn.request("GET", "/api2/json" + path, headers=auth)
        bodies.append(conn.getresponse().read())
    decode = per_request(lambda b: [json.loads(x) for x in b], bodies, runs)
    rows.append(("JSON decode alone", decode))
    each = per_request(lambda b: [api.get(p) for p in b], paths, runs)
    rows.append(("ApiClient (nestctl)", each))
    rows += libraries(info, paths, runs)

    for name, threaded in (("executor", executor), ("fan_out", fan_out)):
        threaded(api.get, paths[:50], 16)
        cpu = []
        for _ in range(runs):
            start = time.process_time()
            threaded(api.get, paths, 16)
            cpu.append((time.process_time() - start) / len(paths) * 1000)
        rows.append((f"ApiClient, 16 threads, {name}", statistics.median(cpu)))
    report(rows, runs, len(paths))
    analysis(info, token)
    return 0


def libraries(info: dict[str, str], paths: list[str], runs: int) -> list[tuple[str, float]]:
    """urllib3 alone and requests, each JSON-decoding, when installed (for comparison)."""
    host, port = info["url"].removeprefix("https://").rsplit(":", 1)
    auth = {"Authorization": f"PVEAPIToken={info['token']}"}
    rows: list[tuple[str, float]] = []
    try:
        import urllib3  # noqa: PLC0415 - optional comparison

        pool = urllib3.HTTPSConnectionPool(host, int(port), cert_reqs="CERT_NONE", maxsize=1)
        urllib3.disable_warnings()

        def u3(batch: list[str]) -> None:
            for path in batch:
                json.loads(pool.request("GET", "/api2/json" + path, headers=auth).data)

        rows.append(("urllib3 + json", per_request(u3, paths, runs)))
    except ImportError:
        pass
    try:
        import requests  # noqa: PLC0415 - optional comparison

        session = requests.Session()
        session.trust_env, session.verify = False, False
        base = info["url"] + "/api2/json"

        def rq(batch: list[str]) -> None:
            for path in batch:
                session.get(base + path, headers=auth, timeout=60).json()

        rows.append(("requests + json", per_request(rq, paths, runs)))
    except ImportError:
        pass

    return rows


def report(rows: list[tuple[str, float]], runs: int, count: int) -> None:
    print(f"client CPU per GET (ms, median of {runs} passes of {count} requests, "
          f"one thread unless said):")  # fmt: skip
    for name, ms in rows:
        print(f"  {name:<38} {ms:6.3f}")
    got = dict(rows)
    tls = got["tls (socket + TLS records)"]
    print("breakdown of one request through ApiClient:")
    print(f"  TLS + socket       {tls:6.3f}")
    print(f"  http.client        {got['http.client'] - tls:6.3f}  (not on nestctl's path)")
    print(f"  JSON               {got['JSON decode alone']:6.3f}")
    print(f"  nestctl's client   {got['ApiClient (nestctl)'] - tls:6.3f}  (HTTP, pool, errors, "
          f"JSON, over TLS)")  # fmt: skip
    for name in ("executor", "fan_out"):
        hand_off = got[f"ApiClient, 16 threads, {name}"] - got["ApiClient (nestctl)"]
        print(f"  thread hand-off    {hand_off:6.3f}  (16 threads, {name}; process CPU)")


def analysis(info: dict[str, str], token: ApiToken) -> None:
    """Per-VM CPU of the analysis on a collected scan: the -cpu prediction, the whole report."""
    from nestctl.vm import cpuarg  # noqa: PLC0415
    from nestctl.vm.collect import api as collect  # noqa: PLC0415
    from nestctl.vm.facts import VmOptions  # noqa: PLC0415
    from nestctl.vm.remote import vm_report  # noqa: PLC0415

    opts = VmOptions(sections=False, all_nodes=True)
    with ApiClient(info["url"], token, fingerprint=info["fingerprint"], timeout=60) as api:
        start = time.process_time()
        scan = collect.collect_api(api, opts)
        whole = time.process_time() - start
        sent = api.requests_sent
    vms = scan.vms
    predict, report = [], []
    for _ in range(5):
        cpuarg._cache.clear()  # a fresh scan's cache
        collect._QEMU_ENVS.clear()
        start = time.process_time()
        for vm in vms:
            cpuarg.predict_cpu(vm.config.current(), scan.nodes[vm.config.node or ""].env)
        predict.append((time.process_time() - start) / len(vms) * 1000)
        start = time.process_time()
        vm_report(scan, opts)
        report.append((time.process_time() - start) / len(vms) * 1000)
    print(f"analysis per VM ({len(vms)} VMs; ms, median of 5):")
    print(f"  -cpu prediction, cache cold   {statistics.median(predict):6.3f}")
    print(f"  the report (vm_report)        {statistics.median(report):6.3f}")
    print(f"a whole scan (collect_api, 16 in flight): {whole:.2f} s CPU for {sent} requests = "
          f"{whole / sent * 1000:.3f} ms per request (with the collector's analysis)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
