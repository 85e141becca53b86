"""Object names in dashboard URLs, checked before any page asks Proxmox about them.

Proxmox answers a VMID outside 100..999999999 or a node name its `pve-node` format rejects
with a 400; asking it costs a request per made-up URL (and a background refresh after it).
These are answered here, at once, for every page under `/t/<target>/vm/...`, `.../ct/...`,
`.../vmid/...` and `.../node/...`.
"""

from __future__ import annotations

import re

from nestctl.parse import is_ascii_digits

VMID_MIN = 100
VMID_MAX = 999_999_999  # PVE::JSONSchema pve-vmid
# PVE::JSONSchema pve_verify_node_name: one host-name label.
_NODE = re.compile(r"(?=.{1,63}$)[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?", re.ASCII)
_OBJECT = re.compile(r"/t/[^/]+/(vm|ct|node)/([^/]*)(?:/([^/]*))?")
_VMID_ONLY = re.compile(r"/t/[^/]+/vmid/([^/]*)")


def valid_node(name: str) -> bool:
    return _NODE.fullmatch(name) is not None


def valid_vmid(text: str) -> bool:
    # Digits only, and at most 9 of them before int(): 5000 digits is no VMID (and no 500).
    return is_ascii_digits(text) and len(text) <= 9 and int(text) >= VMID_MIN


def path_problem(path: str) -> str | None:
    """Why a URL names a node or VM Proxmox cannot have, or None."""
    only = _VMID_ONLY.match(path)
    if only is not None:
        ok = valid_vmid(only.group(1))
        return None if ok else f"no such guest: a VMID is a number from {VMID_MIN} to {VMID_MAX}"
    m = _OBJECT.match(path)
    if m is None:
        return None
    kind, node, vmid = m.groups()
    if not valid_node(node):
        return "no such node: a node name is letters, digits and inner hyphens"
    if kind in ("vm", "ct") and (vmid is None or not valid_vmid(vmid)):
        return f"no such guest: a VMID is a number from {VMID_MIN} to {VMID_MAX}"
    return None
