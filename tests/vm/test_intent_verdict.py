"""The one intent decision and the one VM verdict (nestctl.vm.intent, nestctl.vm.verdict)."""

from __future__ import annotations

from typing import Any

import pytest

from nestctl.findings import error, info, unknown, warning
from nestctl.vm.intent import decide_intent, vm_tags
from nestctl.vm.verdict import judge_vm, overall, settle

OK = {"host": "ok", "config": "ok", "process": "ok", "guest": "ok"}


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"cpu": "host"}, (False, "none")),  # cpu: host alone is speed, not intent
        ({}, (False, "none")),
        ({"tags": "web;nested"}, (True, "tag")),
        ({"tags": "Nested"}, (True, "tag")),  # Proxmox tags are case-insensitive
        ({"tags": "nested-lab"}, (False, "none")),  # a whole tag, not a prefix
        ({"tags": "db nested"}, (True, "tag")),
        ({"cpu": "host,flags=+nested-virt"}, (True, "config")),
        ({"cpu": "EPYC-v4,flags=+aes;+svm"}, (True, "config")),
        ({"cpu": "host,flags=-nested-virt"}, (False, "none")),
        ({"args": "-cpu host,+vmx"}, (True, "config")),
        ({"args": "-cpu kvm64,vmx=on"}, (True, "config")),
        ({"args": "-cpu host,-vmx"}, (False, "none")),
        ({"args": "-cpu host,vmx=off"}, (False, "none")),
        ({"args": "-device foo,vmx=on"}, (False, "none")),  # no -cpu: not a CPU flag
    ],
)
def test_intent_from_config(conf: dict[str, str], expected: tuple[bool, str]) -> None:
    got = decide_intent(conf)
    assert (got.wants_nested, got.intent) == expected


def test_intent_tag_name_is_configurable() -> None:
    assert decide_intent({"tags": "lab"}, tag="lab").intent == "tag"
    assert decide_intent({"tags": "nested"}, tag="lab").intent == "none"
    assert vm_tags({"tags": " a;B,c  d "}) == ["a", "b", "c", "d"]


def test_intent_custom_model_and_order() -> None:
    models = {"nested-epyc": {"flags": "+svm", "reported-model": "EPYC"}}
    assert decide_intent({"cpu": "custom-nested-epyc"}, custom_models=models).intent == "config"
    assert decide_intent({"cpu": "custom-other"}, custom_models=models).intent == "none"
    # The tag wins, then an inner layer, then the config, then the guest's role.
    both = {"tags": "nested", "cpu": "host,flags=+nested-virt"}
    assert decide_intent(both, hosts_inner=True).intent == "tag"
    assert decide_intent({"cpu": "host,flags=+nested-virt"}, hosts_inner=True).intent == (
        "inner-layer"
    )
    assert decide_intent(None).wants_nested is None
    assert decide_intent(None, hosts_inner=True).intent == "inner-layer"


@pytest.mark.parametrize(
    ("guest", "expected"),
    [
        ({"os": "linux", "linux": {"kvm_module": "kvm_intel"}}, (True, "guest")),
        ({"os": "linux", "linux": {"kvm_module": None}}, (False, "none")),
        ({"os": "windows", "windows": {"running_vms": ["dc1"]}}, (True, "inner-layer")),
        (
            {"os": "windows", "windows": {"verdicts": {"wsl2": {"status": "not-ready"}}}},
            (True, "guest"),
        ),
        (
            {"os": "windows", "windows": {"verdicts": {"hyperv": {"status": "not-enabled"}}}},
            (False, "none"),
        ),
        ({"os": "windows", "windows": {"hypervisorlaunchtype": "Auto"}}, (True, "guest")),
        (
            {"os": "windows", "windows": {"verdicts": {"docker_desktop": {"status": "ready"}}}},
            (True, "guest"),
        ),
        (None, (False, "none")),
    ],
)
def test_intent_from_guest_role(guest: dict[str, Any] | None, expected: tuple[bool, str]) -> None:
    got = decide_intent({"cpu": "host"}, guest=guest)
    assert (got.wants_nested, got.intent) == expected


def _vm(wants: bool | None, chain: dict[str, str], *findings: Any, **extra: Any) -> dict[str, Any]:
    return {
        "wants_nested": wants,
        "intent": "tag" if wants else "none",
        "chain": chain,
        "findings": [f.to_json() for f in findings],
        **extra,
    }


