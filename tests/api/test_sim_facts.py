"""The simulator answers as pve-api-facts.md says real servers do (PVE 6.2 - 9.2)."""

from __future__ import annotations

import hashlib
import re
import urllib.parse

import pytest

from nestctl.vm.config import parse_vm_config
from tests.pvesim import PveSim
from tests.pvesim.fixture_clusters import CLUSTERS

pytest_plugins = ["tests.pvesim.fixtures"]
UPID = re.compile(r"UPID:[a-z0-9-]+:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:\w+:\d*:[^:]+:")


def test_node_status_cpuinfo_has_no_vendor_and_hvm_is_the_string_1(pve_sim: PveSim) -> None:
    status = pve_sim.request("GET", "/nodes/pve1/status").data
    cpuinfo = status["cpuinfo"]
    assert "vendor" not in cpuinfo
    assert "family" not in cpuinfo
    assert cpuinfo["hvm"] == "1"
    assert cpuinfo["model"] == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    assert "vmx" in cpuinfo["flags"].split()
    assert isinstance(cpuinfo["mhz"], str)
    assert all(isinstance(x, str) for x in status["loadavg"])
    assert status["boot-info"] == {"mode": "efi", "secureboot": 0}  # 9.x
    assert set(status["current-kernel"]) == {"sysname", "release", "version", "machine"}
    assert "available" in status["memory"]
    old = pve_sim.request("GET", "/nodes/pve2/status").data  # 8.4
    assert old["boot-info"] == {"mode": "efi"}
    assert "current-kernel" not in old
    assert "svm" in old["cpuinfo"]["flags"].split()


def test_hvm_is_absent_without_vmx_or_svm(pve_sim: PveSim) -> None:
    pve_sim.cluster.nodes["pve1"].cpu_flags = "fpu sse sse2 hypervisor"
    assert "hvm" not in pve_sim.request("GET", "/nodes/pve1/status").data["cpuinfo"]


@pytest.mark.parametrize(
    ("pve_cluster", "version", "repoid_len", "keyboard"),
    [("lab", "9.2.2", 16, False), ("pve7", "7.4-16", 8, False), ("pve62", "6.2-4", 8, True)],
    indirect=["pve_cluster"],
)
def test_version_per_pve_release(
    pve_sim: PveSim, version: str, repoid_len: int, keyboard: bool
) -> None:
    data = pve_sim.request("GET", "/version").data
    assert data["version"] == version
    assert re.fullmatch(f"[0-9a-f]{{{repoid_len}}}", data["repoid"])
    assert ("keyboard" in data) == keyboard


@pytest.mark.parametrize("pve_cluster", ["pve62"], indirect=True)
def test_pve62_sends_vmid_and_pid_as_strings_and_no_running_machine(pve_sim: PveSim) -> None:
    running = pve_sim.request("GET", "/nodes/pve62/qemu/100/status/current").data
    assert running["vmid"] == "100"
    assert running["pid"] == "5100"
    assert running["nics"]["tap100i0"] == {"netin": "123456", "netout": "65432"}
    assert "running-machine" not in running
    stopped = pve_sim.request("GET", "/nodes/pve62/qemu/110/status/current").data
    assert stopped["pid"] is None
    assert stopped["template"] == ""


@pytest.mark.parametrize("pve_cluster", ["pve7"], indirect=True)
def test_pve7_config_carries_boot_space_and_status_running_machine(pve_sim: PveSim) -> None:
    assert pve_sim.request("GET", "/nodes/pve7/qemu/100/config").data["boot"] == " "
    status = pve_sim.request("GET", "/nodes/pve7/qemu/100/status/current").data
    assert status["running-machine"] == "pc-i440fx-7.2+pve0"
    assert status["running-qemu"] == "7.2.0"
    assert "clipboard" not in status  # 8.2+
    cluster = pve_sim.request("GET", "/cluster/status").data
    assert [e["type"] for e in cluster] == ["node"]  # a standalone node has no cluster entry


