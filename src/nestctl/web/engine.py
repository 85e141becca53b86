"""The engine behind the pages: the same tree builder as `nestctl tree`."""

from __future__ import annotations

from typing import Any

from nestctl.api.actions import Api
from nestctl.web.settings import TargetSpec
from nestctl.web.snapshot import TreeBuilder


def tree_builder() -> TreeBuilder:
    def build(api: Api, target: TargetSpec) -> dict[str, Any]:
        nodes = api.request("GET", "/nodes")
        resources = api.request("GET", "/cluster/resources", {"type": "vm"})
        out = []
        for n in sorted(nodes, key=lambda n: str(n.get("node"))):
            name = str(n.get("node"))
            vms = [
                {"kind": "vm", "vmid": int(r["vmid"]), "name": r.get("name", ""),
                 "verdict": "unknown", "broken_link": None, "children": []}
                for r in resources
                if r.get("type") == "qemu" and r.get("node") == name
            ]  # fmt: skip
            vms.sort(key=lambda v: v["vmid"])
            out.append({"kind": "node", "target": target.name, "node": name, "level": 0,
                        "verdict": "unknown", "findings": [], "children": vms})  # fmt: skip
        return {"tree": out, "findings": [], "verdict": "unknown"}

    return build
