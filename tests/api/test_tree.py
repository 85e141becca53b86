"""`nestctl tree` over a two-level simulated lab, and the tree builder on JSON-fed levels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nestctl.findings import Verdict
from nestctl.tree.build import build_tree
from nestctl.tree.views import NodeView, TargetView
from tests.api.clirun import nestctl, nestctl_json
from tests.pvesim import PveSim, load_cluster

pytest_plugins = ["tests.pvesim.fixtures"]

CLUSTERS = Path(__file__).resolve().parents[1] / "data" / "clusters"


def target(tmp_path: Path, name: str, sim: PveSim | None, parent: str | None = None) -> str:
    token = tmp_path / f"{name}.token"
    token.write_text((sim.root_token if sim else "root@pam!gone=00000000-0000") + "\n")
    url = sim.url if sim else "https://127.0.0.1:1"
    fp = sim.fingerprint if sim else ":".join(["AB"] * 32)
    lines = [f"[targets.{name}]", f'url = "{url}"', f'token_file = "{token}"',
             f'fingerprint = "{fp}"']  # fmt: skip
    if parent:
        lines.append(f'parent = "{parent}"')
    return "\n".join(lines) + "\n"


@pytest.fixture
def inner_sim() -> Any:
    with PveSim(load_cluster(CLUSTERS / "lab-inner")) as sim:
        yield sim
        sim.assert_conformant()


def test_tree_over_a_two_level_lab(
    pve_sim: PveSim, inner_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        target(tmp_path, "outer", pve_sim)
        + target(tmp_path, "inner", inner_sim, parent="outer/101")
        + target(tmp_path, "gone", None, parent="outer/102")
    )
    code, data = nestctl_json(capsys, "tree", "--config", str(config), "--timeout", "2")
    assert list(data) == ["tree", "findings", "verdict"]
    roots = data["tree"]
    assert [(n["target"], n["node"], n["level"]) for n in roots] == [
        ("outer", "pve1", 0), ("outer", "pve2", 0), ("outer", "pve3", 0)
    ]  # fmt: skip
    vm101 = next(v for v in roots[0]["children"] if v["vmid"] == 101)
    assert set(vm101) == {
        "kind", "vmid", "name", "verdict", "broken_link", "wants_nested", "intent", "children"
    }  # fmt: skip
    # VM 101 runs the inner Proxmox: it wants nesting for that reason (unless tagged already).
    assert vm101["wants_nested"] is True
    assert vm101["intent"] in ("tag", "inner-layer", "config")
    (inner,) = vm101["children"]
    assert (inner["kind"], inner["target"], inner["level"]) == ("node", "inner", 1)
    assert [v["vmid"] for v in inner["children"]] == sorted(
        vm.vmid for vm in inner_sim.cluster.all_vms()
    )
    assert set(inner) == {"kind", "target", "node", "level", "verdict", "findings", "children"}
    # The unreachable inner target stays in the tree, under its VM, with a finding.
    vm102 = next(v for v in roots[0]["children"] if v["vmid"] == 102)
    (gone,) = vm102["children"]
    assert (gone["target"], gone["node"], gone["verdict"]) == ("gone", None, "unknown")
    assert gone["findings"][0]["code"] == "tree.target.unreachable"
    assert code in (1, 2)
    code, text, _err = nestctl(capsys, "tree", "--config", str(config), "--timeout", "2")
    assert "  L1 inner/" in text
    assert "(not reachable)" in text


def test_inner_target_found_by_smbios_uuid_from_json_fed_levels() -> None:
    outer = TargetView.from_json(
        "outer",
        {
            "nodes": [{"node": "pve1", "findings": []}],
            "vms": [{"vmid": 101, "name": "pve-inner", "node": "pve1", "findings": [],
                     "broken_link": None,
                     "smbios_uuid": "5B0A3C1E-1D2F-4B8E-9C61-0E0F2A7B1D01"}],
        },
    )  # fmt: skip
    inner = TargetView.from_json(
        "inner",
        {
            "nodes": [{"node": "l1", "product_uuid": "5b0a3c1e-1d2f-4b8e-9c61-0e0f2a7b1d01",
                       "findings": []}],
            "vms": [{"vmid": 100, "name": "l2", "node": "l1", "broken_link": "config",
                     "findings": [{"code": "x", "severity": "error", "message": "m"}]}],
        },
    )  # fmt: skip
    tree, _findings, verdict = build_tree([outer, inner])
    assert len(tree) == 1
    l1 = tree[0]["children"][0]["children"][0]
    assert (l1["target"], l1["level"]) == ("inner", 1)
    assert l1["children"][0]["broken_link"] == "config"
    assert verdict is Verdict.NOT_READY


def test_a_wrong_parent_is_a_finding_not_a_lost_level() -> None:
    outer = TargetView("outer", nodes=[NodeView("pve1", "ready")])
    inner = TargetView("inner", parent=("outer", 999), nodes=[NodeView("l1", "ready")])
    tree, findings, _verdict = build_tree([outer, inner])
    assert [f.code for f in findings] == ["tree.parent-missing"]
    # Shown at the top rather than dropped.
    assert [(n["target"], n["level"]) for n in tree] == [("outer", 0), ("inner", 0)]


def test_a_vm_that_does_not_want_nesting_is_neutral_and_never_contradicts_the_tree() -> None:
    # One VM that wants nesting (tag) and one that does not, with the same broken config link:
    # the first is not ready (and so is the tree), the second "not-nested" (neutral).
    def vm(vmid: int, wants: bool) -> dict[str, Any]:
        return {
            "vmid": vmid,
            "name": f"vm{vmid}",
            "node": "pve1",
            "broken_link": "config",
            "wants_nested": wants,
            "intent": "tag" if wants else "none",
            "chain": {
                "host": "ok",
                "config": "broken",
                "process": "not-running",
                "guest": "broken",
            },
            "findings": [
                {
                    "code": "vm.nested.not-exposed",
                    "severity": "error" if wants else "info",
                    "message": "m",
                }
            ],
        }

    plain = TargetView.from_json(
        "lab", {"nodes": [{"node": "pve1", "findings": []}], "vms": [vm(103, False)]}
    )
    tree, _findings, verdict = build_tree([plain])
    [row] = tree[0]["children"]
    assert (row["verdict"], row["broken_link"], row["wants_nested"]) == ("not-nested", None, False)
    assert verdict is Verdict.READY
    both = TargetView.from_json(
        "lab",
        {"nodes": [{"node": "pve1", "findings": []}], "vms": [vm(103, False), vm(104, True)]},
    )
    tree, _findings, verdict = build_tree([both])
    rows = {v["vmid"]: (v["verdict"], v["broken_link"]) for v in tree[0]["children"]}
    assert rows == {103: ("not-nested", None), 104: ("not-ready", "config")}
    assert verdict is Verdict.NOT_READY
