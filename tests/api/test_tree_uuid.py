"""`tree` ties an inner target by the VM's smbios1 uuid lower-cased on every path (issue 17)."""

from __future__ import annotations

from nestctl.tree.build import build_tree
from nestctl.tree.views import NodeView, TargetView, VmView, smbios_uuid


def test_a_vm_config_uuid_in_upper_case_ties_as_the_json_path_does() -> None:
    # Proxmox writes smbios1's uuid in lower case, but a hand-edited config may not: the API
    # path (smbios_uuid of the config) lower-cases it like the JSON and SSH paths.
    upper = "5B0A3C1E-1D2F-4B8E-9C61-0E0F2A7B1D01"
    assert smbios_uuid(f"uuid={upper},manufacturer=QEMU") == upper.lower()
    outer = TargetView(
        "outer",
        nodes=[NodeView("pve1", "ready")],
        vms=[VmView(101, "pve-inner", "pve1", "ready", None, smbios_uuid(f"uuid={upper}"))],
    )
    inner = TargetView("inner", nodes=[NodeView("l1", "ready", product_uuid=upper.lower())])
    tree, _findings, _verdict = build_tree([outer, inner])
    assert len(tree) == 1  # inner sits under VM 101, not beside it
    assert tree[0]["children"][0]["children"][0]["target"] == "inner"
