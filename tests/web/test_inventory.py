"""The home screen: every guest from /cluster/resources, problems pinned, search and filters."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.pvesim import PveSim
from tests.web.conftest import login, token


def test_home_lists_every_guest_of_the_lab(sim: PveSim, client: TestClient) -> None:
    login(client, *token(sim))
    body = client.get("/").text
    for node in sim.cluster.nodes.values():
        for vmid in node.vms:
            assert f'/vm/{node.name}/{vmid}"' in body, vmid
