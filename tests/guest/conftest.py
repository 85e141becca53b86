"""Guest tests: the agent client retries its sync quickly against the fake agent."""

from __future__ import annotations

import pytest

from nestctl.guest import agent as agent_mod


@pytest.fixture(autouse=True)
def _fast_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_mod, "SYNC_ATTEMPT", 0.2)
