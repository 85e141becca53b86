"""pytest fixtures for the simulator; a test module (or conftest.py) loads them with

    pytest_plugins = ["tests.pvesim.fixtures"]

`pve_sim` serves the `lab` cluster (tests/data/clusters/lab); a test picks another with
`@pytest.mark.parametrize("pve_cluster", ["pve7"], indirect=True)` or by overriding the
`pve_cluster` fixture. At teardown it fails the test when any request the code under test sent
is one Proxmox's schema refuses (issue 13, point 8). Requests sent inside
`with pve_sim.nonconforming():` (bad requests on purpose) and through `pve_sim.request()` (the
harness) are exempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pvesim.cluster import Cluster, load_cluster
from tests.pvesim.server import PveSim

CLUSTERS = Path(__file__).resolve().parents[1] / "data" / "clusters"


@pytest.fixture
def pve_cluster(request: pytest.FixtureRequest) -> Cluster:
    """A fresh copy of a fixture cluster (default `lab`); tests may change it freely."""
    name = getattr(request, "param", "lab")
    return load_cluster(CLUSTERS / name)


@pytest.fixture
def pve_sim(pve_cluster: Cluster) -> Iterator[PveSim]:
    sim = PveSim(pve_cluster, latency_ms=0)
    sim.cluster.task_seconds = 0.05
    sim.cluster.node_reboot_seconds = 0.2
    with sim:
        yield sim
        sim.assert_conformant()
