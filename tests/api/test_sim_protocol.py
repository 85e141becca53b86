"""The simulator refuses what Proxmox refuses: 501, 400 with per-parameter errors, 401, 403, 595,
and it holds the code under test to the schema (issue 13, point 8)."""

from __future__ import annotations

import hashlib
import json
import ssl

import pytest

from tests.pvesim import PveSim, load_cluster, totp_now
from tests.pvesim.fixture_clusters import CLUSTERS
from tests.pvesim.server import ROOT_PASSWORD

pytest_plugins = ["tests.pvesim.fixtures"]
UNDEFINED = "property is not defined in schema and the schema does not allow additional properties"


def test_a_path_the_schema_lacks_is_501_with_proxmox_text(pve_sim: PveSim) -> None:
    resp = pve_sim.request("GET", "/nodes/pve1/qemu/101/bogus")
    assert resp.status == 501
    assert resp.reason == "Method 'GET /nodes/pve1/qemu/101/bogus' not implemented"
    assert resp.json == {
        "data": None,
        "message": "Method 'GET /nodes/pve1/qemu/101/bogus' not implemented\n",
    }
    # a path that exists with a method it lacks
    assert pve_sim.request("DELETE", "/version").status == 501


def test_an_undefined_parameter_is_400_with_an_errors_object(pve_sim: PveSim) -> None:
    resp = pve_sim.request("GET", "/nodes/pve1/qemu/101/config", {"current": 1, "full": 1})
    assert resp.status == 400
    assert resp.reason == "Parameter verification failed."
    body = resp.json
    assert body["data"] is None
    assert body["message"] == "Parameter verification failed.\n"
    assert body["errors"] == {"full": UNDEFINED}


@pytest.mark.parametrize(
    ("method", "path", "params", "param", "text"),
    [
        ("GET", "/cluster/resources", {"type": "vms"}, "type",
         "value 'vms' does not have a value in the enumeration 'vm, storage, node, sdn'"),
        ("GET", "/nodes/pve1/qemu/101/config", {"current": "maybe"}, "current",
         "type check ('boolean') failed - got 'maybe'"),
        ("GET", "/nodes/pve1/qemu/99/config", {}, "vmid", "value must have a minimum value of 100"),
        ("GET", "/nodes/pve1/qemu/abc/config", {}, "vmid",
         "type check ('integer') failed - got 'abc'"),
        ("GET", "/nodes/pve_1/status", {}, "node",
         "invalid format - value does not look like a valid node name\n"),
        ("POST", "/nodes/pve1/status", {"command": "halt"}, "command",
         "value 'halt' does not have a value in the enumeration 'reboot, shutdown'"),
        ("PUT", "/nodes/pve1/qemu/103/config", {"cpu": "host,flagz=+vmx"}, "cpu",
         "invalid format - format error\nflagz: property is not defined in schema and the schema "
         "does not allow additional properties\n"),
        ("PUT", "/nodes/pve1/qemu/103/config", {"net0": "virtio,tag=5000"}, "net0",
         "invalid format - format error\ntag: value must have a maximum value of 4094\n"),
        ("PUT", "/nodes/pve1/qemu/103/config", {"net40": "virtio"}, "net40", UNDEFINED),
        ("GET", "/nodes/pve1/qemu/101/rrddata", {}, "timeframe",
         "property is missing and it is not optional"),
        ("GET", "/nodes/pve1/qemu/101/agent/file-read", {"file": "/x", "count": 0}, "count",
         "value must have a minimum value of 1"),
    ],
)  # fmt: skip
def test_invalid_parameters_are_refused_per_parameter(
    pve_sim: PveSim, method: str, path: str, params: dict[str, object], param: str, text: str
) -> None:
    resp = pve_sim.request(method, path, params)
    assert resp.status == 400, resp.body
    assert resp.json["errors"] == {param: text}
    # only format errors end in a newline (pve-api-facts.md)
    assert text.endswith("\n") == text.startswith("invalid format")


def test_every_request_is_logged_and_held_to_the_schema(pve_sim: PveSim) -> None:
    pve_sim.request("GET", "/version", harness=False)
    assert pve_sim.conformance_problems() == []
    with pve_sim.nonconforming():
        pve_sim.request("GET", "/cluster/resources", {"type": "vms"}, harness=False)
        pve_sim.request("GET", "/nodes/pve1/nothing", harness=False)
    assert pve_sim.conformance_problems() == []  # exempt inside nonconforming()
    pve_sim.request("GET", "/nodes/pve1/qemu/101/config", {"currrent": 1}, harness=False)
    pve_sim.request("POST", "/nodes/pve1/qemu/101/status/current", harness=False)
    problems = pve_sim.conformance_problems()
    assert problems == [
        f"GET /nodes/pve1/qemu/101/config: parameter 'currrent': {UNDEFINED}",
        "POST /nodes/pve1/qemu/101/status/current: no such path or method in the schema",
    ]
    with pytest.raises(AssertionError, match="currrent"):
        pve_sim.assert_conformant()
    records = pve_sim.requests
    assert [r.status for r in records[-2:]] == [400, 501]
    assert records[-2].template == "/nodes/{node}/qemu/{vmid}/config"
    assert records[-2].identity == "root@pam!pvesim"
    pve_sim.clear_requests()  # so the fixture's own check at teardown passes


