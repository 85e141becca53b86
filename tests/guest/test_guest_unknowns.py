"""Unknown is never "no": a guest whose agent refuses guest-exec, or that lacks `test`, gives null
plus ONE finding naming what would let nestctl check; three-valued logic all the way to the JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nestctl.findings import Report, Verdict
from nestctl.guest.agent import GuestAgent
from nestctl.guest.agent_machine import AgentMachine
from nestctl.guest.facts import KvmAccess
from nestctl.guest.report import all_of, guest_report
from nestctl.machine import CommandStatus, Listing, Presence, ReadStatus
from tests.guest.fake_agent import FakeAgent, FakeProgram, serving
from tests.guest.linux_trees import l1_kvm
from tests.guest.table_machine import TableMachine


def _files() -> dict[str, bytes]:
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in l1_kvm().items()}


@pytest.fixture
def fake() -> Iterator[FakeAgent]:
    with serving(_files()) as server:
        yield server


def _report(fake: FakeAgent) -> tuple[dict[str, Any], list[str], Report]:
    # No test here is about timeouts: a generous one keeps a loaded CI machine from making one.
    machine = AgentMachine(GuestAgent(fake.path, timeout=30))
    try:
        rep = guest_report(machine, os=machine.os_kind)
    finally:
        machine.agent.close()
    return rep.payload["guest"], [f.code for f in rep.findings], rep


def test_agent_refusing_guest_exec_gives_null_and_one_finding(fake: FakeAgent) -> None:
    fake.blocked = {"guest-exec"}
    # Were these programs reachable they would answer "absent": they must never be asked.
    fake.programs["test"] = FakeProgram(exitcode=1)
    fake.programs["ls"] = FakeProgram(exitcode=2, stderr=b"ls: No such file or directory\n")
    guest, codes, rep = _report(fake)
    assert guest["dev_kvm"] is None
    assert guest["kvm_usable"] is None
    lab = guest["linux"]["lab"]
    assert lab["libvirtd_installed"] is None
    assert lab["qemu_binaries"] is None
    # The nested parameter is a file: read through guest-file-read, it still proves the module.
    assert guest["linux"]["kvm_module"] == "kvm_amd"
    assert guest["virt_flag"] == "svm"
    assert codes.count("guest.check.incomplete") == 1
    for wrong in ("guest.kvm.no-device", "guest.kvm.module-not-loaded", "guest.lab.no-libvirt"):
        assert wrong not in codes
    finding = next(f for f in rep.findings if f.code == "guest.check.incomplete")
    assert "/dev/kvm" in finding.message
    assert "libvirt" in finding.message
    assert "refuses guest-exec" in finding.message
    assert "block-rpcs" in (finding.fix or "")
    assert rep.final_verdict is Verdict.UNKNOWN
    assert rep.exit_code == 2


def test_guest_without_test_gives_null_and_says_so(fake: FakeAgent) -> None:
    fake.programs["ls"] = FakeProgram(stdout=b"kvm\nkvm_amd\n")
    guest, codes, rep = _report(fake)
    assert guest["dev_kvm"] is None
    assert guest["kvm_usable"] is None
    assert codes.count("guest.check.incomplete") == 1
    finding = next(f for f in rep.findings if f.code == "guest.check.incomplete")
    assert "no test" in finding.message
    assert rep.exit_code == 2


def test_os_unknown_is_not_assumed_linux(fake: FakeAgent) -> None:
    fake.blocked = {"guest-get-osinfo"}
    del fake.files["/proc/cpuinfo"]  # what a Windows guest's agent would answer for /proc
    guest, codes, rep = _report(fake)
    assert guest["os"] is None
    assert guest["dev_kvm"] is None
    assert guest["kvm_usable"] is None
    assert codes == ["guest.os.unknown"]
    assert rep.exit_code == 2


def test_a_checked_guest_still_answers_true_and_false(fake: FakeAgent) -> None:
    fake.programs["test"] = lambda args: FakeProgram(exitcode=0 if args[-1] == "/dev/kvm" else 1)
    fake.programs["ls"] = lambda args: FakeProgram(
        stdout=b"kvm\nkvm_amd\n" if args[-1] == "/sys/module/" else b"qemu-system-x86_64\n"
    )
    fake.programs["sh"] = FakeProgram(exitcode=0)
    fake.programs["systemctl"] = FakeProgram(exitcode=3, stdout=b"inactive\n")
    guest, codes, _rep = _report(fake)
    assert guest["dev_kvm"] is True
    assert guest["kvm_usable"] is True
    assert guest["linux"]["lab"]["libvirtd_installed"] is False
    assert "guest.check.incomplete" not in codes


@pytest.mark.parametrize(
    ("values", "want"),
    [
        ((True, True), True),
        ((True, None), None),
        ((None, True), None),
        ((None, False), False),
        ((False, None), False),
        ((True, False), False),
    ],
)
def test_all_of_is_three_valued(values: tuple[bool | None, ...], want: bool | None) -> None:
    assert all_of(*values) is want


class _NoAccessCheck(TableMachine):
    """/dev/kvm exists, but neither `stat` nor `sh` can tell whether it opens."""

    def exists(self, hostpath: str) -> Presence:
        return super().exists(hostpath)

    def listdir(self, hostpath: str) -> Listing:
        return super().listdir(hostpath)


def test_dev_kvm_present_but_access_unknown_is_null_not_false() -> None:
    machine = _NoAccessCheck({}, dict(l1_kvm()), unanswered=CommandStatus.NOT_FOUND)
    machine.files["/proc/self/status"] = "Uid:\t1000\t1000\t1000\t1000\nGroups:\t1000\n"
    rep = guest_report(machine, os="linux")
    guest = rep.payload["guest"]
    assert guest["dev_kvm"] is True
    assert guest["linux"]["kvm_access"]["usable"] is None
    assert guest["kvm_usable"] is None  # bool(True and None) said False


def test_unknown_presence_from_the_host_door_names_root() -> None:
    class Denied(TableMachine):
        def exists(self, hostpath: str) -> Presence:
            if hostpath == "/dev/kvm":
                return Presence(hostpath, ReadStatus.NOT_PERMITTED, "Permission denied")
            return super().exists(hostpath)

    machine = Denied({}, dict(l1_kvm()))
    rep = guest_report(machine, os="linux")
    assert rep.payload["guest"]["dev_kvm"] is None
    finding = next(f for f in rep.findings if f.code == "guest.check.incomplete")
    assert finding.fix == "run nestctl guest as root"
    assert KvmAccess(None, "").usable is None


def test_windows_guest_with_exec_refused_is_unknown_with_the_fix(fake: FakeAgent) -> None:
    fake.os_id = "mswindows"
    fake.blocked = {"guest-exec"}
    guest, codes, rep = _report(fake)
    assert guest["os"] == "windows"
    verdicts = guest["windows"]["verdicts"]
    assert {v["status"] for k, v in verdicts.items() if k != "docker_desktop"} == {"unknown"}
    assert codes.count("guest.check.incomplete") == 1
    finding = next(f for f in rep.findings if f.code == "guest.check.incomplete")
    assert "block-rpcs" in (finding.fix or "")
    assert rep.exit_code == 2
