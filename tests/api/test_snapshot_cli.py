"""`nestctl snapshot` against the simulator: JSON contract, tasks followed, Proxmox's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nestctl.api.snapshots import snapname_problem
from tests.api.clirun import nestctl, nestctl_json
from tests.pvesim import PveSim
from tests.pvesim.storage import StorageDef

pytest_plugins = ["tests.pvesim.fixtures"]

GUEST_KEYS = {"id", "type", "vmid", "node", "name"}
ACTION_KEYS = {"guest", "action", "name", "task", "findings", "verdict"}
TASK_KEYS = {"upid", "running", "ok", "exitstatus", "log_tail"}


def api_args(sim: PveSim, tmp_path: Path) -> list[str]:
    token = tmp_path / "token"
    token.write_text(sim.root_token)
    return ["--api", sim.url, "--fingerprint", sim.fingerprint, "--token-file", str(token)]


def snap(
    sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    return nestctl_json(capsys, "snapshot", *args, *api_args(sim, tmp_path))


def test_create_then_list_shows_the_tree_with_now_under_the_new_snapshot(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = snap(pve_sim, tmp_path, capsys, "create", "101", "first", "--description", "a b")
    assert code == 0, data
    assert set(data) == ACTION_KEYS
    assert set(data["guest"]) == GUEST_KEYS
    assert set(data["task"]) == TASK_KEYS
    assert data["task"]["ok"] is True
    assert data["guest"]["id"] == "qemu/101"
    code, data = snap(pve_sim, tmp_path, capsys, "create", "101", "second", "--vmstate")
    assert code == 0
    code, data = snap(pve_sim, tmp_path, capsys, "list", "101")
    assert code == 0
    assert set(data) == {"guest", "snapshots", "current_parent", "running", "findings", "verdict"}
    names = [(s["name"], s["parent"], s["vmstate"], s["current"]) for s in data["snapshots"]]
    assert names == [("first", None, False, False), ("second", "first", True, True)]
    assert data["snapshots"][0]["description"] == "a b"
    assert data["current_parent"] == "second"
    # the request carried the description the reference schema had lost (restored)
    post = next(r for r in pve_sim.requests if r.method == "POST" and r.path.endswith("/snapshot"))
    assert post.params["description"] == "a b"


def test_rollback_needs_yes_without_a_terminal_and_then_restores_the_config(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert snap(pve_sim, tmp_path, capsys, "create", "103", "base")[0] == 0
    pve_sim.cluster.edit_config(103, cpu="host")
    code, _out, err = nestctl(
        capsys, "snapshot", "rollback", "103", "base", *api_args(pve_sim, tmp_path)
    )
    assert code == 2
    assert "--yes" in err
    assert pve_sim.cluster.vm(103).conf.main["cpu"] == "host"
    code, data = snap(pve_sim, tmp_path, capsys, "rollback", "103", "base", "--yes")
    assert code == 0, data
    assert "cpu" not in pve_sim.cluster.vm(103).conf.main
    assert pve_sim.cluster.vm(103).conf.main["parent"] == "base"


def test_delete_moves_children_up(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("aa", "bb"):
        assert snap(pve_sim, tmp_path, capsys, "create", "103", name)[0] == 0
    code, data = snap(pve_sim, tmp_path, capsys, "delete", "103", "aa")
    assert code == 0, data
    code, data = snap(pve_sim, tmp_path, capsys, "list", "103")
    assert [(s["name"], s["parent"]) for s in data["snapshots"]] == [("bb", None)]


@pytest.mark.parametrize(
    ("name", "words"),
    [("1abc", "starts with a letter"), ("a", "at least two"), ("current", "keeps for itself"),
     ("PENDING", "keeps for itself"), ("x" * 41, "at most 40"), ("bad.name", "letters, digits")],
)  # fmt: skip
def test_names_proxmox_refuses_are_refused_before_asking(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, words: str
) -> None:
    code, _out, err = nestctl(
        capsys, "snapshot", "create", "103", name, *api_args(pve_sim, tmp_path)
    )
    assert code == 2
    assert words in err
    assert not any(r.method == "POST" for r in pve_sim.requests)


def test_the_simulator_refuses_the_same_names_as_the_engine(pve_sim: PveSim) -> None:
    """The engine's rule and Proxmox's (as simulated from the schema and Qemu.pm) agree."""
    for name in ("ok-name", "1abc", "a", "current", "pending", "Pending", "x" * 41, "a.b", "a_b"):
        with pve_sim.nonconforming():
            reply = pve_sim.request("POST", "/nodes/pve1/qemu/103/snapshot", {"snapname": name})
        assert (reply.status == 200) == (snapname_problem(name) is None), name


def test_a_locked_guest_fails_the_task_with_proxmoxs_words(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.edit_config(103, lock="backup")
    code, data = snap(pve_sim, tmp_path, capsys, "create", "103", "x1")
    assert code == 1
    assert data["task"]["exitstatus"] == "VM is locked (backup)"
    assert data["findings"][0]["code"] == "snapshot.create.failed"


def test_a_storage_without_snapshots_fails_the_task(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pve_sim.cluster.storage.define(StorageDef("thick", "lvm", {"images"}))
    pve_sim.cluster.edit_config(103, scsi0="thick:vm-103-disk-0,size=8G")
    code, data = snap(pve_sim, tmp_path, capsys, "create", "103", "x1")
    assert code == 1
    assert data["task"]["exitstatus"] == "snapshot feature is not available"
    assert "x1" not in pve_sim.cluster.vm(103).conf.sections


def test_the_guest_is_locked_while_the_snapshot_task_runs(pve_sim: PveSim) -> None:
    pve_sim.cluster.task_seconds = 5
    upid = pve_sim.request("POST", "/nodes/pve1/qemu/103/snapshot", {"snapname": "slow"}).data
    assert pve_sim.cluster.vm(103).conf.main["lock"] == "snapshot"
    with pve_sim.nonconforming():
        refused = pve_sim.request("PUT", "/nodes/pve1/qemu/103/config", {"cores": "2"})
    assert refused.status == 500
    assert "VM is locked (snapshot)" in refused.json["message"]
    pve_sim.cluster.task_seconds = 0
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    assert "lock" not in pve_sim.cluster.vm(103).conf.main


def test_rollback_before_nestctl_finds_the_safety_snapshot(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = nestctl_json(
        capsys, "vm", "enable", "103", "--profile", "linux-kvm", "--snapshot",
        *api_args(pve_sim, tmp_path),
    )  # fmt: skip
    assert code == 0, data
    assert pve_sim.cluster.vm(103).conf.main["cpu"] == "host"
    code, data = snap(pve_sim, tmp_path, capsys, "rollback", "103", "--before-nestctl", "--yes")
    assert code == 0, data
    assert data["name"].startswith("nestctl-before-linux-kvm-")
    assert "cpu" not in pve_sim.cluster.vm(103).conf.main  # the profile is undone


# -- containers -----------------------------------------------------------------------------------


def test_a_container_snapshot_tree_rollback_and_its_reserved_name(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = snap(pve_sim, tmp_path, capsys, "create", "151", "before-upgrade")
    assert code == 0, data
    assert data["guest"]["id"] == "lxc/151"
    assert ":vzsnapshot:151:" in data["task"]["upid"]
    ct = pve_sim.cluster.nodes["pve1"].cts[151]
    ct.conf.main["memory"] = "4096"
    ct.conf.touch()
    code, data = snap(pve_sim, tmp_path, capsys, "list", "151")
    assert [(s["name"], s["vmstate"], s["current"]) for s in data["snapshots"]] == [
        ("before-upgrade", None, True)
    ]
    code, data = snap(pve_sim, tmp_path, capsys, "rollback", "151", "before-upgrade", "--yes")
    assert code == 0, data
    assert ":vzrollback:151:" in data["task"]["upid"]
    assert ct.conf.main.get("memory") != "4096"
    code, _out, err = nestctl(
        capsys, "snapshot", "create", "151", "vzdump", *api_args(pve_sim, tmp_path)
    )
    assert code == 2
    assert "keeps for itself" in err
    code, _out, err = nestctl(
        capsys, "snapshot", "create", "151", "x1", "--vmstate", *api_args(pve_sim, tmp_path)
    )
    assert code == 2
    assert "containers have no RAM snapshots" in err


def test_a_locked_container_refuses_in_its_own_words(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = snap(pve_sim, tmp_path, capsys, "create", "152", "x1")  # fixture: lock backup
    assert code == 1
    assert data["task"]["exitstatus"] == "CT is locked (backup)"


def test_without_api_and_without_pvesh_it_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = nestctl(capsys, "snapshot", "list", "101", "--root", str(tmp_path))
    assert code == 2
    assert "no pvesh here (not a Proxmox VE node): give --api URL or --target NAME" in err
