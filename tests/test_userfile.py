"""Files the user names outside `--root` (a secret, the targets config, a bench result) are as
hostile as any: a FIFO must not block the run, a huge file is refused, deep nesting is a message."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from nestctl.api.credentials import CredentialError, read_secret_file
from nestctl.api.targets import MAX_CONFIG_BYTES, TargetConfigError, load_targets
from nestctl.bench.results import ResultFileError, load_result
from nestctl.bench.runner import dumps
from nestctl.userfile import UserFileError, read_user_file

T = TypeVar("T")


def within(seconds: float, func: Callable[[], T]) -> T:
    """`func()`, failing (not hanging the suite) when it blocks; a blocked daemon thread is left."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(("ok", func()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(("raised", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if not box:
        pytest.fail(f"still blocked after {seconds} s")
    kind, value = box[0]  # type: ignore[misc]
    if kind == "raised":
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_without_blocking(fifo: Path) -> None:
    with pytest.raises(UserFileError, match="not a regular file"):
        within(5, lambda: read_user_file(fifo, 1024))
    with pytest.raises(TargetConfigError, match="not a regular file"):
        within(5, lambda: load_targets(fifo))
    with pytest.raises(ResultFileError, match="not a regular file"):
        within(5, lambda: load_result(str(fifo)))
    with pytest.raises(CredentialError, match="not a regular file"):
        within(5, lambda: read_secret_file(str(fifo)))


def test_a_device_is_refused() -> None:
    with pytest.raises(TargetConfigError, match="not a regular file"):
        within(5, lambda: load_targets(Path("/dev/zero")))


def test_a_huge_config_is_refused_not_read(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    with config.open("wb") as fh:
        fh.truncate(MAX_CONFIG_BYTES + 1)  # sparse: no disk used
    with pytest.raises(TargetConfigError, match="too large"):
        load_targets(config)


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text("")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert load_targets(link) == {}


def test_a_missing_file_is_still_told_apart(tmp_path: Path) -> None:
    assert load_targets(tmp_path / "none.toml") == {}
    with pytest.raises(TargetConfigError, match="no such file"):
        load_targets(tmp_path / "none.toml", required=True)


def test_deep_nesting_is_a_message_not_a_recursion_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(TargetConfigError, match="nested too deeply"):
        load_targets(config)
    result = tmp_path / "result.json"
    result.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultFileError, match="nested too deeply"):
        load_result(str(result))


def test_bench_json_is_strict_with_failed_measurements_as_null() -> None:
    text = dumps({"results": [{"name": "x", "median": math.nan, "spread": math.inf}]})
    assert "NaN" not in text
    assert "Infinity" not in text
    assert '"median": null' in text
