"""`watch` against the Proxmox simulator with scripted faults: each event fires once and
resolves once; a node down with 30 VMs is one message; inner layers are named by their path;
a restart mid-incident sends nothing twice. Time is an injected clock (no sleeps)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nestctl.watch.paths import SEP
from tests.pvesim.cluster import Cluster, load_cluster
from tests.pvesim.fixtures import CLUSTERS
from tests.pvesim.generate import generate_cluster
from tests.pvesim.server import PveSim
from tests.watch.helpers import Recorder, config, sim_client, watch_on

STEP = 30.0


class Clock:
    """The watch's clock: starts at the real time (the simulator's tasks carry real times)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def ticks(self, watch: object, n: int) -> None:
        for _ in range(n):
            self.now += STEP
            watch.tick(self.now)  # type: ignore[attr-defined]


@pytest.fixture
def lab(tmp_path: Path) -> Cluster:
    """The lab cluster from a copy of its fixture tree (a test may change the nodes' files)."""
    shutil.copytree(CLUSTERS / "lab", tmp_path / "lab")
    return load_cluster(tmp_path / "lab")


def titled(rec: Recorder, *prefixes: str) -> bool:
    """Exactly these messages were sent (each title starts with its prefix, in any order)."""
    titles = sorted(rec.titles())
    return len(titles) == len(prefixes) and all(
        t.startswith(p) for t, p in zip(titles, sorted(prefixes), strict=True)
    )


def quiet_start(watch: object, clock: Clock, rec: Recorder) -> None:
    """Let what is already wrong in the lab fire, then forget those messages."""
    clock.ticks(watch, 4)
    rec.clear()


