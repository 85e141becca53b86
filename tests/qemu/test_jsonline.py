"""The JSON-lines reader QMP and the guest agent share: whatever the peer sends, the answer is a
JSON object or a clear ChannelError, in bounded time and memory. Fuzzed with arbitrary bytes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nestctl.qemu.jsonline import (
    MAX_DEPTH,
    ChannelClosedError,
    ChannelGarbageError,
    ChannelTimeoutError,
    JsonLines,
    decode_object,
)


def _nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return ('{"return": ' + opener * depth + "0" + closer * depth + "}").encode()


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
def test_deep_nesting_is_garbage_not_recursion_error(depth: int, opener: str, closer: str) -> None:
    with pytest.raises(ChannelGarbageError, match="nested more than"):
        decode_object(_nested(depth, opener, closer))


def test_nesting_within_the_limit_is_fine() -> None:
    assert decode_object(_nested(MAX_DEPTH - 2)) is not None


@pytest.mark.parametrize(
    "line",
    [b"", b"[]", b"42", b'"text"', b"{", b"\xff\xfe", b'{"a": 1}{"b": 2}', b"9" * 5000],
)
def test_non_objects_are_garbage(line: bytes) -> None:
    with pytest.raises(ChannelGarbageError):
        decode_object(line)


def test_sync_delimiter_is_stripped() -> None:
    assert decode_object(b'\xff{"return": 7}\r') == {"return": 7}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(st.binary(max_size=2000))
def test_decode_any_bytes(data: bytes) -> None:
    try:
        value = decode_object(data)
    except ChannelGarbageError:
        return
    assert isinstance(value, dict)


@given(st.integers(min_value=1, max_value=300), st.sampled_from(["[", '{"k":', "[1,"]))
def test_decode_any_depth(depth: int, opener: str) -> None:
    closer = "]" if opener.startswith("[") else "}"
    line = ('{"r": ' + opener * depth + "0" + closer * depth + "}").encode()
    if depth + 1 > MAX_DEPTH:
        with pytest.raises(ChannelGarbageError):
            decode_object(line)
    else:
        assert isinstance(decode_object(line), dict)


# -- the reader over a real socket --------------------------------------------------------------


def _pair(chunks: list[bytes], *, close: bool = True) -> tuple[JsonLines, threading.Thread]:
    ours, theirs = socket.socketpair()

    def feed() -> None:
        try:
            for chunk in chunks:
                theirs.sendall(chunk)
        except OSError:
            pass
        finally:
            if close:
                theirs.close()

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return JsonLines(ours, max_line=256), t


def _drain(channel: JsonLines) -> Iterator[dict[str, object] | str]:
    """Every reply until the peer closes; garbage as its message. Bounded by construction."""
    for _ in range(10_000):
        try:
            yield channel.receive(2.0)
        except ChannelGarbageError as exc:
            yield str(exc)
        except ChannelClosedError:
            return
    raise AssertionError("the reader never reached the end of a finite stream")


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=600), max_size=12))
def test_reader_any_bytes_ends_with_objects_or_clear_errors(chunks: list[bytes]) -> None:
    channel, t = _pair(chunks)
    try:
        for item in _drain(channel):
            assert isinstance(item, dict | str)
    finally:
        channel.close()
        t.join(timeout=5)


def test_an_over_long_line_is_skipped_and_the_stream_stays_usable() -> None:
    channel, t = _pair([b'{"junk": "' + b"x" * 5000 + b'"}\n', b'{"return": 1}\n'])
    try:
        with pytest.raises(ChannelGarbageError, match="longer than 256"):
            channel.receive(2.0)
        assert channel.receive(2.0) == {"return": 1}
    finally:
        channel.close()
        t.join(timeout=5)


def test_endless_blank_lines_end_at_the_deadline() -> None:
    ours, theirs = socket.socketpair()
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            try:
                theirs.sendall(b"\n" * 4096)
            except OSError:
                return

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    channel = JsonLines(ours)
    start = time.monotonic()
    try:
        with pytest.raises(ChannelTimeoutError):
            channel.receive(0.3)
        assert time.monotonic() - start < 2.0
    finally:
        stop.set()
        channel.close()
        theirs.close()
        t.join(timeout=5)


@given(json_values)
def test_any_json_object_round_trips(value: object) -> None:
    import json  # noqa: PLC0415

    line = json.dumps({"return": value}).encode()
    assert decode_object(line) == json.loads(line)
