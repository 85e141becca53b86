"""Each node's `nested` without SSH (issue 18): a real Prometheus fed by a fixture node's
textfile, a guest that sees vmx through its agent, and qemu-server 9.1.17's CPU-flag listing;
each source named in `decided_by`, stale or missing evidence leaves the node unknown."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nestctl.vm.collect.evidence import prometheus_reader
from tests.api.clirun import nestctl, nestctl_json
from tests.metrics.test_prometheus import free_port, query_until, start, stop, wait_http
from tests.metrics.tools import require
from tests.pvesim import PveSim
from tests.vm.vmtrees import node

pytest_plugins = ["tests.pvesim.fixtures"]


def api(sim: PveSim, tmp_path: Path) -> list[str]:
    token = tmp_path / "token"
    token.write_text(sim.root_token + "\n")
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--token-file", str(token)]


def nodes_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in body["nodes"]}


# -- qemu-server's CPU-flag listing ----------------------------------------------------------


def test_cpu_flags_supported_on_is_dated_evidence(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, body = nestctl_json(capsys, "doctor", "--json", *api(pve_sim, tmp_path))
    pve1, pve2 = nodes_of(body)["pve1"], nodes_of(body)["pve2"]
    # pve1 runs qemu-server 9.2.6: nested-virt's supported-on lists it (its nested is Y).
    assert pve1["nested"]["live"] is True
    assert pve1["nested"]["decided_by"].startswith("cpu-flags: pvestatd's probe")
    assert "not seen" in pve1["nested"]["decided_by"]  # dated, never called live
    # pve2 runs 8.3.13: no listing, no SSH, no Prometheus: unknown, and the message names what
    # the user can turn on, offering no command (none runs from a phone).
    assert pve2["nested"]["live"] is None
    unknown = [f for f in pve2["findings"] if f["code"] == "vm.host.nested-unknown"]
    assert unknown
    assert all(s in unknown[0]["message"] for s in ("--prometheus", "--guest", "9.1.17", "--ssh"))
    assert unknown[0]["fix"] is None
    # `accel` defaults to kvm where supported-on exists, and older servers refuse it: not sent.
    requests = [r for r in pve_sim.requests if r.path.endswith("/capabilities/qemu/cpu-flags")]
    assert requests
    assert not any("accel" in r.params for r in requests)


def test_an_older_qemu_server_refuses_accel_and_says_nothing_of_nested(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.nodes["pve1"].packages["qemu-server"] = "9.1.5"
    with pve_sim.nonconforming():
        reply = pve_sim.request("GET", "/nodes/pve1/capabilities/qemu/cpu-flags", {"accel": "kvm"})
    assert reply.status == 400
    plain = pve_sim.request("GET", "/nodes/pve1/capabilities/qemu/cpu-flags").data
    assert all("supported-on" not in f for f in plain)
    _code, body = nestctl_json(capsys, "doctor", "--json", *api(pve_sim, tmp_path))
    assert nodes_of(body)["pve1"]["nested"]["live"] is None


def test_the_cluster_wide_listing_is_served_per_schema(pve_sim: PveSim) -> None:
    flags = pve_sim.request("GET", "/cluster/qemu/cpu-flags", {"accel": "kvm"}).data
    nested = next(f for f in flags if f["name"] == "nested-virt")
    assert nested["supported-on"] == ["pve1", "pve3"]  # pve2's kvm_amd runs with nested=0
    auditor = pve_sim.add_token("aud@pve", "t", privs={"/vms": ["VM.Audit"]}, privsep=False)
    pve_sim.users.users["aud@pve"].acl = {"/vms": frozenset({"VM.Audit"})}
    assert pve_sim.request("GET", "/cluster/qemu/cpu-flags", token=auditor).status == 403


# -- a running guest that sees the flag ------------------------------------------------------


def test_a_guest_that_sees_vmx_shows_its_node_nested_on_now(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, body = nestctl_json(capsys, "doctor", "--guests", "--json", *api(pve_sim, tmp_path))
    pve1 = nodes_of(body)["pve1"]
    # VM 101's guest (a Proxmox inside, cpu: host) sees vmx under KVM: nested is on now. That
    # outranks pvestatd's dated listing.
    assert pve1["nested"]["live"] is True
    assert pve1["nested"]["decided_by"] == "VM 101's guest sees vmx under KVM (its agent, now)"
    vm101 = next(v for v in body["vms"] if v["vmid"] == 101)
    assert vm101["chain"]["host"] == "ok"


# -- a real Prometheus fed by a fixture node's textfile --------------------------------------


@pytest.fixture
def textfile_target(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """node_exporter's part: serve the textfile directory's nestctl.prom as it is now."""
    out = tmp_path / "textfile"
    out.mkdir()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = (out / "nestctl.prom").read_bytes() if (out / "nestctl.prom").exists() else b""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", out
    server.shutdown()
    server.server_close()


def test_prometheus_fills_nested_and_stale_or_missing_is_unknown(
    pve_sim: PveSim,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    textfile_target: tuple[str, Path],
) -> None:
    prometheus = require("prometheus")
    address, out = textfile_target
    # The fixture node pve2 runs nestctl's textfile job: kvm_amd nested=Y there.
    root = node(tmp_path / "pve2", vendor="amd", nested="Y", hostname="pve2")
    code, _out, err = nestctl(capsys, "metrics", "--textfile", str(out), "--root", str(root))
    assert code == 0, err
    assert 'nestctl_host_nested_enabled{id="node/pve2"} 1' in (out / "nestctl.prom").read_text()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['{address}']}}]\n"
    )
    server = start(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{prom}/-/ready", server)
        assert query_until(prom, 'nestctl_host_nested_enabled{id="node/pve2"}', 1)
        code, body = nestctl_json(
            capsys, "doctor", "--json", "--prometheus", prom, *api(pve_sim, tmp_path)
        )
        nested = nodes_of(body)["pve2"]["nested"]
        assert nested["live"] is True
        assert nested["decided_by"].startswith(f"prometheus {prom}: nestctl_host_nested_enabled")
        vm202 = next(v for v in body["vms"] if v["vmid"] == 202)
        assert vm202["chain"]["host"] == "ok"  # no longer unknown
        # A node Prometheus has no sample of is unknown, and the reason says so.
        missing = prometheus_reader(prom)("pve9", None)
        assert missing.live is None
        assert (
            missing.problem
            == f"Prometheus at {prom} has no nestctl_host_nested_enabled for node pve9"
        )
        # The node's nestctl stopped an hour ago: the sample is stale, the node unknown.
        page = (out / "nestctl.prom").read_text()
        old = f"nestctl_last_success_timestamp_seconds {time.time() - 3600:.3f}"
        page = re.sub(r"^nestctl_last_success_timestamp_seconds .*$", old, page, flags=re.M)
        (out / "nestctl.prom").write_text(page)
        expr = "time() - nestctl_last_success_timestamp_seconds > 3000"
        assert query_until(prom, expr, 1)
        code, body = nestctl_json(
            capsys, "doctor", "--json", "--prometheus", prom, *api(pve_sim, tmp_path)
        )
        pve2 = nodes_of(body)["pve2"]
        assert pve2["nested"]["live"] is None
        assert any("is stale" in f["message"] for f in pve2["findings"])
    finally:
        stop(server)
