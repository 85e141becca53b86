"""The snapshot engine alone: the name rule, the tree from hostile replies, storage support."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from nestctl.api.snapshots import (
    SNAPNAME_MAX,
    build_tree,
    latest_safety,
    safety_name,
    snapname_problem,
    snapshot_support,
)

PROFILES = ("linux-kvm", "windows-hyperv", "windows-wsl2-docker", "pve-lab")


def test_the_tree_orders_children_and_hangs_now_under_the_current_parent() -> None:
    tree = build_tree([
        {"name": "b", "parent": "a", "snaptime": 20, "vmstate": 1, "description": "B"},
        {"name": "a", "snaptime": 10, "description": ""},
        {"name": "c", "parent": "a", "snaptime": 30},
        {"name": "current", "parent": "b", "running": 1, "digest": "x" * 40},
    ])  # fmt: skip
    rows = [(d, s.name if s else "NOW") for d, s in tree.rows()]
    assert rows == [(0, "a"), (1, "b"), (2, "NOW"), (1, "c")]
    assert tree.snapshots["b"].current
    assert tree.snapshots["b"].vmstate is True
    assert tree.running is True


def test_no_snapshots_is_just_now() -> None:
    tree = build_tree([{"name": "current", "running": 0, "description": "You are here!"}])
    assert [(d, s) for d, s in tree.rows()] == [(0, None)]
    assert tree.current_parent is None


def test_a_cycle_or_a_missing_parent_makes_roots_not_a_hang() -> None:
    tree = build_tree([
        {"name": "x1", "parent": "y1"}, {"name": "y1", "parent": "x1"},
        {"name": "orphan", "parent": "gone"}, {"name": "current", "parent": "nowhere"},
    ])  # fmt: skip
    names = {s.name for s in tree.ordered()}
    assert names == {"x1", "y1", "orphan"}
    assert tree.snapshots["orphan"].parent is None
    assert tree.current_parent is None


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(), st.dictionaries(
    st.sampled_from(["name", "parent", "snaptime", "vmstate", "description", "snapstate"]),
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans()),
))))  # fmt: skip
def test_any_reply_gives_a_tree_without_an_exception(reply: list[object]) -> None:
    tree = build_tree(reply)
    seen = [s.name for s in tree.ordered()]
    assert len(seen) == len(set(seen)) == len(tree.snapshots)  # every snapshot once


# pve-common JSONSchema.pm: $CONFIGID_RE = qr/[a-z][a-z0-9_-]+/i, maxLength 40 (pve-snapshot-name)
_PROXMOX = re.compile(r"[a-z][a-z0-9_-]+", re.IGNORECASE | re.ASCII)


@given(st.text(alphabet="aZ09-_.é ", max_size=45))
def test_the_name_rule_is_proxmoxs(name: str) -> None:
    accepted = _PROXMOX.fullmatch(name) is not None and len(name) <= 40 and name != "current"
    accepted = accepted and name.lower() != "pending"
    assert (snapname_problem(name) is None) == accepted


def test_reserved_names_differ_for_vms_and_containers() -> None:
    assert snapname_problem("vzdump", "qemu") is None
    assert snapname_problem("vzdump", "lxc") is not None
    assert snapname_problem("Pending", "qemu") is not None
    assert snapname_problem("Pending", "lxc") is None


def test_safety_names_fit_proxmoxs_rule_and_avoid_taken_ones() -> None:
    now = 1_796_600_000  # 2026-12-06
    for profile in PROFILES:
        name = safety_name(profile, now)
        assert snapname_problem(name) is None, name
        assert name.startswith("nestctl-before-")
        assert name.endswith("-20261206")
        assert len(name) <= SNAPNAME_MAX
    first = safety_name("linux-kvm", now)
    assert first == "nestctl-before-linux-kvm-20261206"
    assert safety_name("linux-kvm", now, {first}) == first + "-2"


def test_latest_safety_picks_the_newest_nestctl_snapshot() -> None:
    tree = build_tree([
        {"name": "nestctl-before-linux-kvm-20261201", "snaptime": 10},
        {"name": "mine", "snaptime": 30},
        {"name": "nestctl-before-pve-lab-20261202", "snaptime": 20},
    ])  # fmt: skip
    assert latest_safety(tree).name == "nestctl-before-pve-lab-20261202"
    assert latest_safety(tree, "linux-kvm").name == "nestctl-before-linux-kvm-20261201"
    assert latest_safety(build_tree([])) is None


def test_snapshot_support_by_storage_type_and_format() -> None:
    types = {"local": "dir", "local-lvm": "lvmthin", "thick": "lvm", "tank": "zfspool"}
    ok = snapshot_support({"scsi0": "local-lvm:vm-1-disk-0,size=8G"}, types)
    assert ok.ok is True
    qcow = snapshot_support({"virtio0": "local:1/vm-1-disk-0.qcow2"}, types)
    assert qcow.ok is True
    raw = snapshot_support({"virtio0": "local:1/vm-1-disk-0.raw"}, types)
    assert raw.ok is False
    assert "only qcow2 images" in raw.why
    thick = snapshot_support({"scsi0": "tank:a", "sata1": "thick:vm-1-disk-1"}, types)
    assert thick.ok is False
    assert "LVM (thick)" in thick.why
    cd = snapshot_support({"ide2": "local:iso/x.iso,media=cdrom", "scsi0": "tank:b"}, types)
    assert cd.ok is True
    unknown = snapshot_support({"scsi0": "hidden:vm-1-disk-0"}, types)
    assert unknown.ok is None
    ct = snapshot_support({"rootfs": "local:100/vm-100-disk-0.raw,size=8G"}, types)
    assert ct.ok is False
