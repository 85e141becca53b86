"""`sim_client`: an ApiClient on the simulator with root's token, closed after the test (an open
keep-alive connection would leave a server thread behind for later tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken
from tests.pvesim import PveSim


@pytest.fixture
def sim_client(pve_sim: PveSim) -> Iterator[ApiClient]:
    token = ApiToken.parse(pve_sim.root_token, source="sim")
    with ApiClient(pve_sim.url, token, fingerprint=pve_sim.fingerprint) as client:
        yield client
