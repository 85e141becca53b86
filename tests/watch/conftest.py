from tests.pvesim.fixtures import pve_cluster, pve_sim  # noqa: F401
