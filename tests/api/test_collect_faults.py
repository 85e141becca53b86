"""Faults at exact requests: each becomes a finding in its place, never a traceback.

The cluster is canned on a real TLS server (tests.api.canned_cluster): 401, 403, timeout, 595
and malformed JSON are put on the wire exactly where a real cluster would send them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nestctl.cli import main
from tests.api.canned_cluster import cluster, data
from tests.api.tls_server import Canned, Reply, make_cert, serve

SECRET = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
LINUX = {"name": "web", "ostype": "l26", "cpu": "host"}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def canned() -> Canned:
    c = Canned()
    cluster(
        c,
        nodes={
            "pve1": [
                {"vmid": 100, "status": "running", "config": LINUX},
                {"vmid": 101, "status": "stopped", "config": {"ostype": "l26"}},
                {"vmid": 102, "status": "stopped", "config": LINUX},
                {"vmid": 103, "status": "stopped", "config": {"cpu": "no-such-model"}},
            ],
            "pve2": [{"vmid": 200, "status": "stopped", "config": LINUX}],
        },
    )
    return c


@pytest.fixture
def url(canned: Canned, cert: tuple[Path, Path, str]) -> Iterator[str]:
    with serve(canned, cert[0], cert[1]) as base:
        yield base


def nestctl(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    token = tmp_path / "token"
    token.write_text(f"root@pam!nestctl={SECRET}\n")
    try:
        main([*argv, "--token-file", str(token)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    out, err = capsys.readouterr()
    assert SECRET not in out
    assert SECRET not in err
    return code, out, err


def doctor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, fp: str, *extra: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = nestctl(
        capsys, tmp_path, "doctor", "--api", url, "--fingerprint", fp, "--json", *extra
    )
    assert "Traceback" not in err
    return code, json.loads(out)


def by_id(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {v["vmid"]: v for v in data["vms"]}


def test_doctor_api_contract(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, cert: tuple[Path, Path, str]
) -> None:
    _code, data = doctor(capsys, tmp_path, url, cert[2])
    assert list(data) == ["nodes", "vms", "cts", "findings", "verdict"]  # cts: issue 19
    node = data["nodes"][0]
    assert set(node) == {"node", "reachable", "vendor", "virt_flag", "nested", "findings"}
    assert node["vendor"] == "intel"  # derived from the flags: cpuinfo has no vendor
    assert node["virt_flag"] == "vmx"
    # The API cannot see the module parameter: unknown, with the reason; never guessed.
    assert node["nested"] == {"live": None, "after_reboot": None, "decided_by": None}
    assert any("--ssh" in f["message"] for f in node["findings"])
    assert sorted(by_id(data)) == [100, 101, 102, 103, 200]
    assert by_id(data)[100]["node"] == "pve1"
    # VM 101 is `cpu: host` with no tag: it does not want nesting, so it is neutral ...
    vm101 = by_id(data)[101]
    assert (vm101["wants_nested"], vm101["intent"], vm101["verdict"]) == (
        False,
        "none",
        "not-nested",
    )
    assert vm101["broken_link"] is None
    # ... and --all-vms judges it as if it wanted nesting: its chain breaks at its config.
    _code, data = doctor(capsys, tmp_path, url, cert[2], "--all-vms")
    assert by_id(data)[101]["broken_link"] == "config"
    assert by_id(data)[101]["verdict"] == "not-ready"


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(595, b'{"data":null}', "No route to host"), "No route to host"),
        (Reply(200, b'{"data": [{"key": "cpu", "val', None), "not Proxmox API JSON"),
        (Reply(401, b"", "authentication failure"), "authentication failure"),
        (
            Reply(
                403,
                b'{"data":null,"message":"Permission check failed (/vms/102, VM.Audit)\\n"}',
                "Permission check failed",
            ),
            "VM.Audit",
        ),
    ],
)
def test_one_vm_failing_is_a_finding_and_the_rest_completes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    canned: Canned,
    cert: tuple[Path, Path, str],
    reply: Reply,
    words: str,
) -> None:
    canned.routes["GET", "/nodes/pve1/qemu/102/pending"] = lambda _: reply
    code, data = doctor(capsys, tmp_path, url, cert[2])
    vms = by_id(data)
    assert sorted(vms) == [100, 101, 102, 103, 200]  # every VM exactly once
    bad = vms[102]
    assert bad["cpu_arg"] is None
    assert bad["nested"]["exposed"] is None
    assert [f["code"] for f in bad["findings"]] == ["vm.unreachable"]
    assert words in bad["findings"][0]["message"]
    assert vms[101]["cpu_arg"] is not None  # the rest was checked
    assert "api.partial" in [f["code"] for f in data["findings"]]
    # The verdict is that of what was checked: VM 103's config is refused by Proxmox.
    assert code == 1


def test_node_down_595_and_timeout(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    canned: Canned,
    cert: tuple[Path, Path, str],
) -> None:
    canned.routes["GET", "/nodes/pve2/status"] = lambda _: Reply(595, b"", "No route to host")

    def slow(_: object) -> Reply:
        time.sleep(2.5)
        return Reply(200, b'{"data": []}')

    canned.routes["GET", "/nodes/pve1/qemu/101/pending"] = slow
    code, data = doctor(capsys, tmp_path, url, cert[2], "--timeout", "0.5")
    vms = by_id(data)
    nodes = {n["node"]: n for n in data["nodes"]}
    assert nodes["pve2"]["reachable"] is False
    assert nodes["pve2"]["findings"][0]["code"] == "api.node.unreachable"
    assert vms[200]["cpu_arg"] is None
    assert "could not be reached" in vms[200]["findings"][0]["message"]
    assert "no answer within" in vms[101]["findings"][0]["message"]
    assert vms[100]["cpu_arg"] == "host,+kvm_pv_eoi,+kvm_pv_unhalt"
    assert code == 1  # VM 103: the verdict of what was checked


def test_wrong_fingerprint_is_exit_2_with_no_vm_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, canned: Canned
) -> None:
    wrong = ":".join(["AB"] * 32)
    code, out, err = nestctl(capsys, tmp_path, "doctor", "--api", url, "--fingerprint", wrong,
                             "--json")  # fmt: skip
    assert code == 2
    assert out == ""
    assert "does not match the pinned" in err
    assert canned.seen == []


def test_refused_token_is_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    canned: Canned,
    cert: tuple[Path, Path, str],
) -> None:
    canned.routes["GET", "/version"] = lambda _: Reply(401, b"", "invalid token value!")
    code, out, err = nestctl(
        capsys, tmp_path, "vm", "--api", url, "--fingerprint", cert[2], "--json"
    )
    assert code == 2
    assert out == ""
    assert "HTTP 401: invalid token value!" in err


def test_nothing_checked_is_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    canned: Canned,
    cert: tuple[Path, Path, str],
) -> None:
    for node in ("pve1", "pve2"):
        canned.routes["GET", f"/nodes/{node}/status"] = lambda _: Reply(595, b"", "unreachable")
    code, data = doctor(capsys, tmp_path, url, cert[2])
    assert code == 2
    assert data["verdict"] == "unknown"
    assert len(data["vms"]) == 5


def test_a_custom_cpu_model_over_the_api_is_unknown_not_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    canned: Canned,
    cert: tuple[Path, Path, str],
) -> None:
    # cpu-models.conf is not served by the API: "not found" would be a wrong refusal.
    items = [{"key": "cpu", "value": "custom-nested-epyc"}, {"key": "ostype", "value": "l26"}]
    canned.routes["GET", "/nodes/pve1/qemu/101/pending"] = lambda _: data(items)
    _code, body = doctor(capsys, tmp_path, url, cert[2])
    vm = by_id(body)[101]
    codes = [f["code"] for f in vm["findings"]]
    assert "vm.cpu.refused" not in codes
    assert "vm.cpu.custom-model-unknown" in codes
    assert vm["nested"]["exposed"] is None
    assert vm["chain"]["config"] == "unknown"
