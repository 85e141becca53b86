"""Injected faults and latency, concurrency, the standalone server and the cluster generator."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nestctl.machine import Host
from nestctl.vm.config import load_vm_configs
from tests.pvesim import PveSim, generate_cluster, load_cluster, write_cluster
from tests.pvesim.fixture_clusters import CLUSTERS

pytest_plugins = ["tests.pvesim.fixtures"]
REPO = Path(__file__).resolve().parents[2]


def test_an_error_fault_answers_with_its_status_and_message(pve_sim: PveSim) -> None:
    fault = pve_sim.fail(
        path=r"/qemu/101/status/current$", status=500, message="got timeout", times=1
    )
    first = pve_sim.request("GET", "/nodes/pve1/qemu/101/status/current")
    assert (first.status, first.reason) == (500, "got timeout")
    assert first.json == {"data": None, "message": "got timeout\n"}
    assert pve_sim.request("GET", "/nodes/pve1/qemu/101/status/current").status == 200
    assert fault.hits == 1
    assert pve_sim.request("GET", "/nodes/pve1/qemu/102/status/current").status == 200


def test_a_node_fault_hits_every_path_naming_the_node(pve_sim: PveSim) -> None:
    pve_sim.fail(node="pve2", status=595, message="No route to host")
    assert pve_sim.request("GET", "/nodes/pve2/status").status == 595
    assert pve_sim.request("GET", "/nodes/pve2/qemu/201/config").status == 595
    assert pve_sim.request("GET", "/nodes/pve1/status").status == 200
    pve_sim.clear_faults()
    assert pve_sim.request("GET", "/nodes/pve2/status").status == 200


def test_faults_come_after_authentication(pve_sim: PveSim) -> None:
    pve_sim.fail(path="/version", status=500)
    assert pve_sim.request("GET", "/version", token="").status == 401


def test_malformed_json(pve_sim: PveSim) -> None:
    pve_sim.fail(path="^/cluster/resources$", kind="malformed")
    resp = pve_sim.request("GET", "/cluster/resources")
    assert resp.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.body)
    assert pve_sim.requests[-1].status == 0


def test_timeout_and_drop(pve_sim: PveSim) -> None:
    pve_sim.fail(path="^/nodes/pve1/status$", kind="timeout", seconds=3)
    with pytest.raises(TimeoutError):
        pve_sim.request("GET", "/nodes/pve1/status", timeout=0.3)
    pve_sim.fail(path="^/version$", kind="drop")
    with pytest.raises(http.client.RemoteDisconnected):
        pve_sim.request("GET", "/version")
    assert pve_sim.request("GET", "/nodes/pve2/status").status == 200


def test_latency_applies_to_every_request_and_requests_overlap(pve_sim: PveSim) -> None:
    pve_sim.latency_ms = 400
    results: list[int] = []

    def one() -> None:
        results.append(pve_sim.request("GET", "/nodes/pve1/qemu/101/config").status)

    threads = [threading.Thread(target=one) for _ in range(6)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 6
    assert time.monotonic() - started >= 0.4
    assert pve_sim.max_in_flight >= 2  # served side by side, not one after another


def test_hostile_requests_get_answers_not_crashes(pve_sim: PveSim) -> None:
    context = ssl.create_default_context(cafile=str(pve_sim.cert_path))
    for body, ctype in ((b"{not json", "application/json"), (b"\xff\xfe=%%%", "text/plain")):
        conn = http.client.HTTPSConnection("127.0.0.1", pve_sim.port, context=context, timeout=5)
        conn.request(
            "PUT",
            "/api2/json/nodes/pve1/qemu/103/config",
            body=body,
            headers={"Content-Type": ctype, "Authorization": f"PVEAPIToken={pve_sim.root_token}",
                     "X-PveSim-Harness": "1"},
        )  # fmt: skip
        assert conn.getresponse().status in (200, 400)
        conn.close()
    assert pve_sim.request("GET", "/nodes/pve1/qemu/%ZZ/config").status == 400
    assert pve_sim.request("GET", "/../../etc/passwd").status == 501
    assert pve_sim.internal_errors == []


def test_standalone_server_prints_how_to_reach_it_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pvesim", "--cluster", str(CLUSTERS / "lab"),
         "--latency-ms", "1", "--token-secret", "s3cret"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["token"] == "root@pam!pvesim=s3cret"
        assert info["url"].startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=info["cert"])
        port = int(info["url"].rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        conn.request(
            "GET", "/api2/json/version", headers={"Authorization": f"PVEAPIToken={info['token']}"}
        )
        assert json.loads(conn.getresponse().read())["data"]["version"] == "9.2.2"
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_standalone_server_refuses_a_directory_that_is_no_cluster(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pvesim", "--cluster", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 2
    assert "no nodes/ directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_generated_cluster_is_what_local_mode_reads(tmp_path: Path) -> None:
    base = write_cluster(tmp_path / "big", nodes=3, vms=30)
    cluster = generate_cluster(nodes=3, vms=30)
    assert sorted(cluster.nodes) == ["pve1", "pve2", "pve3"]
    assert len(cluster.all_vms()) == 30
    assert sum(vm.running for vm in cluster.all_vms()) == 18  # three in five
    assert any(vm.conf.pending for vm in cluster.all_vms())
    local = load_vm_configs(Host(base / "nodes/pve2"))
    api = cluster.nodes["pve2"].vms
    assert [c.vmid for c in local] == sorted(api)
    assert {c.vmid: c.digest for c in local} == {v: vm.conf.digest for v, vm in api.items()}
    # the files, read back, are the cluster generated in memory
    loaded = load_cluster(base)
    for name, node in cluster.nodes.items():
        other = loaded.nodes[name]
        assert (node.version, node.cpu_model, node.cpu_flags) == (
            other.version,
            other.cpu_model,
            other.cpu_flags,
        )
        assert {v: (vm.conf.digest, vm.status, vm.running_machine, vm.running_cpu)
                for v, vm in node.vms.items()} == {
            v: (vm.conf.digest, vm.status, vm.running_machine, vm.running_cpu)
            for v, vm in other.vms.items()
        }  # fmt: skip
