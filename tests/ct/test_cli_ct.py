"""`nestctl ct` and `nestctl ct enable` end to end: local roots and the Proxmox API simulator."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from nestctl.machine import Host, RecordingRunner
from tests.api.clirun import nestctl, nestctl_json
from tests.pvesim import ROOT_PASSWORD, PveSim

pytest_plugins = ["tests.pvesim.fixtures"]

LAB = Path(__file__).resolve().parents[1] / "data" / "clusters" / "lab" / "nodes"
CT_KEYS = {"vmid", "name", "node", "running", "unprivileged", "features", "wants_nested",
           "intent", "workloads", "findings"}  # fmt: skip
WORKLOADS = {"docker", "systemd", "kvm", "fuse"}


def token_args(sim: PveSim, tmp_path: Path) -> list[str]:
    token = tmp_path / "token"
    token.write_text(sim.root_token)
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--token-file", str(token)]


def root_args(sim: PveSim, tmp_path: Path) -> list[str]:
    password = tmp_path / "pw"
    password.write_text(ROOT_PASSWORD + "\n")
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--user", "root@pam",
            "--password-file", str(password)]  # fmt: skip


def check_contract(data: dict[str, Any]) -> None:
    assert set(data) >= {"cts", "findings", "verdict"}
    assert data["verdict"] in ("ready", "not-ready", "unknown")
    for ct in data["cts"]:
        assert set(ct) >= CT_KEYS
        assert set(ct["workloads"]) == WORKLOADS
        assert {"nesting", "keyctl", "fuse"} <= set(ct["features"])
        assert ct["intent"] in ("tag", "config", "none")
        for f in ct["findings"]:
            assert set(f) == {"code", "severity", "message", "fix"}


def test_json_contract_on_a_local_root(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = nestctl_json(capsys, "ct", "--root", str(LAB / "pve2"))
    check_contract(data)
    by_id = {c["vmid"]: c for c in data["cts"]}
    assert sorted(by_id) == [250, 251]
    assert by_id[250]["running"] is True  # its command socket is in proc/net/unix
    assert by_id[250]["wants_nested"] is True
    assert by_id[250]["intent"] == "tag"
    assert by_id[250]["workloads"]["docker"] is False
    assert by_id[250]["fix"]["pct"] == "pct set 250 --features keyctl=1,nesting=1"
    assert by_id[251]["running"] is False
    assert by_id[251]["workloads"]["kvm"] is True
    assert data["verdict"] == "not-ready"
    assert code == 1


def test_a_ct_that_does_not_want_nesting_is_neutral(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = nestctl_json(capsys, "ct", "151", "152", "--root", str(LAB / "pve1"))
    assert [c["verdict"] for c in data["cts"]] == ["not-nested", "not-nested"]
    assert data["verdict"] == "ready"
    assert code == 0
    code, data = nestctl_json(capsys, "ct", "151", "--all", "--root", str(LAB / "pve1"))
    assert data["cts"][0]["verdict"] == "not-ready"  # --all judges it as if it wanted nesting
    assert code == 1


def test_an_unknown_ctid_is_could_not_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = nestctl_json(capsys, "ct", "1500", "--root", str(LAB / "pve1"))
    assert [f["code"] for f in data["findings"]] == ["ct.not-found"]
    assert data["findings"][0]["message"] == "no CT 1500 on this cluster (did you mean 150?)"
    assert code == 2  # nothing was checked, as for an unknown VMID
    code, data = nestctl_json(capsys, "ct", "enable", "1500", "--workload", "docker",
                              "--root", str(LAB / "pve1"))  # fmt: skip
    assert data["findings"][0]["message"] == "no CT 1500 on this node (did you mean 150?)"
    assert code == 2


def test_an_unknown_ctid_over_the_api(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ct", "enable", "2500", "--workload", "docker", *token_args(pve_sim, tmp_path)]
    code, data = nestctl_json(capsys, *args)
    assert data["findings"][0]["message"] == "no CT 2500 on this cluster (did you mean 250?)"
    assert code == 2


def test_text_output_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = nestctl(capsys, "ct", "--root", str(LAB / "pve2"))
    assert "pct set 250 --features keyctl=1,nesting=1" in out
    assert code == 1


def test_ct_over_the_api_lists_every_container(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = nestctl_json(capsys, "ct", *token_args(pve_sim, tmp_path))
    check_contract(data)
    by_id = {c["vmid"]: c for c in data["cts"]}
    assert sorted(by_id) == [150, 151, 152, 250, 251]
    assert by_id[150]["verdict"] == "ready"
    assert by_id[150]["node"] == "pve1"
    assert by_id[152]["lock"] == "backup"
    assert by_id[250]["fix"]["api"] == {
        "method": "PUT",
        "path": "/nodes/pve2/lxc/250/config",
        "params": {"features": "keyctl=1,nesting=1", "digest": pve_sim.cluster.ct(250).conf.digest},
    }
    assert by_id[250]["id"] == "lxc/250"
    # the same facts as the local root gives
    _, local = nestctl_json(capsys, "ct", "--root", str(LAB / "pve2"))
    for ct in local["cts"]:
        assert {k: by_id[ct["vmid"]][k] for k in CT_KEYS} == {k: ct[k] for k in CT_KEYS}
    assert code == 1
    assert pve_sim.conformance_problems() == []


def test_enable_docker_through_the_api_with_the_digest(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pve_sim.cluster.ct(250).conf.digest
    args = ["ct", "enable", "250", "--workload", "docker", *root_args(pve_sim, tmp_path)]
    code, data = nestctl_json(capsys, *args)
    assert data["applied"] is True
    put = [r for r in pve_sim.requests if r.method == "PUT" and not r.harness]
    assert len(put) == 1
    assert put[0].params == {"features": "keyctl=1,nesting=1", "digest": before}
    conf = pve_sim.cluster.ct(250).conf
    assert conf.pending["features"] == "keyctl=1,nesting=1"  # running: waits for a restart
    assert data["restart_required"] is True
    assert "ct.enable.restart-required" in {f["code"] for f in data["findings"]}
    assert code == 1
    # after the restart it is in force, and `nestctl ct` says ready
    upid = pve_sim.request("POST", "/nodes/pve2/lxc/250/status/reboot").data
    pve_sim.wait_task("pve2", upid)
    code, report = nestctl_json(capsys, "ct", "250", *token_args(pve_sim, tmp_path))
    assert report["cts"][0]["verdict"] == "ready"
    assert code == 0


def test_enable_on_a_stopped_ct_is_in_force_at_once(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # nesting alone: a token with VM.Allocate may (no root@pam needed)
    args = ["ct", "enable", "151", "--workload", "systemd", *token_args(pve_sim, tmp_path)]
    code, data = nestctl_json(capsys, *args)
    assert pve_sim.cluster.ct(151).conf.main["features"] == "nesting=1"
    assert [f["code"] for f in data["findings"]] == ["ct.enable.verified"]
    assert code == 0


def test_keyctl_through_a_token_is_refused_before_trying(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pve_sim.cluster.ct(250).conf.digest
    args = ["ct", "enable", "250", "--workload", "docker", *token_args(pve_sim, tmp_path)]
    code, data = nestctl_json(capsys, *args)
    assert "ct.enable.needs-root" in {f["code"] for f in data["findings"]}
    assert "pct set 250 --features keyctl=1,nesting=1" in data["findings"][-1]["fix"]
    assert pve_sim.cluster.ct(250).conf.digest == before
    assert not any(r.method == "PUT" for r in pve_sim.requests if not r.harness)
    assert code == 1


def test_a_locked_ct_is_refused(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pve_sim.cluster.ct(152).conf.digest
    args = ["ct", "enable", "152", "--workload", "docker", *root_args(pve_sim, tmp_path)]
    code, data = nestctl_json(capsys, *args)
    assert data["blocked"] == "locked (backup)"
    assert [f["code"] for f in data["findings"]] == ["ct.enable.locked"]
    assert pve_sim.cluster.ct(152).conf.digest == before
    assert not any(r.method == "PUT" for r in pve_sim.requests if not r.harness)
    assert code == 1


def test_a_concurrent_change_is_not_overwritten(
    pve_sim: PveSim,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nestctl.api.client import ApiClient  # noqa: PLC0415

    real_put = ApiClient.put

    def put_after_another_admin(self: ApiClient, path: str, **params: Any) -> Any:
        pve_sim.cluster.edit_ct_config(251, description="changed by another admin")
        return real_put(self, path, **params)

    monkeypatch.setattr(ApiClient, "put", put_after_another_admin)
    args = ["ct", "enable", "251", "--workload", "docker", *root_args(pve_sim, tmp_path)]
    code, data = nestctl_json(capsys, *args)
    assert [f["code"] for f in data["findings"]] == ["ct.enable.conflict"]
    assert "keyctl" not in pve_sim.cluster.ct(251).conf.main["features"]
    assert code == 1


def test_dry_run_changes_nothing(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ct", "enable", "251", "--workload", "fuse", "--dry-run", *root_args(pve_sim, tmp_path)]
    _code, data = nestctl_json(capsys, *args)
    digest = pve_sim.cluster.ct(251).conf.digest
    assert data["api"]["params"] == {
        "features": "fuse=1,nesting=1",
        "tags": "nested",  # the intent tag joins, in the same digest-guarded change
        "digest": digest,
    }
    assert data["applied"] is False
    assert not any(r.method == "PUT" for r in pve_sim.requests if not r.harness)


def test_local_enable_runs_pct_set_with_the_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = RecordingRunner()
    monkeypatch.setattr("nestctl.cli.ct.make_host", lambda r: Host(r, runner=runner))
    root = LAB / "pve2"
    digest = json.loads(nestctl(capsys, "ct", "250", "--root", str(root), "--json")[1])["cts"][0][
        "digest"
    ]
    args = ["ct", "enable", "250", "--workload", "docker", "--workload", "kvm", "--kvm-gid", "104"]
    _code, data = nestctl_json(capsys, *args, "--root", str(root))
    assert data["commands"] == [
        ["pct", "set", "250", "--features", "keyctl=1,nesting=1", "--dev0", "/dev/kvm,gid=104",
         "--digest", digest]
    ]  # fmt: skip
    assert runner.calls == [tuple(data["commands"][0])]


def test_a_container_on_an_offline_node_does_not_decide_the_verdict(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.set_node_online("pve1", False)
    before = len([r for r in pve_sim.requests if "/lxc/" in r.path])
    code, data = nestctl_json(capsys, "ct", "150", "251", *token_args(pve_sim, tmp_path))
    by_id = {c["vmid"]: c for c in data["cts"]}
    assert [f["code"] for f in by_id[150]["findings"]] == ["ct.unreachable"]
    assert by_id[150]["running"] is None
    assert by_id[251]["verdict"] == "ready"
    assert data["verdict"] == "ready"  # what could be checked is ready
    assert code == 0
    asked = [r.path for r in pve_sim.requests if "/lxc/" in r.path][before:]
    assert not any("/pve1/" in p for p in asked)  # an offline node is not asked


def test_hostile_config_files_are_could_not_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lxc = tmp_path / "etc/pve/lxc"
    lxc.mkdir(parents=True)
    (lxc / "101.conf").mkdir()  # a directory where a config should be
    os.mkfifo(lxc / "102.conf")  # a FIFO: reading it must not block
    (lxc / "103.conf").write_bytes(b"features: nesting=1\xff\xfe\nunprivileged: 1\ntags: nested\n")
    (lxc / "104.conf").symlink_to(lxc / "104.conf")  # a loop
    (lxc / "notes.conf").write_text("features: keyctl=1\n")  # not a CTID: not a container
    code, data = nestctl_json(capsys, "ct", "--root", str(tmp_path))
    by_id = {c["vmid"]: c for c in data["cts"]}
    assert sorted(by_id) == [101, 102, 103, 104]
    for vmid in (101, 102, 104):
        assert [f["code"] for f in by_id[vmid]["findings"]] == ["ct.unreadable"]
        assert by_id[vmid]["verdict"] == "unknown"
    assert by_id[103]["wants_nested"] is True
    assert by_id[103]["verdict"] == "not-ready"  # tagged, keyctl off: the worst verdict wins
    assert code == 1
