"""pvesim's task permissions, as PVE::API2::Tasks has them (pve-manager PVE/API2/Tasks.pm:
`$check_task_user`, and read_task_status / read_task_log: "The user needs 'Sys.Audit'
permissions on '/nodes/<node>' if they aren't the owner of the task"; node_tasks lists the
owner's tasks, or all with Sys.Audit; PVE/API2/Cluster.pm tasks: all with Sys.Audit on /)."""

from __future__ import annotations

import urllib.parse

from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures"]


def _start(sim: PveSim, token: str | None = None) -> str:
    r = sim.request("POST", "/nodes/pve1/qemu/103/status/start", token=token)
    assert r.status == 200, r.body
    return str(r.data)


def _status(sim: PveSim, upid: str, token: str) -> int:
    path = f"/nodes/pve1/tasks/{urllib.parse.quote(upid)}/status"
    return sim.request("GET", path, token=token).status


def _log(sim: PveSim, upid: str, token: str) -> int:
    path = f"/nodes/pve1/tasks/{urllib.parse.quote(upid)}/log"
    return sim.request("GET", path, token=token).status


def test_a_task_is_seen_by_its_owner_or_with_sys_audit_on_its_node(pve_sim: PveSim) -> None:
    sim = pve_sim
    sim.add_user("carol@pve", "pw", privs={"/vms/103": ["PVEVMUser"], "/vms/101": ["PVEAuditor"]})
    sim.add_user("alice@pve", "pw", privs=["PVEAuditor"])  # Sys.Audit on / (so on /nodes/pve1)
    carol = sim.add_token("carol@pve", "t", privsep=False)
    other = sim.add_token("carol@pve", "u", privsep=False)
    alice = sim.add_token("alice@pve", "t", privsep=False)

    roots = _start(sim)  # root@pam!pvesim's task
    assert _status(sim, roots, carol) == 403
    assert _log(sim, roots, carol) == 403
    assert _status(sim, roots, alice) == 200
    assert _log(sim, roots, alice) == 200

    sim.wait_task("pve1", roots)
    sim.request("POST", "/nodes/pve1/qemu/103/status/stop")
    carols = _start(sim, token=carol)  # the token's own task
    assert _status(sim, carols, carol) == 200
    assert _status(sim, carols, other) == 403  # another token of the same user: not its task

    listed = sim.request("GET", "/nodes/pve1/tasks", token=carol).data
    assert {t["upid"] for t in listed} == {carols}
    assert roots in {t["upid"] for t in sim.request("GET", "/nodes/pve1/tasks", token=alice).data}
    everything = {t["upid"] for t in sim.request("GET", "/cluster/tasks", token=alice).data}
    assert {roots, carols} <= everything
    assert sim.request("GET", "/cluster/tasks", token=carol).data == []
