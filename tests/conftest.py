"""Test guards: no test runs a real command or reaches the real host by accident.

A `Host` whose root is `/` uses the system runner; tests must use a tmp root (commands are then
recorded) or opt in with the `runs_commands` marker. `UnexpectedCommandError` derives from
BaseException so no `except Exception` in the code under test can swallow it.

Hypothesis profiles: the default draws the same examples on every run (derandomized: a CI failure
reproduces anywhere) with no deadline (the CI machine is shared and slow). For a local hunt with
fresh random examples and more of them: `pytest --hypothesis-profile=thorough`.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from nestctl import machine
from tests.skips import by_design, in_ci

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")  # `--hypothesis-profile=NAME` loads another one after this

# A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored across
# exec: the Ctrl-C tests (in this process and in the nestctl processes they start) would then test
# nothing. Catching it here gives every test a terminal's Ctrl-C; exec resets a caught signal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI a skip is a failure (the set-up lacks a tool or a file), unless tests/skips.py lists
    it as out of scope by design."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
    reason = reason.removeprefix("Skipped: ")
    if by_design(reason):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI: {reason}\nCI must run every test: install what it lacks in "
        "scripts/install-debian-deps, or list the skip with its reason in tests/skips.py"
    )


class UnexpectedCommandError(BaseException):
    pass


@pytest.fixture(autouse=True)
def _no_real_commands(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("runs_commands") or request.node.get_closest_marker("e2e"):
        yield
        return

    def refuse(self: object, argv: object, **_: object) -> machine.CommandResult:
        raise UnexpectedCommandError(
            f"test ran a real command without the runs_commands marker: {argv}"
        )

    def refuse_spawn(self: object, argv: object, **_: object) -> None:
        raise UnexpectedCommandError(
            f"test started a real process without the runs_commands marker: {argv}"
        )

    # Every process nestctl starts goes through these two (the one-door scan keeps it so).
    monkeypatch.setattr(machine.SystemRunner, "__call__", refuse)
    monkeypatch.setattr(machine.SystemRunner, "spawn", refuse_spawn)
    yield


@pytest.fixture
def open_tmp_path() -> Iterator[Path]:
    """A temporary directory every user may traverse (for tests run as an unprivileged user)."""
    path = Path(tempfile.mkdtemp(prefix="nestctl-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        _open_up(path)  # tests deny access: give it back, or a normal user cannot delete it
        shutil.rmtree(path, ignore_errors=True)


def _open_up(directory: Path) -> None:
    os.chmod(directory, 0o755)
    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            _open_up(Path(entry.path))
