"""The rules over hand-made snapshots: intent decides what is judged; paths through tied
layers; an offline node's VMs are not a message each."""

from __future__ import annotations

from nestctl.watch.events import Evaluation
from nestctl.watch.paths import SEP, Paths
from nestctl.watch.rules import Limits, Memory, evaluate
from nestctl.watch.snapshot import NodeSnap, TargetSnap, VmSnap

NOW = 1_800_000_000.0


def outer(**vm: object) -> TargetSnap:
    snap = TargetSnap("outer", NOW, full=True)
    snap.nodes["pve1"] = NodeSnap("pve1", online=True, reachable=True, nested_live=True)
    snap.vms[101] = VmSnap(101, "lab", "pve1", "running", **vm)  # type: ignore[arg-type]
    return snap


def codes(found: Evaluation) -> list[str]:
    return sorted(e.code for e in found.events)


def run(*snaps: TargetSnap, memory: Memory | None = None) -> Evaluation:
    return evaluate({s.name: s for s in snaps}, set(), memory or Memory(), Limits(), NOW)


def test_nesting_is_judged_only_where_it_is_wanted() -> None:
    assert codes(run(outer(wants_nested=False, broken_link=None, chain_broken="config"))) == []
    found = run(outer(wants_nested=True, broken_link="config", nested_fix="qm set 101 ..."))
    assert codes(found) == ["vm.nesting-lost"]
    assert found.events[0].fix == "qm set 101 ..."


def test_a_vm_running_an_inner_layer_wants_nesting() -> None:
    inner = TargetSnap("inner", NOW, parent=("outer", 101), full=True)
    inner.nodes["pve-inner"] = NodeSnap("pve-inner", online=True, reachable=True)
    found = run(outer(wants_nested=False, broken_link=None, chain_broken="process"), inner)
    assert codes(found) == ["vm.nesting-lost"]


def test_nested_off_is_judged_only_on_nodes_with_a_vm_that_wants_it() -> None:
    snap = outer(wants_nested=False)
    snap.nodes["pve1"].nested_live = False
    assert codes(run(snap)) == []
    memory = Memory(nested_on_seen={"outer:pve1"})  # it was on before: a flip is news
    assert codes(run(snap, memory=memory)) == ["node.nested-off"]
    wanting = outer(wants_nested=True, broken_link="host")
    wanting.nodes["pve1"].nested_live = False
    assert codes(run(wanting)) == ["node.nested-off"]  # the VM's own event would say the same
    after = outer(wants_nested=True)
    after.nodes["pve1"].nested_after_reboot = False
    assert codes(run(after)) == ["node.nested-off-after-reboot"]


def test_an_offline_node_is_one_event_and_hides_its_vms() -> None:
    snap = outer(wants_nested=True, broken_link="host")
    snap.nodes["pve1"].online = False
    snap.vms[101].status = "unknown"
    for vmid in range(200, 230):
        snap.vms[vmid] = VmSnap(vmid, None, "pve1", "unknown")
    found = run(snap)
    assert codes(found) == ["node.offline"]
    assert found.hides("vm.stopped:outer:pve1:205")
    assert not found.hides("vm.stopped:outer:pve2:205")


def test_an_inner_target_is_not_reported_while_its_vm_is_down() -> None:
    down = outer()
    down.vms[101].status = "stopped"
    inner = TargetSnap("inner", NOW, parent=("outer", 101), problem="no route to host")
    memory = Memory(last_status={"outer": {101: "running"}})
    found = run(down, inner, memory=memory)
    assert codes(found) == ["vm.stopped"]  # one cause, one message
    assert found.hides("node.down:inner:pve-inner")


def test_paths_through_tied_layers() -> None:
    snap = outer()
    snap.vm_uuids[101] = "5e0f7d2a-0000-4000-8000-000000000101"
    inner = TargetSnap("inner", NOW)  # no parent in the config: tied by uuid, as tree does
    inner.node_uuids["pve-inner"] = "5e0f7d2a-0000-4000-8000-000000000101"
    inner.vms[1002] = VmSnap(1002, None, "pve-inner", "stopped")
    paths = Paths({"outer": snap, "inner": inner})
    assert paths.vm("inner", 1002) == "outer/pve1 \u203a VM 101 \u203a pve-inner \u203a VM 1002"
    assert paths.target("inner") == f"outer/pve1{SEP}VM 101{SEP}inner"
    assert paths.node("outer", "pve1") == "outer/pve1"
