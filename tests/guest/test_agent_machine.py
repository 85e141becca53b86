"""`AgentMachine`: the Machine protocol over the agent, with Host's statuses for guest failures."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestctl.guest import agent as agent_mod
from nestctl.guest.agent import AgentUnavailable, GuestAgent
from nestctl.guest.agent_machine import AgentMachine
from nestctl.machine import CommandStatus, Machine, ReadStatus
from tests.guest.fake_agent import FakeAgent, FakeProgram


@pytest.fixture
def fake() -> Iterator[FakeAgent]:
    d = Path(tempfile.mkdtemp(prefix="nq-"))
    server = FakeAgent(
        d / "qga.sock",
        files={"/proc/cpuinfo": b"vendor_id\t: AuthenticAMD\nflags\t\t: fpu svm hypervisor\n"},
    )
    yield server
    server.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def machine(fake: FakeAgent, monkeypatch: pytest.MonkeyPatch) -> Iterator[AgentMachine]:
    monkeypatch.setattr(agent_mod, "SYNC_ATTEMPT", 0.2)
    m = AgentMachine(GuestAgent(fake.path, timeout=1))
    yield m
    m.agent.close()


def test_is_a_machine(machine: AgentMachine) -> None:
    m: Machine = machine  # the guest probes take any Machine
    assert m.read("/proc/cpuinfo").ok


def test_read_ok_and_missing(machine: AgentMachine) -> None:
    ok = machine.read("/proc/cpuinfo")
    assert ok.status is ReadStatus.OK
    assert "svm" in (ok.text or "")
    missing = machine.read("/etc/nope")
    assert missing.status is ReadStatus.MISSING
    assert "No such file" in (missing.error or "")
    assert machine.failure is None


def test_run_maps_exit_codes_like_host(fake: FakeAgent, machine: AgentMachine) -> None:
    fake.programs["true"] = FakeProgram(exitcode=0, stdout=b"yes\n")
    fake.programs["false"] = FakeProgram(exitcode=1, stderr=b"no\n")
    fake.programs["sh"] = FakeProgram(exitcode=127, stderr=b"sh: kvm-ok: not found\n")
    fake.programs["sleep"] = FakeProgram(never_exits=True)
    ok = machine.run(["true"])
    assert (ok.status, ok.rc, ok.stdout) == (CommandStatus.OK, 0, "yes\n")
    failed = machine.run(["false"])
    assert (failed.status, failed.rc, failed.stderr) == (CommandStatus.FAILED, 1, "no\n")
    assert machine.run(["false"], ok_codes=(0, 1)).ok
    assert machine.run(["sh", "-c", "kvm-ok"]).status is CommandStatus.NOT_FOUND
    assert machine.run(["/usr/sbin/kvm-ok"]).status is CommandStatus.NOT_FOUND  # not in guest
    assert machine.run(["sleep", "9"], timeout=0.3).status is CommandStatus.TIMEOUT
    assert machine.run([]).status is CommandStatus.NOT_FOUND
    assert machine.failure is None


def test_exists_and_listdir_use_guest_commands(fake: FakeAgent, machine: AgentMachine) -> None:
    present = {"/dev/kvm"}
    fake.programs["test"] = lambda args: FakeProgram(exitcode=0 if args[-1] in present else 1)
    fake.programs["ls"] = lambda args: (
        FakeProgram(stdout=b"null\nkvm\nttyS0\n")
        if args[-1] == "/dev/"
        else FakeProgram(
            exitcode=2, stderr=b"ls: cannot access '/nope/': No such file or directory\n"
        )
    )
    assert machine.exists("/dev/kvm").present is True
    assert machine.exists("/dev/nope").present is False
    assert machine.listdir("/dev").names == ("kvm", "null", "ttyS0")
    assert machine.listdir("/nope").status is ReadStatus.MISSING


def test_windows_guest_uses_powershell(fake: FakeAgent, machine: AgentMachine) -> None:
    fake.os_id = "mswindows"
    calls: list[list[str]] = []

    def powershell(args: list[str]) -> FakeProgram:
        calls.append(args)
        return FakeProgram(stdout=b"True\r\n" if "Test-Path" in args[-1] else b"a\r\nb\r\n")

    fake.programs["powershell.exe"] = powershell
    assert machine.exists(r"C:\Windows\System32\vmcompute.exe").present is True
    assert machine.listdir(r"C:\it's").names == ("a", "b")
    assert calls[0][-1] == r"Test-Path -LiteralPath 'C:\Windows\System32\vmcompute.exe'"
    assert calls[1][-1] == r"Get-ChildItem -Force -Name -LiteralPath 'C:\it''s'"


def test_agent_gone_is_recorded_and_later_calls_return_at_once(
    fake: FakeAgent, machine: AgentMachine
) -> None:
    fake.behave["guest-file-open"] = lambda _req: "DROP"
    first = machine.read("/proc/cpuinfo")
    assert first.status is ReadStatus.COULD_NOT_RUN
    assert "guest agent" in (first.error or "")
    assert isinstance(machine.failure, AgentUnavailable)
    fake.close()  # nothing answers any more: no call may wait for a timeout
    start = time.monotonic()
    assert machine.read("/proc/version").status is ReadStatus.COULD_NOT_RUN
    assert machine.run(["true"]).status is CommandStatus.FAILED
    # The agent is gone: nothing can be checked, and nothing reads as "absent".
    assert machine.exists("/dev/kvm").present is None
    assert machine.listdir("/dev").status is ReadStatus.COULD_NOT_RUN
    assert time.monotonic() - start < 0.2


def test_manifest_names_what_was_read_and_run(fake: FakeAgent, machine: AgentMachine) -> None:
    fake.programs["true"] = FakeProgram()
    machine.read("/proc/cpuinfo")
    machine.run(["true"])
    assert [(e.kind, e.target, e.outcome) for e in machine.manifest] == [
        ("read", "agent:/proc/cpuinfo", "ok"),
        ("run", "agent:true", "ok"),
    ]


def test_agent_refusing_guest_exec_leaves_existence_unknown_not_absent(
    fake: FakeAgent, machine: AgentMachine
) -> None:
    fake.blocked = {"guest-exec"}
    fake.programs["test"] = FakeProgram(exitcode=1)  # would say "absent" if it could run
    presence = machine.exists("/dev/kvm")
    assert presence.present is None
    assert presence.status is ReadStatus.COULD_NOT_RUN
    assert "refuses guest-exec" in (presence.error or "")
    assert machine.listdir("/sys/module").status is ReadStatus.COULD_NOT_RUN
    assert machine.failure is None  # the agent works: reads still go through
    assert machine.read("/proc/cpuinfo").ok
    blocker = machine.blocker
    assert blocker is not None
    assert "block-rpcs" in blocker.fix
    assert "/etc/qemu/qemu-ga.conf" in blocker.fix
    # Seen once, remembered: later commands do not ask the agent again.
    asked = fake.seen.count("guest-exec")
    machine.run(["true"])
    assert fake.seen.count("guest-exec") == asked


def test_guest_without_test_leaves_existence_unknown(
    fake: FakeAgent, machine: AgentMachine
) -> None:
    presence = machine.exists("/dev/kvm")  # no "test" program in the fake guest
    assert presence.present is None
    assert presence.status is ReadStatus.COULD_NOT_RUN
    blocker = machine.blocker
    assert blocker is not None
    assert "test" in blocker.reason


def test_test_failing_with_an_error_code_is_unknown(fake: FakeAgent, machine: AgentMachine) -> None:
    fake.programs["test"] = FakeProgram(exitcode=2, stderr=b"test: missing argument\n")
    assert machine.exists("/dev/kvm").present is None


def test_os_unknown_when_osinfo_fails_and_no_linux_kernel_is_seen(
    fake: FakeAgent, machine: AgentMachine
) -> None:
    fake.blocked = {"guest-get-osinfo"}
    assert machine.os_kind == "unknown"
    assert machine.exists("/dev/kvm").present is None


def test_a_file_longer_than_the_limit_is_truncated_not_ok(
    fake: FakeAgent, machine: AgentMachine
) -> None:
    fake.files["/var/log/big"] = b"x" * 5000
    cut = machine.read("/var/log/big", max_bytes=1000)
    assert cut.status is ReadStatus.TRUNCATED
    assert cut.text == "x" * 1000
    exact = machine.read("/var/log/big", max_bytes=5000)
    assert exact.status is ReadStatus.OK


@pytest.mark.parametrize(
    "osinfo",
    [
        "blocked",  # qemu-ga configured to refuse guest-get-osinfo
        "",  # qemu-ga on a Linux without /etc/os-release: osinfo has no id
    ],
)
def test_os_from_the_kernel_when_osinfo_does_not_say(
    fake: FakeAgent, machine: AgentMachine, osinfo: str
) -> None:
    if osinfo == "blocked":
        fake.blocked = {"guest-get-osinfo"}
    fake.os_id = osinfo
    fake.files["/proc/sys/kernel/ostype"] = b"Linux\n"
    assert machine.os_kind == "linux"
