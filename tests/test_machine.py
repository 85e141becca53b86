"""The one door to the machine: reads keep missing/unreadable apart, writes are atomic, commands
under a non-live root are recorded and never run."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from nestctl.machine import (
    CommandResult,
    CommandStatus,
    Host,
    Listing,
    Presence,
    ReadStatus,
    RecordingRunner,
    UnsafeWriteError,
)
from tests.helpers import read_tree, write_tree
from tests.privileges import DENY_DIR, DENY_FILE, PASS_ONLY, as_unprivileged, needs_root


def test_paths_are_mapped_under_the_root(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/proc/cpuinfo": "vendor_id : GenuineIntel\n"})
    host = Host(tmp_path)
    assert not host.live
    assert host.read_text("/proc/cpuinfo") == "vendor_id : GenuineIntel\n"
    assert host.hostpath(host.path("/proc/cpuinfo")) == "/proc/cpuinfo"


def test_missing_unreadable_and_directory_are_distinct(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/etc/secret": "x", "/etc/dir/a": "y"})
    host = Host(tmp_path)
    assert host.read("/etc/nope").status is ReadStatus.MISSING
    assert host.read("/etc/dir").status is ReadStatus.NOT_A_FILE
    assert host.read("/etc/secret/below").status is ReadStatus.MISSING


def test_what_a_user_may_not_see_is_not_permitted_never_missing(open_tmp_path: Path) -> None:
    write_tree(open_tmp_path, {"/etc/secret": "x", "/root/dir/a": "", "/var/run/qemu-server/1": ""})
    (open_tmp_path / "etc/secret").chmod(DENY_FILE)
    (open_tmp_path / "root").chmod(DENY_DIR)
    (open_tmp_path / "var/run/qemu-server").chmod(PASS_ONLY)  # may pass through, not list
    (open_tmp_path / "etc").chmod(0o555)  # root's 0755 /etc, as nobody sees it

    def look() -> list[object]:
        host = Host(open_tmp_path)
        return [
            host.read("/etc/secret").status,
            host.read_tail("/etc/secret").status,
            host.read_text("/etc/secret"),
            host.exists("/root/dir/a").present,
            host.exists("/root/dir/a").status,
            host.listdir("/root/dir").status,
            host.listdir("/var/run/qemu-server").status,
            host.exists("/var/run/qemu-server/1").present,  # known without listing
            host.writable_dir("/etc/modprobe.d"),
        ]

    denied = ReadStatus.NOT_PERMITTED
    assert as_unprivileged(look) == [
        denied,
        denied,
        None,
        None,
        denied,
        denied,
        denied,
        True,
        "/etc/modprobe.d: permission denied",
    ]


def test_binary_garbage_is_decoded_not_raised(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/sys/module/kvm_intel/parameters/nested": b"\xff\xfe\x00Y\n"})
    text = Host(tmp_path).read_text("/sys/module/kvm_intel/parameters/nested")
    assert text is not None
    assert "Y" in text


def test_glob_lists_sorted_host_paths(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"/etc/modprobe.d/b.conf": "", "/etc/modprobe.d/a.conf": "", "/etc/modprobe.d/x.txt": ""},
    )
    host = Host(tmp_path)
    assert host.glob("/etc/modprobe.d", "*.conf").paths() == [
        "/etc/modprobe.d/a.conf",
        "/etc/modprobe.d/b.conf",
    ]
    missing = host.glob("/nonexistent")
    assert (missing.status, missing.names) == (ReadStatus.MISSING, ())


def test_commands_under_a_fake_root_are_recorded_not_run(tmp_path: Path) -> None:
    host = Host(tmp_path)
    result = host.run(["modprobe", "-r", "kvm_intel"])
    assert result.status is CommandStatus.RECORDED
    assert isinstance(host.runner, RecordingRunner)
    assert host.runner.calls == [("modprobe", "-r", "kvm_intel")]


def test_a_responder_answers_like_the_real_command(tmp_path: Path) -> None:
    def respond(argv: tuple[str, ...]) -> CommandResult | None:
        if argv[0] == "modprobe":
            return CommandResult(
                argv, CommandStatus.FAILED, 1, "", "modprobe: FATAL: Module kvm_intel is in use.\n"
            )
        return None

    host = Host(tmp_path, runner=RecordingRunner(respond))
    result = host.run(["modprobe", "-r", "kvm_intel"])
    assert result.rc == 1
    assert "is in use" in result.describe()
    assert host.run(["qm", "list"]).status is CommandStatus.RECORDED


def test_write_atomic_gives_a_fixed_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/etc/modprobe.d/kvm-intel.conf": "old\n"})
    (tmp_path / "etc/modprobe.d/kvm-intel.conf").chmod(0o666)
    host = Host(tmp_path)
    host.write_atomic("/etc/modprobe.d/kvm-intel.conf", "options kvm_intel nested=1\n")
    assert read_tree(tmp_path) == {"/etc/modprobe.d/kvm-intel.conf": "options kvm_intel nested=1\n"}
    # Never the mode that was there: a world-writable modprobe.d file is a root escalation.
    assert (tmp_path / "etc/modprobe.d/kvm-intel.conf").stat().st_mode & 0o777 == 0o644
    host.write_atomic("/etc/new/dir/file.conf", "x\n")
    assert (tmp_path / "etc/new/dir/file.conf").stat().st_mode & 0o777 == 0o644


def test_write_atomic_never_writes_through_a_symlink(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/dev/null": ""})
    (tmp_path / "dev/null").chmod(0o666)  # a stand-in for the real /dev/null's mode
    (tmp_path / "etc/modprobe.d").mkdir(parents=True)
    link = tmp_path / "etc/modprobe.d/kvm-intel.conf"
    link.symlink_to(tmp_path / "dev/null")
    host = Host(tmp_path)
    with pytest.raises(UnsafeWriteError, match="symlink the plan did not name"):
        host.write_atomic("/etc/modprobe.d/kvm-intel.conf", "options kvm_intel nested=1\n")
    assert link.is_symlink()
    host.write_atomic(
        "/etc/modprobe.d/kvm-intel.conf", "options kvm_intel nested=1\n", replace_symlink=True
    )
    assert not link.is_symlink()
    assert link.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "dev/null").read_text() == ""  # the target is untouched
    assert (tmp_path / "dev/null").stat().st_mode & 0o777 == 0o666
    os.mkfifo(tmp_path / "etc/modprobe.d/fifo.conf")
    with pytest.raises(UnsafeWriteError, match="is a FIFO"):
        host.write_atomic("/etc/modprobe.d/fifo.conf", "x\n")


def test_files_written_as_root_belong_to_root(open_tmp_path: Path) -> None:
    needs_root()
    write_tree(open_tmp_path, {"/etc/modprobe.d/kvm.conf": "old\n"})
    os.chown(open_tmp_path / "etc/modprobe.d/kvm.conf", 65534, 65534)
    Host(open_tmp_path).write_atomic("/etc/modprobe.d/kvm.conf", "new\n")
    st = (open_tmp_path / "etc/modprobe.d/kvm.conf").stat()
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_backups_keep_links_modes_and_owners_in_a_directory_per_run(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/etc/modprobe.d/kvm.conf": "options kvm_intel nested=0\n"})
    conf = tmp_path / "etc/modprobe.d/kvm.conf"
    conf.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(conf, 65534, 65534)
    (tmp_path / "etc/modprobe.d/kvm-intel.conf").symlink_to("/dev/null")
    host = Host(tmp_path)
    first = host.make_backup_dir("/var/backups/nestctl", "20261124T210000Z")
    second = host.make_backup_dir("/var/backups/nestctl", "20261124T210000Z")
    assert first != second  # two runs in one second do not share (or overwrite) backups
    assert first.startswith("/var/backups/nestctl/20261124T210000Z-")
    dest = host.backup("/etc/modprobe.d/kvm.conf", first)
    assert dest == f"{first}/etc/modprobe.d/kvm.conf"
    copy = host.path(dest)
    assert copy.read_text() == "options kvm_intel nested=0\n"
    assert (copy.stat().st_mode & 0o777, copy.stat().st_uid) == (0o640, conf.stat().st_uid)
    link = host.backup("/etc/modprobe.d/kvm-intel.conf", first)
    assert link is not None
    assert host.path(link).is_symlink()  # the link itself, not /dev/null's content or mode
    assert os.readlink(host.path(link)) == "/dev/null"
    assert host.backup("/etc/modprobe.d/none.conf", first) is None
    # And back: a link comes back as the link, a file with its mode.
    (tmp_path / "etc/modprobe.d/kvm-intel.conf").unlink()
    conf.write_text("changed\n")
    conf.chmod(0o644)
    host.restore(link, "/etc/modprobe.d/kvm-intel.conf")
    host.restore(dest, "/etc/modprobe.d/kvm.conf")
    assert os.readlink(tmp_path / "etc/modprobe.d/kvm-intel.conf") == "/dev/null"
    assert conf.read_text() == "options kvm_intel nested=0\n"
    assert conf.stat().st_mode & 0o777 == 0o640


def test_a_fifo_is_not_backed_up(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc/x.conf")
    host = Host(tmp_path)
    with pytest.raises(UnsafeWriteError, match="is a FIFO"):  # and it did not block reading it
        host.backup("/etc/x.conf", host.make_backup_dir("/var/backups/nestctl", "s"))


def test_root_problems_are_reported(tmp_path: Path) -> None:
    assert Host(tmp_path / "missing").root_problem() is not None
    (tmp_path / "file").write_text("")
    assert Host(tmp_path / "file").root_problem() is not None
    assert Host(tmp_path).root_problem() is None


def test_unwritable_directory_is_named(open_tmp_path: Path) -> None:
    (open_tmp_path / "etc").mkdir()
    (open_tmp_path / "etc").chmod(0o555)
    problem = as_unprivileged(lambda: Host(open_tmp_path).writable_dir("/etc/modprobe.d"))
    assert problem == "/etc/modprobe.d: permission denied"


def test_find_program_under_a_root(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/usr/bin/qemu-system-x86_64": "#!/bin/sh\n"})
    host = Host(tmp_path)
    assert host.find_program("qemu-system-x86_64") is None  # not executable
    (tmp_path / "usr/bin/qemu-system-x86_64").chmod(0o755)
    assert host.find_program("qemu-system-x86_64") == "/usr/bin/qemu-system-x86_64"


def test_large_limits_do_not_break_procfs_sysctl_reads() -> None:
    # procfs sysctl files refuse one huge read (ENOMEM); Host.read reads in chunks.
    if not os.path.exists("/proc/sys/kernel/osrelease"):
        pytest.skip("no procfs here")
    read = Host("/").read("/proc/sys/kernel/osrelease")
    assert read.status is ReadStatus.OK
    assert read.text is not None
    assert read.text.strip() == os.uname().release


def test_a_file_over_the_limit_is_truncated_not_ok(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/big": b"x" * 200_000, "/exact": b"y" * 1000})
    host = Host(tmp_path)
    big = host.read("/big", max_bytes=150_000)
    assert big.status is ReadStatus.TRUNCATED
    assert big.text == "x" * 150_000
    assert host.read_text("/big") is not None  # under the default 8 MiB limit
    exact = host.read("/exact", max_bytes=1000)
    assert (exact.status, exact.text) == (ReadStatus.OK, "y" * 1000)


def test_read_tail_gives_the_newest_whole_lines(tmp_path: Path) -> None:
    lines = [f"line {i}\n" for i in range(10_000)]
    write_tree(tmp_path, {"/var/log/kern.log": "".join(lines), "/short": "a\nb\n"})
    host = Host(tmp_path)
    tail = host.read_tail("/var/log/kern.log", max_bytes=1000)
    assert tail.status is ReadStatus.TRUNCATED
    assert tail.text is not None
    assert tail.text.endswith("line 9999\n")
    assert tail.text.startswith("line ")  # the partial first line is dropped
    assert len(tail.text) <= 1000
    short = host.read_tail("/short", max_bytes=1000)
    assert (short.status, short.text) == (ReadStatus.OK, "a\nb\n")


def test_read_tail_of_a_file_that_reports_no_size() -> None:
    # procfs files report size 0: the tail is found by reading forward.
    if not os.path.exists("/proc/self/mountinfo"):
        pytest.skip("no procfs here")
    host = Host("/")
    whole = host.read("/proc/self/mountinfo").text
    tail = host.read_tail("/proc/self/mountinfo", max_bytes=200).text
    assert whole is not None
    assert tail is not None
    assert len(tail) <= 200
    assert whole.endswith(tail)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "fifo")
    host = Host(tmp_path)
    # Opening a FIFO for reading blocks until a writer comes: this would hang on the old code.
    for path in ("/fifo", "/link"):
        read = host.read(path)
        assert read.status is ReadStatus.NOT_A_FILE
        assert read.error == "is a FIFO"
        assert host.read_tail(path).status is ReadStatus.NOT_A_FILE


def test_a_device_is_refused_without_opening_it(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/zero").symlink_to("/dev/zero")  # endless if read
    read = Host(tmp_path).read("/dev/zero")
    assert (read.status, read.error) == (ReadStatus.NOT_A_FILE, "is a device")


def test_exists_and_listdir_report_facts_with_a_status(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/etc/file": "x", "/etc/dir/a": "", "/etc/dir/b": ""})
    (tmp_path / "etc/dangling").symlink_to(tmp_path / "nowhere")
    host = Host(tmp_path)
    assert host.exists("/etc/file").present is True
    assert host.exists("/etc/dangling").present is True  # the link itself is there
    assert host.exists("/etc/nope").present is False
    assert host.exists("/etc/file/below").present is False
    listing = host.listdir("/etc/dir")
    assert (listing.status, listing.names) == (ReadStatus.OK, ("a", "b"))
    assert host.listdir("/etc/nope").status is ReadStatus.MISSING
    assert host.listdir("/etc/file").status is ReadStatus.NOT_A_FILE
    assert host.listdir("/etc/file/below").status is ReadStatus.MISSING


def test_probe_records_have_no_truth_value(tmp_path: Path) -> None:
    # `if host.exists(p)` would quietly turn "could not check" into "no": it must not compile
    # into a silent answer.
    host = Host(tmp_path)
    for record in (host.exists("/x"), host.listdir("/x"), host.read("/x")):
        with pytest.raises(TypeError, match="no truth value"):
            bool(record)


def test_probe_records_are_immutable_values() -> None:
    listing = Listing("/etc", ReadStatus.OK, ("a", "b"))
    assert listing == Listing("/etc", ReadStatus.OK, ("a", "b"))
    assert listing != Listing("/etc", ReadStatus.OK, ("a",))
    assert pickle.loads(pickle.dumps(listing)) == listing
    assert "names=('a', 'b')" in repr(listing)
    with pytest.raises(AttributeError, match="immutable"):
        listing.status = ReadStatus.MISSING  # type: ignore[misc]
    assert len({Presence("/x", ReadStatus.OK), Presence("/x", ReadStatus.OK)}) == 1


# -- spawn: long-lived processes through the door ---------------------------------------------


def test_a_host_under_another_root_starts_no_process(tmp_path: Path) -> None:
    from nestctl.machine.processes import SpawnRefusedError  # noqa: PLC0415

    host = Host(tmp_path)
    with pytest.raises(SpawnRefusedError):
        host.spawn(["qemu-system-x86_64", "-S"])
    assert isinstance(host.runner, RecordingRunner)
    assert host.runner.calls == [("qemu-system-x86_64", "-S")]


def test_the_test_guard_refuses_a_real_spawn_too() -> None:
    from tests.conftest import UnexpectedCommandError  # noqa: PLC0415

    with pytest.raises(UnexpectedCommandError, match="started a real process"):
        Host("/").spawn(["true"])


@pytest.mark.runs_commands
def test_a_spawned_helper_gets_its_own_process_group() -> None:
    from nestctl.machine.processes import PIPE  # noqa: PLC0415

    proc = Host("/").spawn(["sh", "-c", "echo started; exec sleep 30"], stdout=PIPE, own_group=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        assert os.getpgid(proc.pid) == proc.pid  # a Ctrl-C on our terminal does not reach it
    finally:
        proc.kill()
        proc.wait()


def test_read_trusted_checks_the_open_file_and_never_follows_a_link(tmp_path: Path) -> None:
    host = Host(tmp_path)
    (tmp_path / "ours.json").write_text("{}")
    (tmp_path / "theirs.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "ours.json")
    os.mkfifo(tmp_path / "fifo.json")  # opened non-blocking, refused by kind: no hang

    def why_not(st: os.stat_result) -> str | None:
        return "written by someone else" if st.st_size and st.st_ino == theirs else None

    theirs = os.stat(tmp_path / "theirs.json").st_ino
    assert host.read_trusted("/ours.json", max_bytes=10, why_not=why_not).text == "{}"
    refused = host.read_trusted("/theirs.json", max_bytes=10, why_not=why_not)
    assert (refused.status, refused.error) == (ReadStatus.UNTRUSTED, "written by someone else")
    assert host.read_trusted("/link.json", max_bytes=10, why_not=why_not).status not in (
        ReadStatus.OK,
        ReadStatus.MISSING,
    )
    fifo = host.read_trusted("/fifo.json", max_bytes=10, why_not=why_not)
    assert fifo.status is ReadStatus.NOT_A_FILE
    big = host.read_trusted("/ours.json", max_bytes=1, why_not=why_not)
    assert big.status is ReadStatus.TRUNCATED
    assert host.read_trusted("/none.json", max_bytes=1, why_not=why_not).status is (
        ReadStatus.MISSING
    )
