"""Test guards: no test runs a real command or reaches the real host by accident.

A `Host` whose root is `/` uses the system runner; tests must use a tmp root (commands are then
recorded) or opt in with the `runs_commands` marker. `UnexpectedCommandError` derives from
BaseException so no `except Exception` in the code under test can swallow it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nestctl import machine


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

    monkeypatch.setattr(machine.SystemRunner, "__call__", refuse)
    yield
