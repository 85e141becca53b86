"""A small canned cluster on the real TLS test server: replies as Proxmox sends them.

For fault injection at exact requests (the simulator covers whole-cluster behaviour).
"""

from __future__ import annotations

import json
from typing import Any

from tests.api.tls_server import Canned, Reply

INTEL_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov vmx ssse3 aes avx"


def data(obj: Any) -> Reply:
    return Reply(200, json.dumps({"data": obj}).encode())


def cluster(canned: Canned, *, nodes: dict[str, list[dict[str, Any]]]) -> None:
    """Routes for `nodes` = {node: [vm resource dicts with 'vmid', 'status', 'config']}."""
    resources: list[dict[str, Any]] = []
    canned.routes["GET", "/version"] = lambda _: data(
        {"version": "9.0.4", "release": "9.0", "repoid": "0123456789abcdef"}
    )
    for node, vms in nodes.items():
        resources.append({"id": f"node/{node}", "type": "node", "node": node, "status": "online"})
        canned.routes["GET", f"/nodes/{node}/status"] = lambda _: data(
            {
                "cpuinfo": {
                    "model": "Intel(R) Xeon(R) Gold 6338",
                    "flags": INTEL_FLAGS,
                    "hvm": "1",
                    "cpus": 8,
                    "mhz": "2000.000",
                }
            }
        )
        canned.routes["GET", f"/nodes/{node}/apt/versions"] = lambda _: data(
            [
                {"Package": "qemu-server", "Version": "9.0.30"},
                {"Package": "pve-manager", "Version": "9.0.11"},
                {"Package": "pve-qemu-kvm", "Version": "10.0.2-4"},
            ]
        )
        canned.routes["GET", f"/nodes/{node}/capabilities/qemu/cpu-flags"] = lambda _: data(
            [{"name": "nested-virt"}, {"name": "md-clear"}]
        )
        for vm in vms:
            vmid = vm["vmid"]
            resources.append(
                {
                    "id": f"qemu/{vmid}",
                    "type": "qemu",
                    "vmid": str(vmid),
                    "node": node,
                    "name": vm.get("name", f"vm{vmid}"),
                    "status": vm["status"],
                }
            )
            items = [{"key": k, "value": v} for k, v in vm["config"].items()]
            items += [{"key": k, "pending": v} for k, v in vm.get("pending", {}).items()]
            canned.routes["GET", f"/nodes/{node}/qemu/{vmid}/pending"] = lambda _, items=items: (
                data(items)
            )
            canned.routes["GET", f"/nodes/{node}/qemu/{vmid}/status/current"] = lambda _, vm=vm: (
                data(
                    {
                        "status": vm["status"],
                        "vmid": vm["vmid"],
                        "pid": 4242,
                        "running-qemu": "10.0.2",
                        "running-machine": "pc-i440fx-10.0+pve0",
                    }
                )
            )
    canned.routes["GET", "/cluster/resources"] = lambda _: data(resources)
