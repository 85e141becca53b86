"""The guest agent client against a fake agent that misbehaves on demand: every failure is a typed
exception with a clear message, within its timeout, never a hang."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nestctl.guest import agent as agent_mod
from nestctl.guest.agent import (
    AgentError,
    AgentProtocolError,
    AgentTimeout,
    AgentUnavailable,
    GuestAgent,
    agent_socket_path,
)
from nestctl.machine import Host
from tests.guest.fake_agent import FakeAgent, FakeProgram, delay


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="nq-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake(short_dir: Path) -> Iterator[FakeAgent]:
    server = FakeAgent(short_dir / "qga.sock", files={"/proc/cpuinfo": b"flags\t: fpu svm\n"})
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fast_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_mod, "SYNC_ATTEMPT", 0.2)


def test_sync_info_osinfo(fake: FakeAgent) -> None:
    with GuestAgent(fake.path, timeout=2) as agent:
        agent.sync()
        assert agent.info()["version"] == "7.2.22"
        assert agent.osinfo()["id"] == "debian"
    assert fake.seen[:3] == ["guest-sync-delimited", "guest-info", "guest-get-osinfo"]


def test_sync_waits_for_an_agent_that_starts_late(fake: FakeAgent) -> None:
    fake.ignore_sync = 3  # qemu-ga not running yet: the first requests go unanswered
    with GuestAgent(fake.path, timeout=5) as agent:
        agent.ping()
    assert fake.seen.count("guest-sync-delimited") == 4


def test_sync_skips_stale_replies_left_in_the_stream(fake: FakeAgent) -> None:
    def stale_then_answer(req: dict[str, Any]) -> bytes:
        stale = b'{"return": {"version": "from an earlier client"}}\n'
        return stale + b"\xff" + json.dumps({"return": req["arguments"]["id"]}).encode() + b"\n"

    fake.behave["guest-sync-delimited"] = stale_then_answer
    with GuestAgent(fake.path, timeout=2) as agent:
        assert agent.info()["version"] == "7.2.22"


def test_read_file_in_chunks_and_closes_the_handle(fake: FakeAgent) -> None:
    big = bytes(range(256)) * 600  # 150 KiB: three guest-file-read calls
    fake.files["/big"] = big
    with GuestAgent(fake.path, timeout=2) as agent:
        assert agent.read_file("/big") == big
        assert agent.read_file("/big", max_bytes=1000) == big[:1000]
    assert fake.seen.count("guest-file-read") == 4
    assert fake.seen.count("guest-file-close") == 2


def test_missing_file_is_an_agent_error_with_qemu_ga_text(fake: FakeAgent) -> None:
    with GuestAgent(fake.path, timeout=2) as agent, pytest.raises(AgentError) as err:
        agent.read_file("/no/such")
    assert err.value.error_class == "GenericError"
    assert "No such file or directory" in err.value.desc


def test_exec_captures_output_and_exit_code(fake: FakeAgent) -> None:
    fake.programs["sh"] = FakeProgram(exitcode=3, stdout=b"out\n", stderr=b"err\n")
    with GuestAgent(fake.path, timeout=2) as agent:
        res = agent.exec("sh", ["-c", "x"], timeout=2, stdin=b"in")
    assert (res.exitcode, res.stdout, res.stderr, res.timed_out) == (3, b"out\n", b"err\n", False)
    assert fake.stdin_seen == [b"in"]


def test_exec_that_never_exits_times_out_in_time(fake: FakeAgent) -> None:
    fake.programs["sleep"] = FakeProgram(never_exits=True)
    start = time.monotonic()
    with GuestAgent(fake.path, timeout=2) as agent:
        res = agent.exec("sleep", ["100"], timeout=0.5)
    assert res.timed_out
    assert res.exitcode is None
    assert time.monotonic() - start < 2


def test_exec_of_missing_program_is_an_agent_error(fake: FakeAgent) -> None:
    with GuestAgent(fake.path, timeout=2) as agent, pytest.raises(AgentError) as err:
        agent.exec("/bin/nope")
    assert "Failed to execute child process" in err.value.desc


def test_unknown_command_is_command_not_found(fake: FakeAgent) -> None:
    with GuestAgent(fake.path, timeout=2) as agent, pytest.raises(AgentError) as err:
        agent.call("guest-shutdown-now-please")
    assert err.value.error_class == "CommandNotFound"


def test_no_socket_is_unavailable(short_dir: Path) -> None:
    with pytest.raises(AgentUnavailable, match="no agent socket"):
        GuestAgent(short_dir / "missing.qga").sync()


def test_socket_without_listener_is_refused(short_dir: Path) -> None:
    path = short_dir / "dead.qga"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens: what a stopped VM leaves behind
    with pytest.raises(AgentUnavailable, match="connection refused"):
        GuestAgent(path).sync()


def test_silent_agent_is_unavailable_within_the_timeout(fake: FakeAgent) -> None:
    fake.ignore_sync = 10**6  # QEMU holds the socket but no agent runs in the guest
    start = time.monotonic()
    with pytest.raises(AgentUnavailable, match="not answering within 1 s"):
        GuestAgent(fake.path, timeout=1).info()
    assert time.monotonic() - start < 2


def test_garbage_reply_is_unavailable(fake: FakeAgent) -> None:
    fake.behave["guest-info"] = lambda _req: b"<html>not an agent</html>\n"
    with GuestAgent(fake.path, timeout=2) as agent, pytest.raises(AgentUnavailable) as err:
        agent.info()
    assert "garbage" in str(err.value)


def test_dropped_connection_is_unavailable(fake: FakeAgent) -> None:
    fake.behave["guest-get-osinfo"] = lambda _req: "DROP"
    with GuestAgent(fake.path, timeout=2) as agent, pytest.raises(AgentUnavailable) as err:
        agent.osinfo()
    assert "closed the connection" in str(err.value)


def test_late_reply_times_out_then_the_next_call_is_in_step(fake: FakeAgent) -> None:
    fake.behave["guest-info"] = delay(0.6)
    with GuestAgent(fake.path, timeout=0.3) as agent:
        with pytest.raises(AgentTimeout, match="guest-info"):
            agent.info()
        del fake.behave["guest-info"]
        agent.timeout = 2
        # The late guest-info reply must not be taken for the osinfo answer.
        assert agent.osinfo()["id"] == "debian"


def test_reply_with_another_id_is_skipped(fake: FakeAgent) -> None:
    def other_first(req: dict[str, Any]) -> bytes:
        old = {"return": {"id": "stale"}, "id": -1}
        new = {"return": {"id": "fresh"}, "id": req["id"]}
        return (json.dumps(old) + "\n" + json.dumps(new) + "\n").encode()

    fake.behave["guest-get-osinfo"] = other_first
    with GuestAgent(fake.path, timeout=2) as agent:
        assert agent.osinfo() == {"id": "fresh"}


def test_long_socket_path_through_a_fake_root(fake: FakeAgent, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "var/run/qemu-server"
    deep.mkdir(parents=True)
    link = deep / "100.qga"
    os.symlink(fake.path, link)
    assert len(str(link)) > 108
    with GuestAgent(link, timeout=2) as agent:
        assert agent.osinfo()["id"] == "debian"


def test_agent_socket_path_resolves_under_root(tmp_path: Path) -> None:
    host = Host(tmp_path)
    assert agent_socket_path(host, 105) == tmp_path / "var/run/qemu-server/105.qga"


def test_base64_garbage_in_a_read_is_a_protocol_error_not_an_empty_file(fake: FakeAgent) -> None:
    # An empty /proc/cpuinfo would read as "no vmx/svm": garbage must stay "could not check".
    def bad_read(req: dict[str, Any]) -> bytes:
        reply = {"return": {"count": 3, "buf-b64": "***", "eof": True}, "id": req["id"]}
        return (json.dumps(reply) + "\n").encode()

    fake.behave["guest-file-read"] = bad_read
    with (
        GuestAgent(fake.path, timeout=2) as agent,
        pytest.raises(AgentProtocolError, match="base64"),
    ):
        agent.read_file("/proc/cpuinfo")