def test_vm_killed_without_task_fires_once_and_resolves_once(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        with sim.cluster.lock:  # QEMU died: no task, the VM is just stopped
            vm = sim.cluster.vm(101)
            vm.status, vm.pid = "stopped", None
        clock.ticks(watch, 6)
        assert len(rec.sent) == 1, rec.titles()
        message = rec.sent[0][1]
        assert message.title.startswith("✖ VM 101 (pve-inner) stopped with no stop")
        assert f"where: outer/pve1{SEP}VM 101" in message.body
        assert "fix: look at `journalctl -u qemu-server@101`" in message.body
        assert "https://dash.example:8443/t/outer/vm/pve1/101" in message.body
        rec.clear()
        with sim.cluster.lock:
            vm.status = "running"
        clock.ticks(watch, 6)
        assert titled(rec, "✔ resolved: VM 101 (pve-inner) stopped with no stop"), rec.titles()


def test_a_vm_stopped_through_proxmox_is_no_event(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        sim.cluster.task_seconds = 0.0
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        sim.request("POST", "/nodes/pve1/qemu/101/status/stop", token=sim.root_token)
        sim.cluster.tick()
        assert sim.cluster.vm(101).status == "stopped"
        clock.ticks(watch, 6)
        assert rec.sent == []


def test_node_down_with_30_vms_is_one_message(tmp_path: Path) -> None:
    cluster = generate_cluster(nodes=2, vms=60, seed=5)
    assert len(cluster.nodes["pve2"].vms) == 30
    rec, clock = Recorder(), Clock()
    with PveSim(cluster) as sim:
        watch = watch_on({"big": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        sim.cluster.set_node_online("pve2", False)
        clock.ticks(watch, 8)
        assert rec.titles() == ["✖ node pve2 is offline (the cluster lost it)"]
        assert "where: big/pve2" in rec.sent[0][1].body
        rec.clear()
        sim.cluster.set_node_online("pve2", True)
        clock.ticks(watch, 8)
        assert rec.titles() == ["✔ resolved: node pve2 is offline (the cluster lost it)"]


def test_vzdump_failing_names_the_log_and_resolves_on_success(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        sim.cluster.task_seconds = 0.0
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        sim.cluster.storage.vzdump_errors[101] = "no space left on device"
        params = {"vmid": "101", "storage": "local", "mode": "snapshot"}
        sim.request("POST", "/nodes/pve1/vzdump", params, token=sim.root_token)
        sim.cluster.tick()
        clock.ticks(watch, 6)
        assert len(rec.sent) == 1, rec.titles()
        message = rec.sent[0][1]
        assert message.title == "✖ backup of VM 101 failed: job errors"
        assert "> ERROR: Backup of VM 101 failed - no space left on device" in message.body
        assert "fix: read the task log on pve1" in message.body
        assert "vzdump 101" in message.body
        assert "https://dash.example:8443/t/outer/task/UPID%3Apve1%3A" in message.body
        rec.clear()
        del sim.cluster.storage.vzdump_errors[101]
        sim.request("POST", "/nodes/pve1/vzdump", params, token=sim.root_token)
        sim.cluster.tick()
        clock.ticks(watch, 6)
        assert rec.titles() == ["✔ resolved: backup of VM 101 failed: job errors"]
        sim.assert_conformant()  # the task log and storage reads are Proxmox's own requests


def test_nested_flipped_off_fires_once_and_back_on_resolves(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    nested = lab.nodes["pve1"].root / "sys/module/kvm_intel/parameters/nested"  # type: ignore[operator]
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config(full_every=0))
        quiet_start(watch, clock, rec)
        nested.write_text("N\n")
        clock.ticks(watch, 6)
        # One message for the node: the VMs it breaks are not a message each.
        assert rec.titles() == [
            "✖ nested virtualization is off on node pve1: its VMs cannot run guests of their own"
        ]
        assert "fix: nestctl host enable (on pve1)" in rec.sent[0][1].body
        rec.clear()
        nested.write_text("Y\n")
        clock.ticks(watch, 6)
        assert titled(rec, "✔ resolved: nested virtualization is off on node pve1"), rec.titles()


def test_storage_filling_warns_once_and_resolves(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    gib = 1 << 30
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        for used in (80, 91, 93, 95):  # it keeps filling: still one event
            with sim.cluster.lock:
                sim.cluster.nodes["pve1"].storage_usage["local"] = (used * gib, 100 * gib)
            clock.ticks(watch, 2)
        clock.ticks(watch, 3)
        assert titled(rec, "⚠ storage local is 9"), rec.titles()  # 91-95%: one event
        assert f"where: outer/pve1{SEP}storage local" in rec.sent[0][1].body
        rec.clear()
        with sim.cluster.lock:
            sim.cluster.nodes["pve1"].storage_usage["local"] = (50 * gib, 100 * gib)
        clock.ticks(watch, 6)
        assert titled(rec, "✔ resolved: storage local is 95% full"), rec.titles()


def test_backup_older_than_the_limit(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config(full_every=0))
        quiet_start(watch, clock, rec)
        old = clock.now - 40 * 3600
        with sim.cluster.lock:
            sim.cluster.storage.add_backup("local", "pve1", 101, ctime=int(old))
        clock.ticks(watch, 4)
        assert titled(rec, "⚠ the newest backup of VM 101 (pve-inner) is 40 h old (limit 36 h)")
        rec.clear()
        with sim.cluster.lock:
            sim.cluster.storage.add_backup("local", "pve1", 101, ctime=int(clock.now))
        clock.ticks(watch, 6)
        assert rec.titles() == [
            "✔ resolved: the newest backup of VM 101 (pve-inner) is 40 h old (limit 36 h)"
        ]


def test_certificate_swapped_is_a_security_event_at_once(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    sim = PveSim(lab).start()
    port = sim.port
    try:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        old_fp = sim.fingerprint
        sim.stop()
        sim = PveSim(lab, port=port).start()  # the same address, a new certificate
        assert sim.fingerprint != old_fp
        clock.ticks(watch, 1)  # no hold-down for a pin mismatch
        assert len(rec.sent) == 1
        message = rec.sent[0][1]
        assert message.title.startswith("✖ the TLS certificate of outer does not match its pin")
        assert "pvenode cert info" in message.body
        clock.ticks(watch, 5)
        assert len(rec.sent) == 1  # once, not per poll
        rec.clear()
        collector = watch.collectors[0]
        collector.target = replace(collector.target, fingerprint=sim.fingerprint)  # re-pinned
        collector.open_client = sim_client(sim)  # the new simulator's token
        clock.ticks(watch, 6)
        assert [t[:40] for t in rec.titles()] == ["✔ resolved: the TLS certificate of outer"]
    finally:
        sim.stop()


def test_inner_layers_are_named_by_their_path(lab: Cluster, tmp_path: Path) -> None:
    """The issue's 'done when': an inner Proxmox's node goes down: one push; back: one push."""
    rec, clock = Recorder(), Clock()
    inner_cluster = load_cluster(CLUSTERS / "lab-inner")
    with PveSim(lab) as outer, PveSim(inner_cluster) as inner:
        watch = watch_on(
            {"outer": outer, "inner": inner},
            tmp_path / "state.json",
            rec,
            config(),
            parents={"inner": ("outer", 101)},
        )
        quiet_start(watch, clock, rec)
        with inner.cluster.lock:
            vm = inner.cluster.vm(1001)
            vm.status, vm.pid = "stopped", None
        clock.ticks(watch, 6)
        assert len(rec.sent) == 1
        assert f"where: outer/pve1{SEP}VM 101{SEP}pve-inner{SEP}VM 1001" in rec.sent[0][1].body
        rec.clear()
        with inner.cluster.lock:
            vm.status = "running"
        inner.cluster.set_node_online("pve-inner", False)
        clock.ticks(watch, 6)
        assert len(rec.sent) == 1, rec.titles()  # the node; its VM's resolve waits (unseen)
        assert rec.sent[0][1].title == "✖ node pve-inner is offline (the cluster lost it)"
        assert f"where: outer/pve1{SEP}VM 101{SEP}pve-inner" in rec.sent[0][1].body
        rec.clear()
        inner.cluster.set_node_online("pve-inner", True)
        clock.ticks(watch, 6)
        assert titled(rec, "✔ resolved: VM 1001", "✔ resolved: node pve-inner is offline"), (
            rec.titles()
        )


def test_restart_mid_incident_sends_no_duplicate(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    state = tmp_path / "state.json"
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, state, rec, config())
        quiet_start(watch, clock, rec)
        with sim.cluster.lock:
            vm = sim.cluster.vm(101)
            vm.status, vm.pid = "stopped", None
        clock.ticks(watch, 4)
        assert len(rec.sent) == 1
        del watch  # a restart: new process, new collectors, the same state file
        again = watch_on({"outer": sim}, state, rec, config())
        clock.ticks(again, 6)
        assert len(rec.sent) == 1, rec.titles()
        with sim.cluster.lock:
            vm.status = "running"
        clock.ticks(again, 4)
        assert len(rec.sent) == 2
        assert rec.sent[1][1].title.startswith("✔ resolved: VM 101")


def test_the_cheap_check_asks_less_than_the_full_one(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config(full_every=600))
        clock.ticks(watch, 1)
        full = len(sim.requests)
        sim.clear_requests()
        clock.ticks(watch, 1)
        cheap = {r.path for r in sim.requests}
        assert cheap <= {
            "/cluster/resources",
            "/cluster/tasks",
            "/nodes/pve1/status",
            "/nodes/pve2/status",
        }, cheap
        assert len(sim.requests) < full / 3
        sim.assert_conformant()


def test_a_node_that_stops_answering_is_one_event(lab: Cluster, tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config())
        quiet_start(watch, clock, rec)
        sim.fail(node="pve2", status=595, message="No route to host")  # listed online, silent
        clock.ticks(watch, 6)
        assert rec.titles() == ["✖ node pve2 is unreachable"]
        assert "> GET /nodes/pve2/status: HTTP 595: No route to host" in rec.sent[0][1].body
        rec.clear()
        sim.clear_faults()
        clock.ticks(watch, 6)
        assert rec.titles() == ["✔ resolved: node pve2 is unreachable"]


def test_done_when_one_ntfy_push_for_an_inner_node_down_and_one_when_back(
    lab: Cluster, tmp_path: Path
) -> None:
    """The issue's 'done when', end to end: one ntfy URL, real Apprise, an inner Proxmox's node."""
    from nestctl.watch.apprise_send import send_apprise  # noqa: PLC0415
    from nestctl.watch.config import Route  # noqa: PLC0415
    from tests.watch.receivers import http_receiver  # noqa: PLC0415

    pytest.importorskip("apprise")
    clock = Clock()
    inner_cluster = load_cluster(CLUSTERS / "lab-inner")
    with PveSim(lab) as outer, PveSim(inner_cluster) as inner, http_receiver("ntfy") as ntfy:
        route = Route("phone", urls=(f"ntfy://127.0.0.1:{ntfy.server_port}/lab-alerts",))
        watch = watch_on(
            {"outer": outer, "inner": inner},
            tmp_path / "state.json",
            Recorder(),
            config(routes=(route,)),
            parents={"inner": ("outer", 101)},
        )
        watch.send = send_apprise
        clock.ticks(watch, 4)
        ntfy.got.clear()  # what the lab had wrong before
        inner.cluster.set_node_online("pve-inner", False)
        clock.ticks(watch, 10)
        assert len(ntfy.got) == 1
        title, body = ntfy.got[0]
        assert title == "✖ node pve-inner is offline (the cluster lost it)"
        assert f"where: outer/pve1{SEP}VM 101{SEP}pve-inner" in body
        inner.cluster.set_node_online("pve-inner", True)
        clock.ticks(watch, 10)
        assert [t for t, _ in ntfy.got[1:]] == [
            "✔ resolved: node pve-inner is offline (the cluster lost it)"
        ]


def test_a_failing_task_list_or_full_check_is_not_a_target_down(
    lab: Cluster, tmp_path: Path
) -> None:
    rec, clock = Recorder(), Clock()
    with PveSim(lab) as sim:
        watch = watch_on({"outer": sim}, tmp_path / "state.json", rec, config(full_every=0))
        quiet_start(watch, clock, rec)
        active = set(watch.store.load().records)
        with sim.nonconforming():
            sim.fail(path="/cluster/tasks$", kind="malformed")
            sim.fail(path="/nodes/pve1/apt/versions$", status=500, message="got timeout")
            sim.fail(path="^/version$", status=500, message="got timeout")
            with sim.cluster.lock:  # stopped while the task list cannot be read
                vm = sim.cluster.vm(101)
                vm.status, vm.pid = "stopped", None
            clock.ticks(watch, 6)
        assert rec.sent == []  # nothing resolved, nothing new: what could not be read waits
        assert set(watch.store.load().records) == active
        sim.clear_faults()
        clock.ticks(watch, 6)
        assert titled(rec, "✖ VM 101 (pve-inner) stopped with no stop"), rec.titles()
