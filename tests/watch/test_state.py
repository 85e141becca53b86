"""The state file: atomic (a writer killed mid-write leaves a readable file), fixed mode,
hostile content refused in one sentence, and the redactor's shapes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nestctl.watch.messages import Redactor
from nestctl.watch.state import StateError, StateStore, WatchState

WRITER = """
import sys
from nestctl.watch.state import StateStore, WatchState
store = StateStore(sys.argv[1])
n = 0
while True:
    n += 1
    state = WatchState()
    for i in range(3000):  # about 1 MB: a write takes a while
        state.records[f"vm.stopped:outer:pve1:{i}"] = {
            "event": {"key": str(i), "what": "x" * 200}, "status": "firing", "n": n,
        }
    store.save(state)
    print(n, flush=True)
"""


def test_killing_the_writer_mid_write_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "watch.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # one whole save done
        time.sleep(0.01 * round_)  # then kill it somewhere inside a later save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        state = StateStore(str(path)).load()
        assert len(state.records) == 3000
        assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b'{"version": 2}', b"[1, 2]", b'{"version": 1, "records": {"k": 3}}', b"\xff"],
)
def test_a_damaged_state_file_is_one_sentence(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "watch.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as exc:
        StateStore(str(path)).load()
    assert "\n" not in str(exc.value)


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "watch.json"
    os.mkfifo(path)
    with pytest.raises(StateError):
        StateStore(str(path)).load()


def test_edit_round_trips(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "d" / "watch.json"))
    with store.edit() as state:
        state.records["k:t"] = {"event": {"key": "k:t"}, "status": "firing"}
        state.memory.nested_on_seen.add("outer:pve1")
        state.memory.last_status["outer"] = {101: "running"}
    again = store.load()
    assert again.records == {"k:t": {"event": {"key": "k:t"}, "status": "firing"}}
    assert again.memory.last_status == {"outer": {101: "running"}}
    assert isinstance(WatchState.from_json(again.to_json()), WatchState)


def test_redactor_shapes_without_known_secrets() -> None:
    redact = Redactor()
    text = redact(
        "PVEAPIToken=root@pam!w=abc123def password=hunter22 https://admin:pw99@10.0.0.1/x"
    )
    for secret in ("abc123def", "hunter22", "pw99"):
        assert secret not in text


def test_a_calm_poll_writes_nothing(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "watch.json"))
    with store.edit() as state:
        state.records["k:t"] = {"event": {"key": "k:t"}, "status": "firing"}
    before = os.stat(store.path).st_ino
    with store.edit() as state:
        state.records["k:t"]["status"] = "firing"  # the same state again
    assert os.stat(store.path).st_ino == before  # not replaced


def test_watch_sets_a_damaged_state_file_aside_and_goes_on(tmp_path: Path) -> None:
    from nestctl.watch.service import Watch  # noqa: PLC0415
    from tests.watch.helpers import NOON, Recorder, config  # noqa: PLC0415

    path = tmp_path / "watch.json"
    path.write_text('{"version": 1, "records": {"k": 3}}')
    watch = Watch(config(), [], StateStore(str(path)), Recorder())
    assert watch.tick(NOON) == []
    assert (tmp_path / "watch.json.damaged").read_text().startswith('{"version": 1')
    assert StateStore(str(path)).load().records == {}


@given(
    secrets=st.lists(
        st.text(alphabet="abcdef0123456789-=@!:/", min_size=4, max_size=12), max_size=3
    ),
    pieces=st.lists(st.text(max_size=20), max_size=6),
)
def test_no_known_secret_survives_the_redactor(secrets: list[str], pieces: list[str]) -> None:
    text = "".join(p + (secrets[i % len(secrets)] if secrets else "") for i, p in enumerate(pieces))
    out = Redactor(secrets)(text)
    for secret in secrets:
        assert secret not in out
