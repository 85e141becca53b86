"""Booted guests under TCG: what nestctl reads through the real guest agent is what the guest saw,
and what the QMP oracle predicts without booting is what the booted guest got."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestctl.guest.agent import AgentError, GuestAgent, agent_socket_path
from nestctl.guest.agent_machine import AgentMachine
from nestctl.host.cpuinfo import parse_cpuinfo
from nestctl.machine import CommandStatus, Host, ReadStatus
from nestctl.qemu.cache import CpuAnswerCache
from nestctl.qemu.cpuprobe import QemuCpuOracle
from tests.e2e.conftest import E2E_CPUS, PVE_VMID
from tests.e2e.guest_vm import BootedGuest

pytestmark = pytest.mark.e2e


def _machine(guest: BootedGuest) -> AgentMachine:
    # The agent starts a second or two after /init prints @@READY: sync waits for it.
    agent = GuestAgent(guest.qga_socket, timeout=30.0)
    agent.sync()
    agent.timeout = 10.0
    return AgentMachine(agent)


def test_guest_saw_what_the_reference_says(booted: BootedGuest) -> None:
    want = E2E_CPUS[booted.cpu]
    assert ("svm" in booted.flags) is want.svm
    assert ("vmx" in booted.flags) is want.vmx
    assert "hypervisor" in booted.flags
    assert booted.vendor == want.vendor
    assert booted.dev_kvm is want.dev_kvm


def test_agent_reads_cpuinfo_and_dev_kvm_as_the_guest_saw(booted: BootedGuest) -> None:
    machine = _machine(booted)
    try:
        cpuinfo = machine.read("/proc/cpuinfo")
        assert cpuinfo.status is ReadStatus.OK
        info = parse_cpuinfo(cpuinfo.text or "")
        assert info.flags == booted.flags
        assert info.vendor_id == booted.vendor
        assert machine.exists("/dev/kvm").present is booted.dev_kvm
        assert ("kvm" in machine.listdir("/dev").names) is booted.dev_kvm
        assert machine.failure is None
    finally:
        machine.agent.close()


def test_oracle_predicts_the_booted_guest(booted: BootedGuest, tmp_path: Path) -> None:
    oracle = QemuCpuOracle(cache=CpuAnswerCache(tmp_path / "cache.json"))
    answer = oracle.ask(booted.cpu)
    assert answer.error is None
    assert answer.source.startswith("qemu 7.") or answer.source.startswith("qemu ")
    assert answer.source.endswith(" tcg")
    assert answer.svm is ("svm" in booted.flags)
    assert answer.vmx is ("vmx" in booted.flags)
    assert answer.hypervisor is ("hypervisor" in booted.flags)
    assert answer.vendor == booted.vendor


def test_agent_socket_resolves_under_a_fake_pve_root(pve_guest_root: Path) -> None:
    host = Host(pve_guest_root)
    sock = agent_socket_path(host, PVE_VMID)
    assert sock == pve_guest_root / "var/run/qemu-server/100.qga"
    with GuestAgent(sock, timeout=30.0) as agent:
        agent.sync()
        assert agent.osinfo()["id"] == "nestctl-e2e"
        assert "guest-exec" in {c["name"] for c in agent.info()["supported_commands"]}


@pytest.fixture(scope="module")
def one_guest(booted_guests: dict[str, BootedGuest]) -> BootedGuest:
    return booted_guests["qemu64"]


def test_exec_and_file_errors_through_the_real_agent(one_guest: BootedGuest) -> None:
    machine = _machine(one_guest)
    try:
        ok = machine.run(["sh", "-c", "echo out; echo err >&2; exit 3"], ok_codes=(0, 3))
        assert (ok.status, ok.rc, ok.stdout, ok.stderr) == (CommandStatus.OK, 3, "out\n", "err\n")
        failed = machine.run(["sh", "-c", "exit 2"])
        assert (failed.status, failed.rc) == (CommandStatus.FAILED, 2)
        fed = machine.run(["cat"], stdin="from stdin\n")
        assert fed.stdout == "from stdin\n"
        missing_prog = machine.run(["/bin/no-such-program"])
        assert missing_prog.status is CommandStatus.NOT_FOUND
        slow = machine.run(["sleep", "5"], timeout=0.5)
        assert slow.status is CommandStatus.TIMEOUT
        assert machine.read("/no/such/file").status is ReadStatus.MISSING
        assert machine.read("/proc").status is ReadStatus.NOT_A_FILE
        assert machine.listdir("/no/such/dir").status is ReadStatus.MISSING
        assert machine.listdir("/proc/cpuinfo").status is ReadStatus.NOT_A_FILE
        assert machine.exists("/proc/cpuinfo").present is True
        assert machine.exists("/no/such/file").present is False
        assert machine.failure is None
        with pytest.raises(AgentError) as err:
            machine.agent.call("guest-no-such-command")
        assert err.value.error_class == "CommandNotFound"
        # Still in step after an error reply.
        assert machine.read("/proc/version").text.startswith("Linux version")  # type: ignore[union-attr]
    finally:
        machine.agent.close()


def test_guest_report_through_the_agent_matches_the_guest(booted: BootedGuest) -> None:
    """The guest layer's own probes, run from the host over the real agent: the contract keys say
    what the guest's console said (including svm visible while /dev/kvm cannot appear)."""
    from nestctl.guest.report import guest_report  # noqa: PLC0415

    machine = _machine(booted)
    try:
        report = guest_report(machine, os="linux")
    finally:
        machine.agent.close()
    guest = report.payload["guest"]
    want_flag = "svm" if "svm" in booted.flags else ("vmx" if "vmx" in booted.flags else None)
    assert guest["virt_flag"] == want_flag
    assert guest["dev_kvm"] is booted.dev_kvm
    assert guest["kvm_usable"] is booted.dev_kvm  # qemu-ga runs as root: access is not the issue
    assert guest["accel"] == "tcg"
    assert guest["linux"]["vendor_id"] == booted.vendor
    assert machine.failure is None
