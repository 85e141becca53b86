"""Report bodies -> metric families: ids as pve-exporter writes them, unknown never a 0."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.metrics.bench import bench_families
from nestctl.metrics.catalogue import CATALOGUE
from nestctl.metrics.exposition import render
from nestctl.metrics.family import Families, node_id, vm_id
from nestctl.metrics.report import report_families
from nestctl.metrics.run import CheckRunner
from nestctl.metrics.sources import local_check
from tests.metrics.tools import (
    cluster_body,
    lab_node,
    linux_guest,
    names,
    parse,
    value,
    vm_obj,
)


def doctor_body(root: Path, *args: str) -> dict[str, Any]:
    out = CliRunner().invoke(cli, ["doctor", "--root", str(root), "--json", "--no-qemu", *args])
    return dict(json.loads(out.output))


def samples_of(body: dict[str, Any], **kw: Any) -> dict[Any, float]:
    return parse(render(report_families(body, **kw)))


def test_ids_are_pve_exporters() -> None:
    assert node_id("pve1") == "node/pve1"
    assert vm_id(100) == "qemu/100"
    # Anything else is no id at all: never a guessed or free-text one.
    assert node_id("pve 1") is None
    assert node_id('x"}evil') is None
    assert vm_id(True) is None
    assert vm_id("100") is None
    assert vm_id(99) is None


def test_a_local_node_in_every_layer(tmp_path: Path) -> None:
    body = doctor_body(lab_node(tmp_path))
    s = samples_of(body, local_node="pve1")
    node = {"id": "node/pve1"}
    assert value(s, "nestctl_up", layer="host", **node) == 1
    assert value(s, "nestctl_host_nested_enabled", **node) == 1
    assert value(s, "nestctl_host_nested_after_reboot", **node) == 1
    assert value(s, "nestctl_host_virt_capable", **node) == 1
    assert value(s, "nestctl_host_kvm_param_enabled", module="kvm_intel", param="ept", **node) == 1
    # VM 100: nested and running as configured.
    assert value(s, "nestctl_vm_nested_configured", id="qemu/100") == 1
    assert value(s, "nestctl_vm_nested_exposed", id="qemu/100") == 1
    assert value(s, "nestctl_vm_restart_pending", id="qemu/100") == 0
    assert value(s, "nestctl_vm_config_mismatch", id="qemu/100") == 0
    # VM 101: the pending cpu asks for vmx; the running kvm64 does not give it.
    assert value(s, "nestctl_vm_nested_configured", id="qemu/101") == 1
    assert value(s, "nestctl_vm_nested_exposed", id="qemu/101") == 0
    assert value(s, "nestctl_vm_restart_pending", id="qemu/101") == 1
    assert value(s, "nestctl_check_status", id="qemu/101", check="process", status="broken") == 1
    assert value(s, "nestctl_check_status", id="qemu/101", check="process", status="ok") == 0
    # VM 102 is not meant to nest and is stopped: nothing runs, so nothing mismatches.
    assert value(s, "nestctl_vm_nested_configured", id="qemu/102") == 0
    assert value(s, "nestctl_vm_running", id="qemu/102") == 0
    assert value(s, "nestctl_vm_config_mismatch", id="qemu/102") == 0
    assert value(s, "nestctl_verdict", verdict="not-ready") == 1
    assert value(s, "nestctl_verdict", verdict="ready") == 0
    # Findings by code only (the message is free text and stays out of labels).
    assert value(s, "nestctl_finding", id="qemu/101", code="vm.restart-required", severity="error")
    assert not any("message" in dict(labels) for _, labels in s)
    assert not any(name == "nestctl_probe_failed" for name, _ in s)


def test_each_check_has_exactly_one_active_state(tmp_path: Path) -> None:
    s = samples_of(doctor_body(lab_node(tmp_path)), local_node="pve1")
    active: dict[tuple[str, str], float] = {}
    for (name, labels), v in s.items():
        if name == "nestctl_check_status":
            d = dict(labels)
            key = (d["id"], d["check"])
            active[key] = active.get(key, 0) + v
    assert active
    assert set(active.values()) == {1.0}
    assert len(active) == 3 + 3 * 4  # three host checks, four links per VM


def test_unknown_is_an_absent_series_and_a_failed_probe(tmp_path: Path) -> None:
    node = {"id": "node/pve1"}
    body = doctor_body(lab_node(tmp_path))
    body["host"]["nested"]["after_reboot"] = None
    body["vms"][0]["nested"]["exposed"] = None
    s = samples_of(body, local_node="pve1")
    assert value(s, "nestctl_host_nested_after_reboot", **node) is None
    assert value(s, "nestctl_probe_failed", probe="host_nested_after_reboot", **node) == 1
    assert value(s, "nestctl_vm_nested_exposed", id="qemu/100") is None
    assert value(s, "nestctl_probe_failed", id="qemu/100", probe="vm_nested_exposed") == 1
    status = "unknown"
    assert value(s, "nestctl_check_status", check="nested_after_reboot", status=status, **node)


def test_unreadable_cpuinfo_is_not_no_virtualization(tmp_path: Path) -> None:
    body = doctor_body(lab_node(tmp_path))
    # What the host layer reports when /proc/cpuinfo cannot be read: vendor defaults to other.
    body["host"].update(vendor="other", virt_flag=None, vendor_id=None, cpu_model=None)
    s = samples_of(body, local_node="pve1")
    assert value(s, "nestctl_host_virt_capable", id="node/pve1") is None
    assert value(s, "nestctl_probe_failed", id="node/pve1", probe="host_virt_capable") == 1
    assert "nestctl_host_info" not in names(s)
    body["host"].update(vendor_id="GenuineIntel")  # read, and no vmx/svm: a real "no"
    s = samples_of(body, local_node="pve1")
    assert value(s, "nestctl_host_virt_capable", id="node/pve1") == 0


def test_a_cluster_report_gives_the_same_families() -> None:
    s = samples_of(cluster_body())
    assert value(s, "nestctl_up", id="node/pve1", layer="host") == 1
    assert value(s, "nestctl_host_nested_enabled", id="node/pve1") == 1
    # The API cannot see the modprobe config: absent and a failed probe, never 0.
    assert value(s, "nestctl_host_nested_after_reboot", id="node/pve1") is None
    assert value(s, "nestctl_probe_failed", id="node/pve1", probe="host_nested_after_reboot")
    assert (
        value(
            s,
            "nestctl_host_info",
            id="node/pve1",
            vendor="intel",
            virt_flag="vmx",
            kvm_module="unknown",
        )
        == 1
    )
    assert (
        value(s, "nestctl_finding", id="node/pve1", code="api.nested-unknown", severity="warning")
        == 1
    )
    # The top level repeating a node's finding does not export it a second time, unscoped.
    repeated = cluster_body()
    repeated["findings"] = list(repeated["nodes"][0]["findings"])
    finding = {"code": "api.nested-unknown", "severity": "warning"}
    assert value(samples_of(repeated), "nestctl_finding", id="", **finding) is None
    # pve2 is down: up 0 for it and its VM, and none of their values (no stale success).
    assert value(s, "nestctl_up", id="node/pve2", layer="host") == 0
    assert value(s, "nestctl_up", id="qemu/200", layer="vm") == 0
    assert not [k for k in s if ("id", "qemu/200") in k[1] and k[0] != "nestctl_up"]
    assert not [k for k in s if ("id", "node/pve2") in k[1] and k[0] != "nestctl_up"]
    assert value(s, "nestctl_vm_nested_configured", id="qemu/100") == 1
    assert value(s, "nestctl_verdict", verdict="unknown") == 1


def test_an_amd_node_judges_its_own_vms() -> None:
    body = cluster_body()
    body["nodes"][0].update(vendor="amd", virt_flag="svm")
    body["vms"][0]["cpu_arg"] = "kvm64,+vmx"  # +vmx on AMD never reaches the guest
    s = samples_of(body)
    assert value(s, "nestctl_vm_nested_configured", id="qemu/100") == 0


def test_guests_linux_and_windows() -> None:
    linux = linux_guest()
    windows = {
        "os": "windows",
        "virt_flag": None,
        "dev_kvm": False,
        "kvm_usable": False,
        "accel": "unknown",
        "level": None,
        "via": "agent",
        "windows": {
            "features": {
                "VirtualMachinePlatform": "Enabled",
                "Microsoft-Hyper-V-All": "Disabled",
                'Evil"} 1\nfake_metric': "Enabled",  # a hostile guest's feature name
            },
            "verdicts": {
                "hyperv": {"status": "not-enabled"},
                "wsl2": {"status": "ready"},
                "docker_desktop": {"status": "bogus"},
            },
        },
    }
    body = cluster_body()
    body["vms"] = [
        vm_obj(100, "pve1", guest=linux),
        vm_obj(101, "pve1", guest=windows),
        vm_obj(102, "pve1", guest=None),  # the agent did not answer
        vm_obj(103, "pve1", running=False, guest=None),  # stopped: nothing to ask
    ]
    s = samples_of(body, guests=True)
    assert value(s, "nestctl_up", id="qemu/100", layer="guest") == 1
    assert value(s, "nestctl_guest_virt_flag_visible", id="qemu/100") == 1
    assert value(s, "nestctl_guest_kvm_device_present", id="qemu/100") == 1
    assert value(s, "nestctl_guest_level", id="qemu/100") == 1
    assert value(s, "nestctl_guest_info", id="qemu/100", os="linux", accel="kvm") == 1
    vmp = {"id": "qemu/101", "feature": "VirtualMachinePlatform"}
    assert value(s, "nestctl_guest_windows_feature_enabled", **vmp) == 1
    hv = {"id": "qemu/101", "feature": "Microsoft-Hyper-V-All"}
    assert value(s, "nestctl_guest_windows_feature_enabled", **hv) == 0
    wsl = {"id": "qemu/101", "product": "wsl2"}
    assert value(s, "nestctl_guest_windows_status", status="ready", **wsl) == 1
    assert value(s, "nestctl_guest_windows_status", status="not-ready", **wsl) == 0
    assert (
        value(s, "nestctl_probe_failed", id="qemu/101", probe="guest_windows_status_docker_desktop")
        == 1
    )
    # Windows has no /proc/cpuinfo: no flag series, and no failed probe for it either.
    assert value(s, "nestctl_guest_virt_flag_visible", id="qemu/101") is None
    assert value(s, "nestctl_probe_failed", id="qemu/101", probe="guest_virt_flag_visible") is None
    assert value(s, "nestctl_up", id="qemu/102", layer="guest") == 0
    assert value(s, "nestctl_up", id="qemu/103", layer="guest") is None
    assert not any("Evil" in v for _, labels in s for _, v in labels)
    assert "fake_metric" not in names(s)


def test_without_guests_no_guest_series() -> None:
    body = cluster_body()
    body["vms"] = [vm_obj(100, "pve1", guest=None)]
    s = samples_of(body)
    assert not [n for n in names(s) if n.startswith("nestctl_guest_")]
    assert value(s, "nestctl_up", id="qemu/100", layer="guest") is None


def test_hostile_values_never_become_labels_or_samples() -> None:
    body = cluster_body()
    body["nodes"][0]["node"] = "pve1\n# TYPE"
    body["vms"] = [
        vm_obj(100, "pve1", findings=[{"code": "x y", "severity": "error"}]),
        vm_obj("101", "pve1"),  # a vmid that is not a number
        vm_obj(102, "pve1", restart_required="yes", nested={"exposed": 1.5e400}),
        "not an object",
    ]
    body["findings"] = "garbage"
    s = samples_of(body)
    assert not [k for k in s if ("id", "qemu/101") in k[1]]
    assert value(s, "nestctl_probe_failed", id="qemu/102", probe="vm_restart_pending") == 1
    assert value(s, "nestctl_probe_failed", id="qemu/102", probe="vm_nested_exposed") == 1
    assert not [k for k in s if k[0] == "nestctl_finding" and ("code", "x y") in k[1]]
    assert not [k for k in s if any("TYPE" in v for _, v in k[1])]


def test_bench_hook_takes_the_bench_feeds_samples() -> None:
    fam = Families()
    bench_families(
        fam,
        [
            ({"id": "pve1/100", "bench": "cpu"}, 0.94),  # a VM measured from its host
            ({"id": "local/101", "bench": "syscall"}, 0.31),
            ({"id": "pve1", "bench": "cpu"}, 0.99),  # a host measured on itself
            ({"id": "qemu/../x", "bench": "cpu"}, 1.0),
            ({"id": "pve1/102", "bench": "disk"}, None),
            ({"id": "pve1/103", "bench": "free text"}, 0.5),
        ],
    )
    s = parse(render(fam))
    assert value(s, "nestctl_bench_ratio", id="qemu/100", bench="cpu") == 0.94
    assert value(s, "nestctl_bench_ratio", id="qemu/101", bench="syscall") == 0.31
    assert value(s, "nestctl_bench_ratio", id="node/pve1", bench="cpu") == 0.99
    assert value(s, "nestctl_probe_failed", id="qemu/102", probe="bench_ratio") == 1
    assert len([k for k in s if k[0] == "nestctl_bench_ratio"]) == 3


def test_saved_bench_results_reach_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot `nestctl bench` fills: its feed module's samples become families of a run."""
    feed = types.ModuleType("nestctl.bench.feed")
    feed.recent_results = lambda host: [{"where": {}}]  # type: ignore[attr-defined]
    feed.metric_samples = lambda docs: [({"id": "pve1/100", "bench": "cpu"}, 0.9)] * len(docs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nestctl.bench.feed", feed)
    check = local_check(str(lab_node(tmp_path)), guests=False, all_nodes=False, use_qemu=False)
    result = CheckRunner(check, guests=False).run(30, None)
    s = parse(render(result.families))
    assert value(s, "nestctl_bench_ratio", id="qemu/100", bench="cpu") == 0.9
    # Without the bench package: no samples, and the run still succeeds.
    monkeypatch.setitem(sys.modules, "nestctl.bench.feed", None)
    result = CheckRunner(check, guests=False).run(30, None)
    assert result.ok
    assert "nestctl_bench_ratio" not in names(parse(render(result.families)))


def test_every_family_is_in_the_catalogue_and_the_docs() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for name in CATALOGUE:
        assert name.startswith("nestctl_")
        assert f"`{name}`" in docs, name
