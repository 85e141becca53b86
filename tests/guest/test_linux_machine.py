"""The Linux probes through the bare `Machine` protocol (as the guest agent serves it); fuzzed."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestctl.guest.linux import probe_linux
from nestctl.guest.report import guest_json, guest_report
from nestctl.guest.rules import guest_findings
from nestctl.machine import CommandStatus, Host
from tests.guest.linux_trees import l1_kvm
from tests.guest.table_machine import Answer, TableMachine
from tests.helpers import write_tree

CONTRACT = {"os", "virt_flag", "dev_kvm", "kvm_usable", "accel", "level"}


STAT = ("stat", "-L", "-c", "%f %u %g", "/dev/kvm")
TEST = ("sh", "-c", "test -r /dev/kvm && test -w /dev/kvm")
IS_ACTIVE = ("systemctl", "is-active", "libvirtd")


def _ok(rc: int, out: str = "") -> Answer:
    return Answer(rc, out.encode("utf-8", "surrogatepass"))


def DictMachine(  # noqa: N802 - a fake's name
    files: dict[str, str | bytes], answers: dict[tuple[str, ...], Answer]
) -> TableMachine:
    """Like the guest agent: no `stat`, files read, commands run (unknown ones: not found)."""
    return TableMachine(answers, files, unanswered=CommandStatus.NOT_FOUND)


def test_agent_path_uses_commands_for_what_files_cannot_tell() -> None:
    tree = l1_kvm()
    tree["/proc/self/status"] = "Uid:\t1000\t1000\t1000\t1000\nGroups:\t1000\n"
    machine = DictMachine(
        tree,
        {
            STAT: _ok(0, "21b0 0 104\n"),  # crw-rw---- root:kvm
            TEST: _ok(1),
            IS_ACTIVE: _ok(0, "active\n"),
        },
    )
    facts = probe_linux(machine)
    found = guest_findings(facts)
    codes = {f.code: f for f in found}
    assert "not in group kvm" in codes["guest.kvm.no-permission"].message
    assert "guest.lab.libvirtd-inactive" not in codes
    assert facts.linux is not None
    assert facts.linux.lab.libvirtd_state == "active"
    assert STAT in machine.ran


def test_agent_path_without_stat_or_test_is_unknown_not_wrong() -> None:
    tree = l1_kvm()
    tree["/proc/self/status"] = "Uid:\t1000\t1000\t1000\t1000\nGroups:\t1000\n"
    facts = probe_linux(DictMachine(tree, {}))
    codes = {f.code for f in guest_findings(facts)}
    assert "guest.kvm.access-unknown" in codes
    assert "guest.lab.libvirtd-unchecked" in codes


PATHS = sorted(l1_kvm())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(PATHS),
        st.one_of(st.text(max_size=300), st.binary(max_size=300)),
        max_size=len(PATHS),
    ),
    st.text(max_size=40),
)
def test_probe_never_crashes_on_arbitrary_contents(
    contents: dict[str, str | bytes], stat_out: str
) -> None:
    tree = l1_kvm()
    tree.update(contents)
    machine = DictMachine(tree, {STAT: _ok(0, stat_out), TEST: _ok(2)})
    facts = probe_linux(machine)
    found = guest_findings(facts)
    obj = guest_json(facts, found)
    assert set(obj) >= CONTRACT
    assert obj["accel"] in ("kvm", "tcg", "other", "none", "unknown")
    assert obj["level"] is None or obj["level"] >= 1


def test_fuzz_tree_on_disk_is_read_through_host(tmp_path: Path) -> None:
    # Binary garbage in sysfs through the real Host door: no traceback, a verdict.
    tree = l1_kvm()
    tree["/sys/class/dmi/id/sys_vendor"] = b"\xff\xfe\x00Q\x00E\x00M\x00U"
    tree["/proc/cpuinfo"] = b"\x00\x01flags: svm\xff\n"
    write_tree(tmp_path, tree)
    report = guest_report(Host(tmp_path), os="linux")
    assert report.exit_code in (0, 1, 2)