def test_a_bad_token_is_401_with_an_empty_body(pve_sim: PveSim) -> None:
    resp = pve_sim.request("GET", "/version", token="root@pam!pvesim=not-the-secret")
    assert (resp.status, resp.body) == (401, b"")
    resp = pve_sim.request("GET", "/version", token="")
    assert resp.status == 401
    assert resp.reason == "No ticket"


def test_ticket_login_needs_csrf_on_writes(pve_sim: PveSim) -> None:
    bad = pve_sim.request(
        "POST", "/access/ticket", {"username": "root@pam", "password": "wrong"}, token=""
    )
    assert (bad.status, bad.reason) == (401, "authentication failure")
    ticket, csrf = pve_sim.login()
    assert ticket.startswith("PVE:root@pam:")
    assert pve_sim.requests[-1].params == {"username": "root@pam", "password": "<redacted>"}
    assert pve_sim.request("GET", "/nodes/pve1/qemu/103/config", ticket=ticket).status == 200
    no_csrf = pve_sim.request("PUT", "/nodes/pve1/qemu/103/config", {"name": "x"}, ticket=ticket)
    assert (no_csrf.status, no_csrf.reason) == (401, "Permission denied - invalid csrf token")
    ok = pve_sim.request(
        "PUT", "/nodes/pve1/qemu/103/config", {"name": "x"}, ticket=ticket, csrf=csrf
    )
    assert ok.status == 200
    assert ok.json == {"data": None}
    forged = pve_sim.request("GET", "/version", ticket=ticket + "x")
    assert forged.status == 401


def test_username_and_realm_given_apart(pve_sim: PveSim) -> None:
    resp = pve_sim.request(
        "POST",
        "/access/ticket",
        {"username": "root", "realm": "pam", "password": ROOT_PASSWORD},
        token="",
    )
    assert resp.data["username"] == "root@pam"


def test_totp_second_factor(pve_sim: PveSim) -> None:
    secret = "JBSWY3DPEHPK3PXP"
    pve_sim.add_user("alice@pve", "pw", privs=["PVEAuditor"], totp_secret=secret)
    first = pve_sim.request(
        "POST", "/access/ticket", {"username": "alice@pve", "password": "pw"}, token=""
    ).data
    assert first["NeedTFA"] == 1
    assert pve_sim.request("GET", "/version", ticket=first["ticket"]).status == 401
    second = pve_sim.request(
        "POST",
        "/access/ticket",
        {"username": "alice@pve", "tfa-challenge": first["ticket"],
         "password": f"totp:{totp_now(secret)}"},
        token="",
    ).data  # fmt: skip
    assert pve_sim.request("GET", "/version", ticket=second["ticket"]).status == 200
    old_style = pve_sim.request(
        "POST",
        "/access/ticket",
        {"username": "alice@pve", "password": "pw", "otp": totp_now(secret)},
        token="",
    )
    assert "CSRFPreventionToken" in old_style.data


@pytest.mark.parametrize(
    ("method", "path", "params", "privs", "missing"),
    [
        ("GET", "/nodes/pve1/qemu/101/config", {}, ["Sys.Audit"], "/vms/101, VM.Audit"),
        ("GET", "/nodes/pve1/status", {}, ["VM.Audit"], "/nodes/pve1, Sys.Audit"),
        ("PUT", "/nodes/pve1/qemu/103/config", {"cpu": "host"}, ["VM.Audit", "VM.Config.Options"],
         "/vms/103, VM.Config.CPU"),
        ("POST", "/nodes/pve1/qemu/103/status/start", {}, ["VM.Audit"], "/vms/103, VM.PowerMgmt"),
        ("POST", "/nodes/pve1/qemu/101/agent/ping", {}, ["VM.Audit"],
         "/vms/101, VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted"),
        ("GET", "/nodes/pve1/qemu/101/agent/file-read", {"file": "/proc/cpuinfo"},
         ["VM.GuestAgent.Audit"], "/vms/101, VM.GuestAgent.FileRead|VM.GuestAgent.Unrestricted"),
        ("POST", "/nodes/pve1/qemu/101/firewall/rules", {"type": "in", "action": "ACCEPT"},
         ["VM.Audit"], "/vms/101, VM.Config.Network"),
        ("PUT", "/cluster/firewall/options", {"enable": 1}, ["Sys.Audit"], "/, Sys.Modify"),
    ],
)  # fmt: skip
def test_403_names_the_missing_privilege(
    pve_sim: PveSim,
    method: str,
    path: str,
    params: dict[str, object],
    privs: list[str],
    missing: str,
) -> None:
    token = pve_sim.add_token("auditor@pve", "t", privs=privs, privsep=False)
    pve_sim.users.users["auditor@pve"].acl = {"/": frozenset(privs)}
    resp = pve_sim.request(method, path, params, token=token)
    assert resp.status == 403, resp.body
    assert resp.json["message"] == f"Permission check failed ({missing})\n"
    assert resp.reason == f"Permission check failed ({missing})"


