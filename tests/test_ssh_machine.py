"""Another machine over SSH through the door: quoting, reads that never block, and "could not
reach" kept apart from "absent". `ssh` here is a stand-in on PATH that does what ssh does with a
remote command: hand the one string to the (remote) user's shell; a host named `unreachable`
fails as ssh does, with exit code 255."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from nestctl.machine import CommandResult, CommandStatus, ReadStatus, RecordingRunner
from nestctl.machine.ssh import SshMachine, SshRunner
from nestctl.vm.collect.ssh import REMOTE_COMMAND, ssh_nested_reader

FAKE_SSH = """#!/bin/sh
while [ "$1" != "--" ]; do dest=$1; shift; done
shift
if [ "$dest" = "root@unreachable" ]; then
    echo "ssh: connect to host unreachable port 22: Connection refused" >&2
    exit 255
fi
exec sh -c "$1"
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    files = tmp_path / "remote"
    files.mkdir()
    return files


@pytest.mark.runs_commands
def test_a_path_with_shell_words_is_read_as_one_path(fake_ssh: Path) -> None:
    tricky = fake_ssh / "a b'$(touch pwned)\";x"
    tricky.write_text("nested=Y\n")
    read = SshMachine("root@node1").read(str(tricky))
    assert (read.status, read.text) == (ReadStatus.OK, "nested=Y\n")
    assert not (fake_ssh.parent / "pwned").exists()
    assert not Path("pwned").exists()


@pytest.mark.runs_commands
def test_reads_say_missing_too_large_and_not_a_file_without_blocking(fake_ssh: Path) -> None:
    machine = SshMachine("root@node1", timeout=20)
    assert machine.read(str(fake_ssh / "nope")).status is ReadStatus.MISSING
    big = fake_ssh / "big"
    big.write_text("x" * 100)
    cut = machine.read(str(big), max_bytes=10)
    assert (cut.status, cut.text) == (ReadStatus.TRUNCATED, "x" * 10)
    fifo = fake_ssh / "fifo"
    os.mkfifo(fifo)  # a read would wait forever for a writer
    assert machine.read(str(fifo)).status is ReadStatus.NOT_A_FILE
    assert machine.exists(str(fifo)).present is True
    assert machine.exists(str(fake_ssh / "nope")).present is False
    (fake_ssh / "d").mkdir()
    (fake_ssh / "d" / "101.conf").write_text("")
    (fake_ssh / "d" / "name with\nnewline").write_text("")
    listing = machine.listdir(str(fake_ssh / "d"))
    assert listing.names == ("101.conf", "name with\nnewline")
    assert machine.listdir(str(fake_ssh / "nope")).status is ReadStatus.MISSING


@pytest.mark.runs_commands
def test_an_unreachable_node_is_unknown_never_absent(fake_ssh: Path) -> None:
    machine = SshMachine("root@unreachable")
    read = machine.read("/sys/module/kvm_intel/parameters/nested")
    assert read.status is ReadStatus.COULD_NOT_RUN
    assert read.error is not None
    assert "Connection refused" in read.error
    assert machine.exists("/dev/kvm").present is None


def test_the_remote_argv_is_quoted_once_for_the_remote_shell() -> None:
    base = RecordingRunner()
    SshRunner("root@pve1", base)(["cat", "/etc/a b"], timeout=5, stdin=None, ok_codes=(0,))
    wrapped = ("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@pve1", "--")
    assert base.calls == [(*wrapped, "cat '/etc/a b'")]


def test_nested_over_ssh_reads_the_remote_answer_and_names_a_failed_login() -> None:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        assert argv[-1] == f"sh -c {shlex.quote(REMOTE_COMMAND)}"
        if argv[-3] == "root@pve2":
            return CommandResult(argv, CommandStatus.FAILED, 255, "", "Permission denied (key).")
        return CommandResult(argv, CommandStatus.OK, 0, "product_uuid ABC\nkvm_intel Y\n")

    read = ssh_nested_reader(runner=RecordingRunner(respond))
    ok = read("pve1", None)
    assert (ok.live, ok.product_uuid) == (True, "abc")
    refused = read("pve2", None)
    assert refused.live is None
    assert refused.problem == "--ssh root@pve2: Permission denied (key)."
