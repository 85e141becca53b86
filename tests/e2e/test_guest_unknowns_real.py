"""Real guests, real qemu-ga: an agent that refuses guest-exec (qemu-ga -b guest-exec) and a guest
without `test`/`[`. Both guests DO have /dev/kvm (their consoles say so): nestctl must answer
null with one finding naming what would let it check, never false."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.findings import Report
from nestctl.guest.agent import GuestAgent
from nestctl.guest.agent_machine import AgentMachine
from nestctl.guest.report import guest_report
from tests.e2e.guest_vm import BootedGuest
from tests.e2e.test_vm_guest_cli import node_with_guest, vm_guest_json

pytestmark = pytest.mark.e2e


def _report(guest: BootedGuest) -> tuple[Report, AgentMachine]:
    agent = GuestAgent(guest.qga_socket, timeout=30.0)
    agent.sync()  # the agent starts a second or two after /init prints @@READY
    agent.timeout = 10.0
    machine = AgentMachine(agent)
    try:
        return guest_report(machine, os=machine.os_kind), machine
    finally:
        agent.close()


def _the_one_unknown(report: Report) -> str:
    incomplete = [f for f in report.findings if f.code == "guest.check.incomplete"]
    assert len(incomplete) == 1, [f.code for f in report.findings]
    return f"{incomplete[0].message}\n{incomplete[0].fix}"


def test_agent_refusing_guest_exec_gives_null_not_false(
    variant_guests: dict[str, BootedGuest],
) -> None:
    booted = variant_guests["block-exec"]
    assert booted.markers.get("VARIANT") == "block-exec"
    assert booted.dev_kvm  # the truth nestctl cannot see without guest-exec
    report, machine = _report(booted)
    guest = report.payload["guest"]
    assert guest["dev_kvm"] is None
    assert guest["kvm_usable"] is None
    assert guest["linux"]["lab"]["libvirtd_installed"] is None
    # What file reads can prove still counts: the flag, and the module through its parameter.
    assert guest["virt_flag"] == "svm"
    assert guest["linux"]["kvm_module"] == "kvm_amd"
    text = _the_one_unknown(report)
    assert "refuses guest-exec" in text
    assert "block-rpcs" in text
    assert "/etc/qemu/qemu-ga.conf" in text
    codes = {f.code for f in report.findings}
    assert not codes & {
        "guest.kvm.no-device",
        "guest.kvm.module-not-loaded",
        "guest.lab.no-libvirt",
    }
    assert report.exit_code == 2
    assert machine.failure is None  # the agent itself works


def test_guest_without_test_gives_null_not_false(variant_guests: dict[str, BootedGuest]) -> None:
    booted = variant_guests["no-test"]
    assert booted.markers.get("VARIANT") == "no-test"
    assert booted.dev_kvm
    report, machine = _report(booted)
    guest = report.payload["guest"]
    assert guest["dev_kvm"] is None
    assert guest["kvm_usable"] is None
    assert guest["virt_flag"] == "svm"
    assert guest["linux"]["kvm_module"] == "kvm_amd"
    assert "no test" in _the_one_unknown(report)
    assert report.exit_code == 2
    assert machine.failure is None


def test_vm_guest_with_exec_refused_is_unknown_not_broken(
    tmp_path: Path, variant_guests: dict[str, BootedGuest]
) -> None:
    rc, vm = vm_guest_json(node_with_guest(tmp_path, variant_guests["block-exec"]))
    assert vm["guest"]["dev_kvm"] is None
    assert vm["guest"]["kvm_usable"] is None
    assert vm["chain"]["guest"] == "unknown"
    assert vm["broken_link"] is None
    assert rc == 2
