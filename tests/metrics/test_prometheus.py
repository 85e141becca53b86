"""A real Prometheus server on loopback scrapes `nestctl exporter` (over a fixture node, or a
cluster through the Proxmox API simulator) and a recorded prometheus-pve-exporter page; the
nesting series and the `on(id)` join come back through Prometheus's HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.metrics.tools import lab_node, require
from tests.pvesim import PveSim

DATA = Path(__file__).resolve().parent / "data"

pytest_plugins = ["tests.pvesim.fixtures"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"{proc.args[0]} exited {proc.returncode}: {out[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {deadline_s} s")


class Case(NamedTuple):
    recorded: str  # the pve-exporter page recorded for the same cluster
    series: dict[str, str]  # nesting series to read back -> the value Prometheus must hold
    names: dict[str, tuple[str, str]]  # id -> (pve_guest_info name, nestctl_vm_nested_configured)
    nodes: list[str]  # nodes nestctl reads `nested` on (the API alone cannot)


LOCAL = Case(
    "pve-exporter.prom",
    {
        'nestctl_vm_nested_exposed{id="qemu/100"}': "1",
        'nestctl_vm_nested_exposed{id="qemu/101"}': "0",
    },
    {"qemu/100": ("lab", "1"), "qemu/101": ("ci-runner", "1"), "qemu/102": ("win", "0")},
    ["pve1"],
)
CLUSTER = Case(
    "pve-exporter-lab.prom",
    # Without --ssh: pve1 (qemu-server 9.2.6) tells `nested` through its CPU-flag listing;
    # pve2 (8.3.13) cannot, so its VM 202's exposure stays unknown.
    {
        'nestctl_vm_nested_configured{id="qemu/101"}': "1",
        'nestctl_probe_failed{id="qemu/202",probe="vm_nested_exposed"}': "1",
        'nestctl_up{id="node/pve3",layer="host"}': "0",
    },
    {"qemu/101": ("pve-inner", "1"), "qemu/102": ("win11", "1"), "qemu/103": ("default-cpu", "0")},
    ["pve1"],
)


@pytest.fixture(params=[LOCAL, CLUSTER], ids=["fixture-root", "api-simulator"])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def recorded_pve_exporter(case: Case) -> Iterator[str]:
    """A second target serving the recorded pve-exporter page (a static file)."""
    page = (DATA / case.recorded).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        data = json.loads(resp.read())
    assert data["status"] == "success", data
    return list(data["data"]["result"])


def query_until(prom: str, expr: str, want: int, deadline_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + deadline_s
    while True:
        got = query(prom, expr)
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def source_args(case: Case, request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """What the exporter checks: the fixture node, or the simulated cluster over its API."""
    if case is LOCAL:
        return ["--root", str(lab_node(tmp_path / "root")), "--no-qemu"]
    sim: PveSim = request.getfixturevalue("pve_sim")
    token = tmp_path / "token"
    token.write_text(sim.root_token + "\n")
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--token-file", str(token)]


def test_prometheus_scrapes_the_exporter_and_joins_pve_exporter(
    tmp_path: Path, recorded_pve_exporter: str, case: Case, request: pytest.FixtureRequest
) -> None:
    prometheus = require("prometheus")
    exporter_port, prom_port = free_port(), free_port()
    exporter = start(
        [
            sys.executable, "-m", "nestctl", "exporter",
            "--listen", f"127.0.0.1:{exporter_port}", "--min-interval", "1",
            *source_args(case, request, tmp_path),
        ]
    )  # fmt: skip
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n"
        "scrape_configs:\n"
        f"  - job_name: nestctl\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
        f"  - job_name: pve\n    static_configs: [{{targets: ['{recorded_pve_exporter}']}}]\n"
    )
    server = start(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
    )
    prom = f"http://127.0.0.1:{prom_port}"
    try:
        wait_http(f"http://127.0.0.1:{exporter_port}/metrics", exporter)
        wait_http(f"{prom}/-/ready", server)
        # Both targets are up.
        ups = query_until(prom, "up == 1", 2)
        assert {r["metric"]["job"] for r in ups} == {"nestctl", "pve"}
        # A nesting series, back through Prometheus.
        for expr, want in case.series.items():
            got = query_until(prom, expr, 1)
            assert got, f"{expr} never arrived"
            assert got[0]["value"][1] == want, expr
            assert got[0]["metric"]["job"] == "nestctl"
        # The join admins write: nestctl's id against pve-exporter's pve_guest_info.
        ids = "|".join(case.names)
        expr = (
            f'nestctl_vm_nested_configured{{id=~"{ids}"}} * on(id) group_left(name) pve_guest_info'
        )
        joined = query_until(prom, expr, len(case.names))
        names = {r["metric"]["id"]: (r["metric"]["name"], r["value"][1]) for r in joined}
        assert names == case.names
        nodes = query(prom, "nestctl_host_nested_enabled * on(id) group_left(name) pve_node_info")
        assert [r["metric"]["name"] for r in nodes] == case.nodes
    finally:
        stop(server)
        stop(exporter)