def test_status_current_running_and_stopped(pve_sim: PveSim) -> None:
    running = pve_sim.request("GET", "/nodes/pve1/qemu/101/status/current").data
    assert running["status"] == "running"
    assert running["running-machine"] == "pc-q35-10.0+pve1"
    assert running["running-qemu"] == "11.0.2"
    assert running["agent"] == 1
    assert running["clipboard"] is None
    assert "backup-fleecing" in running["proxmox-support"]
    assert "memhost" in running
    assert "pressurecpusome" in running
    stopped = pve_sim.request("GET", "/nodes/pve2/qemu/202/status/current").data
    assert stopped["status"] == "stopped"
    assert stopped["agent"] == 1  # the config enables it, even though the VM is stopped
    assert "running-machine" not in stopped
    assert "pid" not in stopped
    assert "agent" not in pve_sim.request("GET", "/nodes/pve1/qemu/103/status/current").data


def test_config_types_digest_and_pending(pve_sim: PveSim) -> None:
    path = CLUSTERS / "lab/nodes/pve1/etc/pve/qemu-server/102.conf"
    text = path.read_text()
    config = pve_sim.request("GET", "/nodes/pve1/qemu/102/config").data
    assert config["memory"] == "16384"
    assert config["agent"] == "1"
    assert config["cores"] == 4
    assert config["cpu"] == "host"  # pending applied without current=1
    assert config["digest"] == hashlib.sha1(text.encode()).hexdigest()
    assert config["digest"] == parse_vm_config(text, 102, str(path)).digest  # nestctl agrees
    current = pve_sim.request("GET", "/nodes/pve1/qemu/102/config", {"current": 1}).data
    assert current["cpu"] == "x86-64-v2-AES"
    pending = pve_sim.request("GET", "/nodes/pve1/qemu/102/pending").data
    cpu = next(e for e in pending if e["key"] == "cpu")
    assert cpu == {"key": "cpu", "value": "x86-64-v2-AES", "pending": "host"}
    cores = next(e for e in pending if e["key"] == "cores")
    assert cores == {"key": "cores", "value": 4}


def test_config_update_is_refused_on_a_concurrent_change(pve_sim: PveSim) -> None:
    url = "/nodes/pve1/qemu/103/config"
    digest = pve_sim.request("GET", url).data["digest"]
    assert re.fullmatch("[0-9a-f]{40}", digest)
    pve_sim.cluster.edit_config(103, description="changed by someone else")
    resp = pve_sim.request("PUT", url, {"cpu": "host", "digest": digest})
    assert resp.status == 500
    assert resp.json["message"] == (
        "detected modified configuration - file changed by other user? Try again.\n"
    )
    assert "cpu" not in pve_sim.request("GET", url).data
    fresh = pve_sim.request("GET", url).data["digest"]
    assert pve_sim.request("PUT", url, {"cpu": "host", "digest": fresh}).status == 200
    after = pve_sim.request("GET", url).data
    assert after["cpu"] == "host"  # a stopped VM takes the change at once
    assert after["digest"] != fresh
    assert "#changed by someone else" in pve_sim.cluster.vm(103).conf.text  # Proxmox's writer


def test_a_locked_vm_refuses_config_changes(pve_sim: PveSim) -> None:
    resp = pve_sim.request("PUT", "/nodes/pve1/qemu/104/config", {"cpu": "kvm64"})
    assert (resp.status, resp.json["message"]) == (500, "VM is locked (backup)\n")


