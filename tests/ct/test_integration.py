"""Containers in `doctor`, `tree` and the metrics (ids `lxc/<vmid>`), local and over the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.metrics.exposition import render
from nestctl.metrics.report import report_families
from tests.api.clirun import nestctl_json
from tests.ct.test_cli_ct import LAB, token_args
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures"]


def test_doctor_has_the_node_s_containers(capsys: pytest.CaptureFixture[str]) -> None:
    _code, data = nestctl_json(capsys, "doctor", "--root", str(LAB / "pve2"))
    cts = {c["vmid"]: c for c in data["cts"]}
    assert sorted(cts) == [250, 251]
    assert cts[250]["verdict"] == "not-ready"
    assert "ct.docker.nesting-off" in {f["code"] for f in data["findings"]}
    assert data["verdict"] == "not-ready"


def test_doctor_without_containers_has_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    pve7 = LAB.parent.parent / "pve7" / "nodes" / "pve7"
    _code, data = nestctl_json(capsys, "doctor", "--root", str(pve7))
    assert data["cts"] == []
    assert not any(f["code"].startswith("ct.") for f in data["findings"])


def test_doctor_over_the_api_has_every_container(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, data = nestctl_json(capsys, "doctor", *token_args(pve_sim, tmp_path))
    assert sorted(c["vmid"] for c in data["cts"]) == [150, 151, 152, 250, 251]
    assert {c["node"] for c in data["cts"]} == {"pve1", "pve2"}
    assert pve_sim.conformance_problems() == []


def test_tree_shows_containers_under_their_node(capsys: pytest.CaptureFixture[str]) -> None:
    _code, data = nestctl_json(capsys, "tree", "--local", "--root", str(LAB / "pve2"))
    children = data["tree"][0]["children"]
    cts = [c for c in children if c["kind"] == "ct"]
    assert [(c["vmid"], c["verdict"]) for c in cts] == [(250, "not-ready"), (251, "ready")]
    assert cts[0]["intent"] == "tag"


def test_tree_over_the_api_shows_containers(
    pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, data = nestctl_json(capsys, "tree", *token_args(pve_sim, tmp_path))
    by_node = {n["node"]: n for n in data["tree"]}
    kinds = [(c["kind"], c["vmid"]) for c in by_node["pve1"]["children"]]
    assert ("ct", 150) in kinds
    assert ("vm", 101) in kinds


def test_metrics_label_containers_as_pve_exporter_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _code, body = nestctl_json(capsys, "doctor", "--root", str(LAB / "pve2"))
    text = render(report_families(body, local_node="pve2"))
    assert 'nestctl_up{id="lxc/250",layer="ct"} 1' in text
    assert 'nestctl_ct_verdict{id="lxc/250",verdict="not-ready"} 1' in text
    assert 'nestctl_ct_wants_nested{id="lxc/250",intent="tag"} 1' in text
    assert 'nestctl_ct_workload{id="lxc/251",workload="kvm"} 1' in text
    assert 'nestctl_finding{id="lxc/250",code="ct.docker.nesting-off",severity="error"} 1' in text