def test_privilege_separated_token_holds_only_what_both_grant(pve_sim: PveSim) -> None:
    pve_sim.add_user("ops@pve", privs={"/": ["PVEAuditor"], "/vms/103": ["PVEVMAdmin"]})
    token = pve_sim.add_token("ops@pve", "ro", privs=["VM.Audit"])
    assert pve_sim.request("GET", "/nodes/pve1/qemu/103/config", token=token).status == 200
    resp = pve_sim.request("POST", "/nodes/pve1/qemu/103/status/start", token=token)
    assert resp.status == 403
    full = pve_sim.add_token("ops@pve", "rw", privsep=False)
    assert pve_sim.request("POST", "/nodes/pve1/qemu/103/status/start", token=full).status == 200
    # a deeper ACL entry replaces what the root grants: no power on VM 101
    assert pve_sim.request("POST", "/nodes/pve1/qemu/101/status/stop", token=full).status == 403


def test_only_root_password_login_may_set_args(pve_sim: PveSim) -> None:
    resp = pve_sim.request("PUT", "/nodes/pve1/qemu/103/config", {"args": "-cpu host"})
    assert resp.status == 500
    assert resp.json["message"] == "only root can set 'args' config\n"
    ticket, csrf = pve_sim.login()
    ok = pve_sim.request(
        "PUT", "/nodes/pve1/qemu/103/config", {"args": "-cpu host"}, ticket=ticket, csrf=csrf
    )
    assert ok.status == 200


def test_an_unreachable_node_is_595_but_cluster_wide_data_still_answers(pve_sim: PveSim) -> None:
    resp = pve_sim.request("GET", "/nodes/pve3/status")
    assert resp.status == 595
    assert pve_sim.request("GET", "/nodes/pve3/qemu/301/config").status == 595
    nodes = {
        n["node"]: n for n in pve_sim.request("GET", "/cluster/resources", {"type": "node"}).data
    }
    assert nodes["pve3"]["status"] == "offline"
    vms = {v["vmid"]: v for v in pve_sim.request("GET", "/cluster/resources", {"type": "vm"}).data}
    assert vms[301]["status"] == "unknown"
    # the VM firewall is read from the cluster file system, not proxied: it answers
    assert pve_sim.request("GET", "/nodes/pve3/qemu/301/firewall/rules").status == 200
    pve_sim.cluster.set_node_online("pve3", True)
    assert pve_sim.request("GET", "/nodes/pve3/status").status == 200


def test_an_unknown_node_is_proxmoxs_hostname_lookup_error(pve_sim: PveSim) -> None:
    resp = pve_sim.request("GET", "/nodes/pve9/status")
    assert resp.status == 500
    assert resp.json["message"].startswith("hostname lookup 'pve9' failed")


def test_old_server_has_the_message_only_in_the_reason_phrase() -> None:
    with PveSim(load_cluster(CLUSTERS / "lab"), old_server=True) as sim:
        resp = sim.request("GET", "/nodes/pve1/qemu/101/config", {"bogus": 1})
        assert resp.status == 400
        assert resp.reason == "Parameter verification failed."
        assert resp.json == {"data": None, "errors": {"bogus": resp.json["errors"]["bogus"]}}
        resp = sim.request("GET", "/nodes/pve1/qemu/999/config")
        assert resp.json == {"data": None}
        assert resp.reason == "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"


def test_the_certificate_is_self_signed_and_its_fingerprint_is_proxmox_shaped(
    pve_sim: PveSim,
) -> None:
    der = ssl.PEM_cert_to_DER_cert(pve_sim.cert_path.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    assert pve_sim.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    served = ssl.get_server_certificate(("127.0.0.1", pve_sim.port))
    assert ssl.PEM_cert_to_DER_cert(served) == der
    nodes = pve_sim.request("GET", "/nodes").data
    assert {n["ssl_fingerprint"] for n in nodes if n["status"] == "online"} == {pve_sim.fingerprint}


def test_json_bodies_are_accepted_like_form_bodies(pve_sim: PveSim) -> None:
    resp = pve_sim.request(
        "POST", "/nodes/pve1/qemu/101/agent/exec", {"command": ["kvm-ok"]}, as_json=True
    )
    assert resp.status == 200, resp.body
    assert json.loads(resp.body)["data"]["pid"] > 0