def test_running_vm_keeps_cpu_pending_until_reboot(pve_sim: PveSim) -> None:
    url = "/nodes/pve1/qemu/101/config"
    pve_sim.request("PUT", url, {"cpu": "host,flags=+pcid", "name": "renamed", "delete": "agent"})
    current = pve_sim.request("GET", url, {"current": 1}).data
    assert current["cpu"] == "host"  # not hot-pluggable: pending
    assert current["name"] == "renamed"  # hot-pluggable: at once
    assert current["agent"] == "1"
    pending = {e["key"]: e for e in pve_sim.request("GET", "/nodes/pve1/qemu/101/pending").data}
    assert pending["cpu"]["pending"] == "host,flags=+pcid"
    assert pending["agent"]["delete"] == 1
    reset = pve_sim.request("POST", "/nodes/pve1/qemu/101/status/reset").data
    assert pve_sim.wait_task("pve1", reset)["exitstatus"] == "OK"
    assert pve_sim.request("GET", url, {"current": 1}).data["cpu"] == "host"  # reset: same QEMU
    upid = pve_sim.request("POST", "/nodes/pve1/qemu/101/status/reboot").data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    current = pve_sim.request("GET", url, {"current": 1}).data
    assert current["cpu"] == "host,flags=+pcid"
    assert "agent" not in current
    left = pve_sim.request("GET", "/nodes/pve1/qemu/101/pending").data
    assert all(set(entry) == {"key", "value"} for entry in left)  # nothing pending any more


def test_tasks_have_real_upids_no_exitstatus_while_running_and_fail_with_200(
    pve_sim: PveSim,
) -> None:
    pve_sim.cluster.task_seconds = 0.3
    upid = pve_sim.request("POST", "/nodes/pve1/qemu/103/status/start").data
    assert UPID.fullmatch(upid), upid
    assert upid.endswith(":qmstart:103:root@pam!pvesim:")
    quoted = urllib.parse.quote(upid)
    running = pve_sim.request("GET", f"/nodes/pve1/tasks/{quoted}/status").data
    assert running["status"] == "running"
    assert "exitstatus" not in running
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    assert pve_sim.request("GET", "/nodes/pve1/qemu/103/status/current").data["status"] == "running"
    again = pve_sim.request("POST", "/nodes/pve1/qemu/103/status/start").data
    failed = pve_sim.request("GET", f"/nodes/pve1/tasks/{urllib.parse.quote(again)}/status")
    while failed.data["status"] == "running":
        failed = pve_sim.request("GET", f"/nodes/pve1/tasks/{urllib.parse.quote(again)}/status")
    assert failed.status == 200
    assert failed.data["exitstatus"] == "VM 103 already running"
    log = pve_sim.request("GET", f"/nodes/pve1/tasks/{urllib.parse.quote(again)}/log").json
    assert log["total"] == len(log["data"]) == 2
    assert log["data"][-1] == {"n": 2, "t": "TASK ERROR: VM 103 already running"}
    listed = pve_sim.request("GET", "/nodes/pve1/tasks", {"vmid": 103}).data
    assert [t["status"] for t in listed] == ["VM 103 already running", "OK"]


def test_power_actions_change_state(pve_sim: PveSim) -> None:
    def act(action: str, vmid: int = 201) -> str:
        upid = pve_sim.request("POST", f"/nodes/pve2/qemu/{vmid}/status/{action}").data
        return str(pve_sim.wait_task("pve2", upid)["exitstatus"])

    def qmp() -> str:
        return str(pve_sim.request("GET", "/nodes/pve2/qemu/201/status/current").data["qmpstatus"])

    assert act("suspend") == "OK"
    assert qmp() == "paused"
    assert act("resume") == "OK"
    assert qmp() == "running"
    assert act("shutdown") == "OK"
    assert qmp() == "stopped"
    assert act("stop") == "VM 201 not running"
    # 201's `cpu: EPYC-v4,flags=+svm` was written by hand: qemu-server cannot start it
    assert act("start").startswith("VM-specific CPU flags must be a subset of: aes,")
    assert qmp() == "stopped"
    assert act("start", 202) == "OK"
    status = pve_sim.request("GET", "/nodes/pve2/qemu/202/status/current").data
    assert status["running-machine"] == "pc-i440fx-9.2+pve0"  # no machine: pinned at start
    locked = pve_sim.request("POST", "/nodes/pve1/qemu/104/status/start").data
    assert pve_sim.wait_task("pve1", locked)["exitstatus"] == "VM is locked (backup)"


