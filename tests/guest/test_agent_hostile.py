"""A guest controls its agent's replies: every one of them ends in an answer or a clear
GuestAgentError, in bounded time. Regression cases first, then fuzzing of the reply parsers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestctl.guest import agent as agent_mod
from nestctl.guest.agent import (
    AgentProtocolError,
    AgentTimeout,
    ExecResult,
    GuestAgent,
    GuestAgentError,
    exec_status,
    file_chunk,
)
from nestctl.guest.agent_machine import AgentMachine
from nestctl.machine import ReadStatus
from tests.guest.fake_agent import FakeAgent, FakeProgram, serving


@pytest.fixture
def fake() -> Iterator[FakeAgent]:
    with serving({"/proc/cpuinfo": b"flags\t: fpu svm\n"}) as server:
        yield server


def _reply(req: dict[str, Any], value: object) -> bytes:
    return (json.dumps({"return": value, "id": req["id"]}) + "\n").encode()


def test_a_read_claiming_bytes_it_does_not_send_ends(fake: FakeAgent) -> None:
    # Looped forever before: count 5, no data, no eof.
    fake.behave["guest-file-read"] = lambda req: _reply(req, {"count": 5, "buf-b64": ""})
    start = time.monotonic()
    with (
        GuestAgent(fake.path, timeout=2) as agent,
        pytest.raises(AgentProtocolError, match="count 5"),
    ):
        agent.read_file("/proc/cpuinfo")
    assert time.monotonic() - start < 5


def test_a_read_sending_more_than_asked_is_refused(fake: FakeAgent) -> None:
    big = base64.b64encode(b"x" * 70000).decode()
    fake.behave["guest-file-read"] = lambda req: _reply(req, {"count": 70000, "buf-b64": big})
    with GuestAgent(fake.path, timeout=2) as agent, pytest.raises(AgentProtocolError):
        agent.read_file("/proc/cpuinfo")


def test_a_read_that_never_ends_is_bounded_by_its_budget(
    fake: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_mod, "READ_BUDGET", 0.5)
    one = base64.b64encode(b"x").decode()
    fake.behave["guest-file-read"] = lambda req: _reply(req, {"count": 1, "buf-b64": one})
    start = time.monotonic()
    with (
        GuestAgent(fake.path, timeout=2) as agent,
        pytest.raises(AgentTimeout, match="longer than"),
    ):
        agent.read_file("/proc/cpuinfo", max_bytes=10**9)
    assert time.monotonic() - start < 8


def test_a_deeply_nested_reply_is_a_clear_error_not_recursion(fake: FakeAgent) -> None:
    fake.behave["guest-info"] = lambda req: (
        b'{"return": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    )
    with (
        GuestAgent(fake.path, timeout=2) as agent,
        pytest.raises(AgentProtocolError, match="nested"),
    ):
        agent.info()


def test_a_flood_of_stale_replies_ends_at_the_call_timeout(fake: FakeAgent) -> None:
    stale = b'{"return": {}, "id": 1}\n' * 20000
    fake.behave["guest-ping"] = lambda _req: stale * 5
    start = time.monotonic()
    with GuestAgent(fake.path, timeout=1) as agent, pytest.raises(GuestAgentError):
        agent.ping()
    assert time.monotonic() - start < 4


def test_an_agent_that_keeps_replying_after_sync_is_given_up(fake: FakeAgent) -> None:
    def chatty(req: dict[str, Any]) -> bytes:
        answer = b"\xff" + json.dumps({"return": req["arguments"]["id"]}).encode() + b"\n"
        return answer + b'{"return": "late"}\n' * 500

    fake.behave["guest-sync-delimited"] = chatty
    with (
        GuestAgent(fake.path, timeout=2) as agent,
        pytest.raises(AgentProtocolError, match="unrequested"),
    ):
        agent.sync()


def test_a_malformed_reply_through_the_machine_is_could_not_check(fake: FakeAgent) -> None:
    fake.behave["guest-file-read"] = lambda req: _reply(req, {"count": "many"})
    machine = AgentMachine(GuestAgent(fake.path, timeout=2), os_kind="linux")
    try:
        read = machine.read("/proc/cpuinfo")
    finally:
        machine.agent.close()
    assert read.status is ReadStatus.COULD_NOT_RUN
    assert "bad count" in (read.error or "")


def test_exec_output_that_is_not_base64_is_an_error(fake: FakeAgent) -> None:
    fake.programs["ls"] = FakeProgram(stdout=b"kvm\n")
    fake.behave["guest-exec-status"] = lambda req: _reply(
        req, {"exited": True, "exitcode": 0, "out-data": "%%"}
    )
    with (
        GuestAgent(fake.path, timeout=2) as agent,
        pytest.raises(AgentProtocolError, match="base64"),
    ):
        agent.exec("ls", ["/dev"])


# -- fuzzing the reply parsers ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
b64 = st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
chunk_replies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "count": st.integers(-5, 200) | json_values,
            "buf-b64": b64 | json_values,
            "eof": st.booleans() | json_values,
        },
    ),
)
status_replies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "exited": st.booleans() | json_values,
            "exitcode": st.integers(-300, 300) | json_values,
            "signal": st.integers(0, 64) | json_values,
            "out-data": b64 | json_values,
            "err-data": b64 | json_values,
            "out-truncated": json_values,
        },
    ),
)


@given(chunk_replies, st.integers(min_value=1, max_value=100))
def test_file_chunk_any_reply(reply: object, asked: int) -> None:
    try:
        data, eof = file_chunk(reply, asked)
    except AgentProtocolError:
        return
    assert isinstance(eof, bool)
    assert len(data) <= asked
    assert isinstance(reply, dict)
    assert len(data) == reply["count"]


@given(status_replies)
def test_exec_status_any_reply(reply: object) -> None:
    try:
        result = exec_status(reply)
    except AgentProtocolError:
        return
    assert result is None or isinstance(result, ExecResult)
    if result is not None:
        assert result.exitcode is None or isinstance(result.exitcode, int)


# One fake agent serves every example: each sets its own reply.
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_read_file_with_any_reply_bytes(fake: FakeAgent, raw: bytes) -> None:
    fake.behave["guest-file-read"] = lambda _req: raw + b"\n"
    start = time.monotonic()
    with GuestAgent(fake.path, timeout=0.5) as agent:
        try:
            data = agent.read_file("/proc/cpuinfo")
        except GuestAgentError:
            pass
        else:
            assert isinstance(data, bytes)
    assert time.monotonic() - start < 4
