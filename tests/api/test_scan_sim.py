"""`nestctl doctor/vm --api` against the simulated `lab` cluster (tests.pvesim).

Every request sent here is checked against Proxmox's schema at teardown (pve_sim fixture).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from nestctl.api.client import ApiClient
from nestctl.api.credentials import UserPassword
from nestctl.host.probe import probe_host
from nestctl.machine import Host
from nestctl.vm.collect.api import NestedReading, collect_api
from nestctl.vm.facts import VmOptions
from nestctl.vm.remote import vm_report
from nestctl.vm.report import collect
from tests.api.clirun import nestctl, nestctl_json
from tests.pvesim import ROOT_PASSWORD, PveSim

pytest_plugins = ["tests.pvesim.fixtures", "tests.api.simclient"]

LAB = Path(__file__).resolve().parents[1] / "data" / "clusters" / "lab"


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return str(path)


def api_args(sim: PveSim, tmp_path: Path) -> list[str]:
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--token-file",
            token_file(tmp_path, sim.root_token)]  # fmt: skip


def by_id(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {v["vmid"]: v for v in data["vms"]}


def test_doctor_api_lists_every_vm_once_with_the_offline_node_as_findings(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = nestctl_json(capsys, "doctor", *api_args(pve_sim, tmp_path))
    vmids = [v["vmid"] for v in data["vms"]]
    assert vmids == sorted({vm.vmid for vm in pve_sim.cluster.all_vms()})  # each exactly once
    nodes = {n["node"]: n for n in data["nodes"]}
    assert (nodes["pve1"]["vendor"], nodes["pve1"]["virt_flag"]) == ("intel", "vmx")
    assert (nodes["pve2"]["vendor"], nodes["pve2"]["virt_flag"]) == ("amd", "svm")
    assert nodes["pve3"]["reachable"] is False
    lost = by_id(data)[301]
    assert lost["cpu_arg"] is None
    assert lost["nested"]["exposed"] is None
    assert lost["findings"][0]["code"] == "vm.unreachable"
    assert by_id(data)[102]["cpu_arg_pending"] is not None  # [PENDING] cpu: host
    assert by_id(data)[104]["lock"] == "backup"
    assert code in (1, 2)
    assert pve_sim.conformance_problems() == []


def test_ticket_login_gives_the_same_report_as_a_token(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, with_token = nestctl_json(capsys, "vm", *api_args(pve_sim, tmp_path))
    password = tmp_path / "pw"
    password.write_text(ROOT_PASSWORD + "\n")
    _, with_ticket = nestctl_json(
        capsys, "vm", "--api", pve_sim.url, "--fingerprint", pve_sim.fingerprint,
        "--user", "root@pam", "--password-file", str(password),
    )  # fmt: skip
    assert with_ticket == with_token
    identities = {r.identity for r in pve_sim.requests if not r.harness}
    assert any("!" in str(i) for i in identities)  # the token
    assert "root@pam" in identities  # the ticket


def test_missing_privilege_is_named(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.add_user("ops@pve", "pw", privs={"/vms": ["VM.Audit"]})
    token = pve_sim.add_token("ops@pve", "scan", privsep=False)
    code, data = nestctl_json(
        capsys, "doctor", "--api", pve_sim.url, "--fingerprint", pve_sim.fingerprint,
        "--token-file", token_file(tmp_path, token),
    )  # fmt: skip
    node = {n["node"]: n for n in data["nodes"]}["pve1"]
    problem = next(f for f in node["findings"] if f["code"] == "api.node.not-permitted")
    assert "Sys.Audit" in problem["fix"]
    assert by_id(data)[101]["cpu_arg"] is not None  # VMs still checked
    assert code in (1, 2)


def test_concurrent_scan_under_injected_failures_completes(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.fail(path=r"/qemu/101/pending$", status=500, message="got timeout")
    pve_sim.fail(path=r"/qemu/201/pending$", kind="malformed")
    pve_sim.fail(path=r"/qemu/103/pending$", kind="drop")
    pve_sim.fail(path=r"/nodes/pve1/apt/versions$", status=403,
                 message="Permission check failed (/nodes/pve1, Sys.Audit)")  # fmt: skip
    code, data = nestctl_json(capsys, "doctor", *api_args(pve_sim, tmp_path), "--concurrency", "8")
    vms = by_id(data)
    failed = {v for v, body in vms.items() if body["findings"][:1]
              and body["findings"][0]["code"] == "vm.unreachable"}  # fmt: skip
    assert failed == {101, 103, 201, 301}
    assert vms[102]["cpu_arg"] is not None
    assert vms[202]["cpu_arg"] is not None
    assert code in (1, 2)


def as_proxmox_started(root: Path) -> set[int]:
    """Give each running QEMU the -cpu Proxmox builds from the config in force.

    The fixture's command lines carry a shortened -cpu (`host`); Proxmox always starts QEMU with
    the value it builds (`host,+kvm_pv_eoi,+kvm_pv_unhalt`). The API shows no command line, so
    it can only assume that value: compare on processes Proxmox really could have started.
    """
    built = {
        v["vmid"]: v["cpu_arg"]
        for v in collect(Host(str(root)), VmOptions(use_qemu=False, sections=False)).payload["vms"]
    }
    impossible = set()
    for pidfile in (root / "var/run/qemu-server").glob("*.pid"):
        if built[int(pidfile.stem)] is None:  # Proxmox refuses this config: it cannot run
            impossible.add(int(pidfile.stem))
            continue
        cmdline = root / "proc" / pidfile.read_text().strip() / "cmdline"
        argv = cmdline.read_bytes().split(b"\0")
        at = argv.index(b"-cpu") + 1
        argv[at] = built[int(pidfile.stem)].encode()
        cmdline.write_bytes(b"\0".join(argv))
    return impossible


@pytest.mark.parametrize("node", ["pve1", "pve2"])
def test_local_and_remote_verdicts_agree(
    pve_sim: PveSim, sim_client: ApiClient, node: str, tmp_path: Path
) -> None:
    """The same node's VMs, read from its files and through the API, give the same answers.

    The API cannot read the nested parameter: here the node's own `nestctl host` answers it,
    as --ssh does.
    """
    root = tmp_path / node
    shutil.copytree(LAB / "nodes" / node, root, symlinks=True)
    impossible = as_proxmox_started(root)
    local = collect(Host(str(root)), VmOptions(use_qemu=False, sections=False)).to_json()
    facts = probe_host(Host(str(root)))

    def over_ssh(name: str, _address: str | None) -> NestedReading:
        assert name == node
        return NestedReading(facts.nested_live)

    client = sim_client
    opts = VmOptions(sections=False, all_nodes=True)
    scan = collect_api(client, opts, nested_reader=lambda n, a: over_ssh(n, a) if n == node
                       else NestedReading(None, problem="other node"))  # fmt: skip
    remote = vm_report(scan, opts).to_json()
    keys = ("cpu_arg", "cpu_arg_pending", "running", "running_cpu_arg", "nested",
            "restart_required", "chain", "broken_link", "lock")  # fmt: skip
    remote_vms = {v["vmid"]: v for v in remote["vms"] if v["node"] == node}
    compared = [v for v in local["vms"] if v["vmid"] not in impossible]
    assert compared
    for vm in compared:
        theirs = remote_vms[vm["vmid"]]
        for key in keys:
            assert theirs[key] == vm[key], (vm["vmid"], key)
        assert [f["code"] for f in theirs["findings"]] == [f["code"] for f in vm["findings"]]


def test_ticket_client_logs_in_once_and_sends_csrf(pve_sim: PveSim) -> None:
    creds = UserPassword("root@pam", ROOT_PASSWORD)
    with ApiClient(pve_sim.url, creds, fingerprint=pve_sim.fingerprint) as client:
        assert client.get("/version")["version"]
        client.get("/nodes")
        assert client.is_root_ticket
    assert [r.path for r in pve_sim.requests].count("/access/ticket") == 1


def test_vm_api_with_a_wrong_token_is_exit_2(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = pve_sim.root_token.rsplit("=", 1)[0] + "=00000000-0000-0000-0000-000000000000"
    code, out, err = nestctl(
        capsys, "vm", "--api", pve_sim.url, "--fingerprint", pve_sim.fingerprint,
        "--token-file", token_file(tmp_path, bad), "--json",
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert "HTTP 401" in err


@pytest.mark.parametrize("env", ["unset", "set"])
def test_pinning_holds_whatever_the_environment_says(
    pve_sim: PveSim,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: str,
) -> None:
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
        if env == "set":  # an environment that trusts the simulator's certificate outright
            monkeypatch.setenv(var, str(pve_sim.cert_path))
    args = api_args(pve_sim, tmp_path)
    code, _data = nestctl_json(capsys, "vm", *args)
    assert code in (1, 2)
    wrong = args.copy()
    wrong[wrong.index("--fingerprint") + 1] = pve_sim.fingerprint.replace(
        pve_sim.fingerprint[:2], "00" if pve_sim.fingerprint[:2] != "00" else "11", 1
    )
    code, out, err = nestctl(capsys, "vm", *wrong, "--json")
    assert (code, out) == (2, "")
    assert "does not match the pinned" in err


def test_the_api_needs_neither_requests_nor_urllib3(
    pve_sim: PveSim,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The transport is the standard library's http.client (issue 24): a host without
    # python3-requests (or python3-urllib3) still checks its cluster.
    for name in [m for m in sys.modules if m.split(".")[0] in ("requests", "urllib3")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "requests", None)
    monkeypatch.setitem(sys.modules, "urllib3", None)
    code, data = nestctl_json(capsys, "doctor", *api_args(pve_sim, tmp_path))
    assert code in (0, 1)
    assert data["vms"]