def test_node_reboot_takes_the_node_away_for_a_while(pve_sim: PveSim) -> None:
    assert pve_sim.request("POST", "/nodes/pve2/status", {"command": "reboot"}).data is None
    assert pve_sim.request("GET", "/nodes/pve2/status").status == 595
    pve_sim.cluster.nodes["pve2"].back_at = 0.0  # the reboot is over
    status = pve_sim.request("GET", "/nodes/pve2/status")
    assert status.status == 200
    assert status.data["uptime"] < 5
    vm = pve_sim.request("GET", "/nodes/pve2/qemu/201/status/current").data
    assert vm["status"] == "stopped"


def test_guest_agent_answers_and_refusals(pve_sim: PveSim) -> None:
    base = "/nodes/pve1/qemu/101/agent"
    assert pve_sim.request("POST", f"{base}/ping").data == {"result": {}}
    osinfo = pve_sim.request("GET", f"{base}/get-osinfo").data["result"]
    assert osinfo["id"] == "debian"
    cpuinfo = pve_sim.request("GET", f"{base}/file-read", {"file": "/proc/cpuinfo"}).data
    assert "vmx" in cpuinfo["content"]
    assert "truncated" not in cpuinfo
    short = pve_sim.request("GET", f"{base}/file-read", {"file": "/proc/cpuinfo", "count": 10})
    assert short.data == {"content": cpuinfo["content"][:10], "truncated": 1}
    missing = pve_sim.request("GET", f"{base}/file-read", {"file": "/nope"})
    assert missing.status == 500
    pid = pve_sim.request("POST", f"{base}/exec", {"command": ["kvm-ok"]}).data["pid"]
    done = pve_sim.request("GET", f"{base}/exec-status", {"pid": pid}).data
    assert done["exited"] == 1
    assert done["exitcode"] == 0
    assert "KVM acceleration can be used" in done["out-data"]
    gone = pve_sim.request("GET", f"{base}/exec-status", {"pid": pid})  # reported once, forgotten
    assert gone.json["message"] == "Agent error: Invalid parameter 'pid'\n"
    unknown = pve_sim.request("POST", f"{base}/exec", {"command": ["no-such-tool"]})
    assert unknown.status == 500
    assert "Failed to execute child process" in unknown.json["message"]
    dead = pve_sim.request("POST", "/nodes/pve1/qemu/102/agent/ping")
    assert dead.json["message"] == "QEMU guest agent is not running\n"
    off = pve_sim.request("POST", "/nodes/pve1/qemu/103/agent/ping")
    assert off.json["message"] == "VM 103 is not running\n"


def test_rrddata_leaves_out_missing_samples(pve_sim: PveSim) -> None:
    stopped = pve_sim.request("GET", "/nodes/pve1/qemu/103/rrddata", {"timeframe": "hour"}).data
    assert stopped
    assert all(set(sample) == {"time"} for sample in stopped)
    running = pve_sim.request("GET", "/nodes/pve1/qemu/101/rrddata", {"timeframe": "hour"}).data
    assert all(value is not None for sample in running for value in sample.values())
    assert "cpu" in running[-1]


def test_firewall_rules_digest_and_moveto(pve_sim: PveSim) -> None:
    url = "/nodes/pve1/qemu/101/firewall/rules"
    rules = pve_sim.request("GET", url).data
    assert [r["pos"] for r in rules] == [0, 1, 2]
    assert len({r["digest"] for r in rules}) == 1
    digest = rules[0]["digest"]
    moved = pve_sim.request("PUT", f"{url}/2", {"moveto": 0, "digest": digest})
    assert moved.status == 200
    after = pve_sim.request("GET", url).data
    assert [r.get("comment") for r in after] == ["parked", "inner web UI", None]
    stale = pve_sim.request("DELETE", f"{url}/0", {"digest": digest})
    assert stale.status == 500
    assert pve_sim.request("PUT", f"{url}/0", {"moveto": 3}).status == 200
    assert [r.get("comment") for r in pve_sim.request("GET", url).data][-1] == "parked"
    made = pve_sim.request("POST", url, {"type": "in", "action": "ACCEPT", "proto": "tcp",
                                         "dport": "443", "enable": 1, "pos": 1})  # fmt: skip
    assert made.status == 200
    assert pve_sim.request("GET", f"{url}/1").data["dport"] == "443"
    bad = pve_sim.request("POST", url, {"type": "in", "action": "ALLOW"})
    assert bad.status == 400
    assert bad.json["errors"] == {"action": "unknown action 'ALLOW'"}
    assert pve_sim.request("GET", f"{url}/9").status == 400
    assert pve_sim.request("DELETE", f"{url}/1").status == 200
    assert len(pve_sim.request("GET", url).data) == 3
    pve_sim.clear_requests()  # the refused POST above was on purpose