def test_a_vm_that_does_not_want_nesting_is_not_nested_whatever_its_chain() -> None:
    broken = {**OK, "config": "broken", "guest": "broken"}
    note = info("vm.nested.not-exposed", "VM 100: the guest does not see vmx/svm", "fix")
    v = judge_vm(_vm(False, broken, note))
    assert (v.verdict, v.broken_link, v.exit_word, v.can_host) == (
        "not-nested",
        None,
        "ready",
        None,
    )
    # --all-vms: the same VM judged as if it wanted nesting.
    v = judge_vm(_vm(False, broken, note), all_vms=True)
    assert (v.verdict, v.broken_link, v.fix) == ("not-ready", "config", "fix")
    # A problem that stops the VM itself concerns every VM.
    refused = error("vm.cpu.refused", "VM 100: Proxmox refuses this config: bad")
    v = judge_vm(_vm(False, {**broken, "config": "broken"}, refused))
    assert (v.verdict, v.broken_link) == ("not-ready", "config")


def test_wanted_vm_verdicts() -> None:
    assert judge_vm(_vm(True, OK)).verdict == "ready"
    assert judge_vm(_vm(True, OK)).can_host is True
    host_broken = {**OK, "host": "broken", "guest": "broken"}
    v = judge_vm(_vm(True, host_broken))
    assert (v.verdict, v.broken_link, v.fix) == ("not-ready", "host", "nestctl host enable")
    stale = {**OK, "process": "broken", "guest": "broken"}
    restart = error("vm.restart-required", "VM 100: restart required", "qm reboot 100")
    other = error("vm.nested.not-exposed", "VM 100: not seen", "nestctl vm enable 100")
    v = judge_vm(_vm(True, stale, other, restart))
    assert (v.verdict, v.broken_link, v.fix) == ("not-ready", "process", "qm reboot 100")
    host_unknown = {**OK, "host": "unknown", "guest": "unknown"}
    v = judge_vm(_vm(True, host_unknown))
    assert v.verdict == "unknown"
    assert "nested" in (v.message or "")
    # What the guest sees (its agent) outranks an unread earlier link.
    seen = _vm(True, {**host_unknown, "guest": "ok"}, guest={"via": "agent", "kvm_usable": True})
    assert judge_vm(seen).verdict == "ready"
    # A warning alone (e.g. "nothing to host an L3 with") does not make a guest unknown.
    assert judge_vm(_vm(True, OK, warning("guest.lab.no-qemu", "no QEMU"))).verdict == "ready"
    failed = unknown("vm.guest.agent-failed", "VM 100: the guest agent did not answer: timeout")
    assert judge_vm(_vm(True, OK, failed)).verdict == "unknown"
    assert judge_vm(_vm(None, OK)).verdict == "unknown"
    assert judge_vm({}).verdict == "unknown"  # hostile/odd input: never raises


def test_settle_grades_nesting_findings_by_intent() -> None:
    items = [
        error("vm.nested.not-exposed", "m"),
        unknown("vm.nested.unknown", "m"),
        error("vm.cpu.refused", "m"),
        error("vm.restart-required", "m"),
    ]
    loose = settle(items, strict=False)
    assert [(f.severity.value, f.undetermined) for f in loose] == [
        ("info", False),
        ("info", False),
        ("error", False),
        ("warning", False),
    ]
    assert settle(items, strict=True) == items


def test_overall_counts_not_nested_as_ready() -> None:
    assert overall(["not-nested", "ready"]) == "ready"
    assert overall(["not-nested", "unknown"]) == "unknown"
    assert overall(["unknown", "not-ready"]) == "not-ready"
    assert overall([]) == "ready"


def test_the_tag_option_renames_the_intent_tag_and_refuses_a_bad_name(tmp_path: Any) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from nestctl.cli import cli  # noqa: PLC0415
    from tests.vm.vmtrees import node, vm_conf  # noqa: PLC0415

    node(tmp_path)
    vm_conf(tmp_path, 100, "ostype: l26\ncpu: host\ntags: lab\n")
    base = ["vm", "--root", str(tmp_path), "--json", "--no-qemu"]
    res = CliRunner().invoke(cli, [*base, "--tag", "LAB"])
    assert '"intent": "tag"' in res.output
    res = CliRunner().invoke(cli, base)
    assert '"intent": "none"' in res.output
    res = CliRunner().invoke(cli, [*base, "--tag", "a b"])
    assert res.exit_code == 2
    assert "is not a Proxmox tag name" in res.output
