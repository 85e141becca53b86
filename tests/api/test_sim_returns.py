"""On a current (9.x) cluster, every simulated answer has the types the schema's `returns` gives."""

from __future__ import annotations

import urllib.parse

from tests.pvesim import PveSim
from tests.pvesim.schema import return_problems

pytest_plugins = ["tests.pvesim.fixtures"]

# Where real servers contradict the schema: `pending` entries carry the config's parsed values,
# so `cores` is a number there as in GET config, though the schema says string.
KNOWN = ("/nodes/{node}/qemu/{vmid}/pending[",)

GETS = [
    ("/version", {}),
    ("/cluster/resources", {}),
    ("/cluster/status", {}),
    ("/cluster/tasks", {}),
    ("/cluster/firewall/options", {}),
    ("/cluster/firewall/rules", {}),
    ("/nodes", {}),
    ("/nodes/{node}/status", {}),
    ("/nodes/{node}/version", {}),
    ("/nodes/{node}/apt/versions", {}),
    ("/nodes/{node}/capabilities/qemu/cpu-flags", {}),
    ("/nodes/{node}/capabilities/qemu/cpu", {}),
    ("/nodes/{node}/capabilities/qemu/machines", {}),
    ("/nodes/{node}/firewall/options", {}),
    ("/nodes/{node}/firewall/rules", {}),
    ("/nodes/{node}/firewall/rules/{pos}", {}),
    ("/nodes/{node}/qemu", {"full": 1}),
    ("/nodes/{node}/qemu/{vmid}/config", {}),
    ("/nodes/{node}/qemu/{vmid}/pending", {}),
    ("/nodes/{node}/qemu/{vmid}/status/current", {}),
    ("/nodes/{node}/qemu/{vmid}/rrddata", {"timeframe": "hour"}),
    ("/nodes/{node}/qemu/{vmid}/snapshot", {}),
    ("/nodes/{node}/qemu/{vmid}/firewall/options", {}),
    ("/nodes/{node}/qemu/{vmid}/firewall/rules", {}),
    ("/nodes/{node}/qemu/{vmid}/agent/get-osinfo", {}),
    ("/nodes/{node}/qemu/{vmid}/agent/file-read", {"file": "/proc/cpuinfo"}),
    ("/nodes/{node}/tasks", {}),
    ("/nodes/{node}/tasks/{upid}/status", {}),
    ("/nodes/{node}/tasks/{upid}/log", {}),
    ("/nodes/{node}/storage", {}),
    ("/nodes/{node}/rrddata", {"timeframe": "day"}),
    ("/cluster/firewall/macros", {}),
]


def test_answers_match_the_schema_return_types(pve_sim: PveSim) -> None:
    upid = pve_sim.request("POST", "/nodes/pve1/qemu/103/status/start").data
    pve_sim.wait_task("pve1", upid)
    values = {"node": "pve1", "vmid": "101", "pos": "0", "upid": urllib.parse.quote(upid)}
    problems = []
    for template, params in GETS:
        path = template.format(**values)
        resp = pve_sim.request("GET", path, params)
        assert resp.status == 200, (path, resp.body)
        found = return_problems(pve_sim.schema.returns(template), resp.data, template)
        problems += [p for p in found if not p.startswith(KNOWN)]
    assert problems == []