def test_firewall_options_with_digest_and_delete(pve_sim: PveSim) -> None:
    url = "/nodes/pve1/qemu/101/firewall/options"
    options = pve_sim.request("GET", url).data
    assert options["enable"] == 1
    resp = pve_sim.request(
        "PUT", url, {"enable": 0, "delete": "policy_in", "digest": options["digest"]}
    )
    assert resp.status == 200
    after = pve_sim.request("GET", url).data
    assert after["enable"] == 0
    assert "policy_in" not in after
    assert pve_sim.request("PUT", url, {"enable": 1, "digest": options["digest"]}).status == 500
    cluster = pve_sim.request("GET", "/cluster/firewall/options").data
    assert cluster["policy_in"] == "DROP"
    node = pve_sim.request("GET", "/nodes/pve1/firewall/rules").data
    assert node[0]["dport"] == "22"


def test_cluster_resources_and_nodes(pve_sim: PveSim) -> None:
    resources = pve_sim.request("GET", "/cluster/resources").data
    vms = [r for r in resources if r["type"] == "qemu"]
    assert sorted(r["vmid"] for r in vms) == [101, 102, 103, 104, 201, 202, 301]
    assert all(isinstance(r["template"], int) for r in vms)
    assert {r["type"] for r in resources} == {"node", "qemu", "lxc", "storage"}
    listed = pve_sim.request("GET", "/nodes/pve1/qemu").data
    assert [v["vmid"] for v in sorted(listed, key=lambda v: v["vmid"])] == [101, 102, 103, 104]
    status = pve_sim.request("GET", "/cluster/status").data
    assert status[0] == {"type": "cluster", "id": "cluster", "name": "lab", "nodes": 3,
                         "quorate": 1, "version": 7}  # fmt: skip
    versions = {p["Package"]: p for p in pve_sim.request("GET", "/nodes/pve2/apt/versions").data}
    assert versions["pve-manager"]["Version"] == "8.4.1"
    assert versions["qemu-server"]["Version"] == "8.3.13"


def test_cpu_models_and_machines_follow_the_node_versions(pve_sim: PveSim) -> None:
    new = {m["name"] for m in pve_sim.request("GET", "/nodes/pve1/capabilities/qemu/cpu").data}
    old = {m["name"] for m in pve_sim.request("GET", "/nodes/pve2/capabilities/qemu/cpu").data}
    assert {"host", "EPYC-v4", "Cooperlake-v2", "x86-64-v2-AES"} <= old < new
    assert "EPYC-Turin" in new - old
    machines = pve_sim.request("GET", "/nodes/pve2/capabilities/qemu/machines").data
    assert machines[0] == {"id": "pc-q35-9.2", "type": "q35", "version": "9.2"}  # QEMU 9.2.0
    assert machines[-1]["id"] == "pc-i440fx-2.3"


def test_cpu_flags_exist_from_pve_9_1(pve_sim: PveSim) -> None:
    flags = pve_sim.request("GET", "/nodes/pve1/capabilities/qemu/cpu-flags").data
    assert flags[0]["name"] == "nested-virt"
    assert pve_sim.request("GET", "/nodes/pve2/capabilities/qemu/cpu-flags").status == 501


def test_a_token_sees_only_the_vms_it_may_audit(pve_sim: PveSim) -> None:
    token = pve_sim.add_token("one@pve", "t", privs={"/vms/101": ["VM.Audit"]}, privsep=False)
    pve_sim.users.users["one@pve"].acl = {"/vms/101": frozenset({"VM.Audit"})}
    vms = pve_sim.request("GET", "/cluster/resources", {"type": "vm"}, token=token).data
    assert [v["vmid"] for v in vms] == [101]


