"""pvesim serves containers as pve-container does, held to the schema (issue 19, point 1)."""

from __future__ import annotations

from pathlib import Path

from tests.pvesim import PveSim
from tests.pvesim.cluster import load_cluster
from tests.pvesim.ctconf import parse_ct_conf, write_ct_conf
from tests.pvesim.generate import generate_cluster, write_cluster
from tests.pvesim.schema import return_problems

pytest_plugins = ["tests.pvesim.fixtures"]

GETS = [
    ("/cluster/resources", {}),
    ("/nodes/{node}/lxc", {}),
    ("/nodes/{node}/lxc/{vmid}", {}),
    ("/nodes/{node}/lxc/{vmid}/status", {}),
    ("/nodes/{node}/lxc/{vmid}/status/current", {}),
    ("/nodes/{node}/lxc/{vmid}/config", {}),
    ("/nodes/{node}/lxc/{vmid}/pending", {}),
    ("/nodes/{node}/lxc/{vmid}/rrddata", {"timeframe": "hour"}),
    ("/nodes/{node}/lxc/{vmid}/snapshot", {}),
    ("/nodes/{node}/lxc/{vmid}/firewall", {}),
    ("/nodes/{node}/lxc/{vmid}/firewall/options", {}),
    ("/nodes/{node}/lxc/{vmid}/firewall/rules", {}),
]


def test_container_answers_match_the_schema(pve_sim: PveSim) -> None:
    problems = []
    for template, params in GETS:
        path = template.format(node="pve1", vmid="150")
        resp = pve_sim.request("GET", path, params)
        assert resp.status == 200, (path, resp.body)
        problems += return_problems(pve_sim.schema.returns(template), resp.data, template)
    assert problems == []


def test_cluster_resources_list_containers_as_lxc(pve_sim: PveSim) -> None:
    rows = pve_sim.request("GET", "/cluster/resources", {"type": "vm"}).data
    cts = {r["vmid"]: r for r in rows if r["type"] == "lxc"}
    assert sorted(cts) == [150, 151, 152, 250, 251]
    assert cts[150]["id"] == "lxc/150"
    assert cts[150]["name"] == "docker-host"
    assert cts[150]["status"] == "running"
    assert cts[150]["tags"] == "nested"
    assert cts[151]["status"] == "stopped"
    assert cts[152]["lock"] == "backup"
    assert {r["type"] for r in rows} == {"qemu", "lxc"}


def test_config_is_typed_and_keeps_raw_lxc_lines(pve_sim: PveSim) -> None:
    with pve_sim.cluster.lock:
        ct = pve_sim.cluster.ct(251)
        ct.conf.lxc.append(("lxc.cgroup2.devices.allow", "c 10:232 rwm"))
        ct.conf.touch()
    conf = pve_sim.request("GET", "/nodes/pve2/lxc/251/config").data
    assert conf["unprivileged"] == 1
    assert conf["cores"] == 4
    assert conf["features"] == "nesting=1"
    assert conf["dev0"] == "/dev/kvm,gid=104"
    assert conf["lxc"] == [["lxc.cgroup2.devices.allow", "c 10:232 rwm"]]
    assert conf["digest"] == pve_sim.cluster.ct(251).conf.digest


def test_put_with_digest_and_pending_on_a_running_ct(pve_sim: PveSim) -> None:
    digest = pve_sim.request("GET", "/nodes/pve2/lxc/250/config").data["digest"]
    ticket, csrf = pve_sim.login()  # keyctl: root@pam itself, not a token
    put = pve_sim.request(
        "PUT",
        "/nodes/pve2/lxc/250/config",
        {"features": "nesting=1,keyctl=1", "digest": digest},
        ticket=ticket,
        csrf=csrf,
    )
    assert put.status == 200, put.body
    # running: features are not hot-pluggable, so they wait in [pve:pending]
    pending = {e["key"]: e for e in pve_sim.request("GET", "/nodes/pve2/lxc/250/pending").data}
    assert pending["features"]["pending"] == "nesting=1,keyctl=1"
    assert "[pve:pending]\nfeatures: nesting=1,keyctl=1\n" in pve_sim.cluster.ct(250).conf.text
    stale = pve_sim.request(
        "PUT", "/nodes/pve2/lxc/250/config", {"features": "nesting=1", "digest": digest}
    )
    assert stale.status == 500
    assert "file changed by other user" in stale.json["message"]
    upid = pve_sim.request("POST", "/nodes/pve2/lxc/250/status/reboot").data
    assert pve_sim.wait_task("pve2", upid)["exitstatus"] == "OK"
    current = pve_sim.request("GET", "/nodes/pve2/lxc/250/config", {"current": 1}).data
    assert current["features"] == "nesting=1,keyctl=1"


def test_stopped_ct_applies_at_once(pve_sim: PveSim) -> None:
    put = pve_sim.request("PUT", "/nodes/pve1/lxc/151/config", {"features": "nesting=1"})
    assert put.status == 200
    assert pve_sim.cluster.ct(151).conf.main["features"] == "nesting=1"
    assert pve_sim.cluster.ct(151).conf.pending == {}


def test_a_locked_ct_refuses_changes_and_power(pve_sim: PveSim) -> None:
    put = pve_sim.request("PUT", "/nodes/pve1/lxc/152/config", {"features": "nesting=1"})
    assert put.status == 500
    assert put.json["message"] == "CT is locked (backup)\n"
    upid = pve_sim.request("POST", "/nodes/pve1/lxc/152/status/shutdown").data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "CT is locked (backup)"
    assert pve_sim.cluster.ct(152).running
    # a reboot does not check the lock: it stops the CT, and the start then refuses it
    upid = pve_sim.request("POST", "/nodes/pve1/lxc/152/status/reboot").data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "startup for container '152' failed"
    assert not pve_sim.cluster.ct(152).running