def test_an_injected_task_error_ends_the_task_with_it(pve_sim: PveSim) -> None:
    pve_sim.cluster.vm(101).task_errors["reboot"] = "start failed: QEMU exited with code 1"
    upid = pve_sim.request("POST", "/nodes/pve1/qemu/101/status/reboot").data
    status = pve_sim.wait_task("pve1", upid)
    assert status["exitstatus"] == "start failed: QEMU exited with code 1"


def test_the_inner_lab_is_tied_to_vm_101_by_its_smbios_uuid(pve_sim: PveSim) -> None:
    smbios = pve_sim.request("GET", "/nodes/pve1/qemu/101/config").data["smbios1"]
    dmi = pve_sim.request(
        "GET", "/nodes/pve1/qemu/101/agent/file-read", {"file": "/sys/class/dmi/id/product_uuid"}
    ).data["content"]
    inner = CLUSTERS / "lab-inner/nodes/pve-inner/sys/class/dmi/id/product_uuid"
    assert smbios == f"uuid={dmi.strip()}"
    assert inner.read_text() == dmi
    with PveSim(CLUSTERS / "lab-inner") as inner_sim:
        status = inner_sim.request("GET", "/nodes/pve-inner/status").data
        assert status["cpuinfo"]["hvm"] == "1"
        assert status["cpuinfo"]["cpus"] == 4
        vms = inner_sim.request("GET", "/cluster/resources", {"type": "vm"}).data
        assert sorted(v["vmid"] for v in vms) == [1001, 1002]


@pytest.mark.parametrize(
    ("node", "vmid", "cpu", "error"),
    [
        ("pve1", 103, "host,flags=+vmx",
         "VM-specific CPU flags must be a subset of: aes, amd-no-ssb, amd-ssbd, hv-evmcs, "
         "hv-tlbflush, ibpb, md-clear, nested-virt, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd"),
        ("pve2", 202, "EPYC-v4,flags=+nested-virt",  # 8.4: nested-virt came with PVE 9.1
         "VM-specific CPU flags must be a subset of: aes, amd-no-ssb, amd-ssbd, hv-evmcs, "
         "hv-tlbflush, ibpb, md-clear, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd"),
        ("pve1", 103, "Skylake-Servr",
         "Built-in cputype 'Skylake-Servr' is not defined (missing 'custom-' prefix?)"),
        ("pve1", 103, "host,reported-model=kvm64",
         "Property 'reported-model' not allowed in VM-specific CPU config."),
    ],
)  # fmt: skip
def test_vm_cpu_values_proxmox_refuses(
    pve_sim: PveSim, node: str, vmid: int, cpu: str, error: str
) -> None:
    with pve_sim.nonconforming():
        resp = pve_sim.request(
            "PUT", f"/nodes/{node}/qemu/{vmid}/config", {"cpu": cpu}, harness=False
        )
    assert resp.status == 400
    assert resp.json["errors"] == {"cpu": f"invalid format - {error}\n"}
    ok = pve_sim.request(
        "PUT", "/nodes/pve1/qemu/103/config", {"cpu": "EPYC-v4,flags=+nested-virt"}
    )
    assert ok.status == 200


def test_a_changed_config_is_written_as_proxmox_writes_it(pve_sim: PveSim) -> None:
    pve_sim.cluster.edit_config(102, description="nested: yes\nsecond line")
    text = pve_sim.cluster.vm(102).conf.text
    assert text.startswith("#nested%3A yes\n#second line\nagent: 1\nbios: ovmf\n")  # sorted keys
    assert text.endswith("\n[PENDING]\ncpu: host\n")
    config = pve_sim.request("GET", "/nodes/pve1/qemu/102/config").data
    assert config["description"] == "nested: yes\nsecond line"
    assert config["digest"] == hashlib.sha1(text.encode()).hexdigest()