def test_power_actions_and_their_refusals(pve_sim: PveSim) -> None:
    again = pve_sim.request("POST", "/nodes/pve1/lxc/150/status/start")
    assert (again.status, again.json["message"]) == (500, "CT 150 already running\n")
    not_running = pve_sim.request("POST", "/nodes/pve1/lxc/151/status/shutdown")
    assert (not_running.status, not_running.json["message"]) == (500, "CT 151 not running\n")
    for action, running in (("suspend", False), ("resume", True), ("stop", False)):
        upid = pve_sim.request("POST", f"/nodes/pve1/lxc/150/status/{action}").data
        assert f":vz{action}:150:" in upid
        assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
        assert pve_sim.cluster.ct(150).running is running
    upid = pve_sim.request("POST", "/nodes/pve1/lxc/150/status/start").data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    status = pve_sim.request("GET", "/nodes/pve1/lxc/150/status/current").data
    assert status["status"] == "running"


def test_who_may_change_features(pve_sim: PveSim) -> None:
    """check_ct_modify_config_perm: nesting alone needs VM.Allocate; keyctl, dev and the
    features of a privileged CT only root@pam (not even a token of it)."""
    ops = pve_sim.add_token("root@pam", "ops", privs=["Administrator"])
    nesting = pve_sim.request(
        "PUT", "/nodes/pve1/lxc/151/config", {"features": "nesting=1"}, token=ops
    )
    assert nesting.status == 200, nesting.body
    keyctl = pve_sim.request(
        "PUT", "/nodes/pve1/lxc/151/config", {"features": "nesting=1,keyctl=1"}, token=ops
    )
    assert keyctl.status == 403
    assert "(except nesting) is only allowed for root@pam" in keyctl.json["message"]
    dev = pve_sim.request("PUT", "/nodes/pve1/lxc/151/config", {"dev0": "/dev/kvm"}, token=ops)
    assert dev.status == 403
    audit = pve_sim.add_token("root@pam", "opts", privs=["VM.Audit", "VM.Config.Options"])
    no_allocate = pve_sim.request(
        "PUT", "/nodes/pve1/lxc/151/config", {"features": "nesting=0"}, token=audit
    )
    assert no_allocate.status == 403
    assert "VM.Allocate" in no_allocate.json["message"]


def test_ct_firewall_rules_with_digest(pve_sim: PveSim) -> None:
    path = "/nodes/pve1/lxc/150/firewall/rules"
    made = pve_sim.request("POST", path, {"type": "in", "action": "ACCEPT", "enable": 1})
    assert made.status == 200, made.body
    rules = pve_sim.request("GET", path).data
    assert [r["action"] for r in rules] == ["ACCEPT"]
    assert pve_sim.cluster.ct(150).firewall_rules[0]["action"] == "ACCEPT"
    opts = pve_sim.request("PUT", "/nodes/pve1/lxc/150/firewall/options", {"enable": 1})
    assert opts.status == 200
    assert pve_sim.cluster.ct(150).firewall_options == {"enable": 1}


def test_rrddata_leaves_out_what_a_stopped_ct_lacks(pve_sim: PveSim) -> None:
    running = pve_sim.request("GET", "/nodes/pve1/lxc/150/rrddata", {"timeframe": "hour"}).data
    stopped = pve_sim.request("GET", "/nodes/pve1/lxc/151/rrddata", {"timeframe": "day"}).data
    assert "cpu" in running[-1]
    assert all(set(s) == {"time"} for s in stopped)


def test_unknown_ct_is_proxmox_s_error(pve_sim: PveSim) -> None:
    resp = pve_sim.request("GET", "/nodes/pve1/lxc/999/config")
    assert resp.status == 500
    assert resp.json["message"] == "Configuration file 'nodes/pve1/lxc/999.conf' does not exist\n"


def test_conf_round_trip_keeps_sections_and_raw_lines() -> None:
    text = (
        "#Docker%3A here\narch: amd64\nfeatures: nesting=1\nunprivileged: 1\n"
        "lxc.cgroup2.devices.allow: c 10:232 rwm\n"
        "lxc.mount.entry: /dev/kvm dev/kvm none bind,optional,create=file\n"
        "\n[pve:pending]\nfeatures: keyctl=1,nesting=1\n"
        "\n[before-docker]\narch: amd64\nsnaptime: 1700000000\n"
    )
    conf = parse_ct_conf(text)
    assert conf.main["description"] == "Docker: here"
    assert conf.lxc[1] == ("lxc.mount.entry", "/dev/kvm dev/kvm none bind,optional,create=file")
    assert conf.pending == {"features": "keyctl=1,nesting=1"}
    assert conf.sections["before-docker"].values["snaptime"] == "1700000000"
    assert write_ct_conf(conf) == text


def test_generated_cluster_mixes_vms_and_containers(tmp_path: Path) -> None:
    cluster = generate_cluster(nodes=4, vms=70, cts=30)
    assert len(cluster.all_vms()) == 70
    cts = cluster.all_cts()
    assert [c.vmid for c in cts] == list(range(170, 200))
    assert any(c.running for c in cts)
    assert not all(c.running for c in cts)
    written = load_cluster(write_cluster(tmp_path / "g", nodes=4, vms=70, cts=30))
    assert [(c.vmid, c.node, c.running, c.conf.text) for c in written.all_cts()] == [
        (c.vmid, c.node, c.running, c.conf.text) for c in cts
    ]
