"""A report body (`nestctl doctor --json`, local or cluster) -> every metric family.

Local body: ``{"host", "proxmox", "vms", "findings", "verdict"}``; the node is named by the
caller (the host object has no name). Cluster body (issue 13): ``{"nodes": [...], "vms": [...
with "node"], "findings", "verdict"}``. Both go through the same per-layer functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from nestctl.metrics.ct import ct_families, ct_id
from nestctl.metrics.family import Families, node_id, vm_id
from nestctl.metrics.guest import guest_families
from nestctl.metrics.host import host_families
from nestctl.metrics.vm import vm_families

VERDICTS = ("ready", "not-ready", "unknown")
SEVERITIES = frozenset({"error", "warning", "info"})


class Node(NamedTuple):
    """What a VM's families need from its node."""

    reachable: bool
    vendor: object


def report_families(
    body: Mapping[str, Any], *, local_node: str | None = None, guests: bool = False
) -> Families:
    """Every layer's families from one report body (`guests`: the run asked each guest)."""
    fam = Families()
    attributed: set[tuple[object, object]] = set()
    nodes = _nodes(fam, body, local_node, attributed)
    for vm in _dicts(body.get("vms")):
        vid = vm_id(vm.get("vmid"))
        if vid is None:
            continue
        node = nodes.get(vm.get("node")) or nodes.get(None) or Node(True, None)
        if not node.reachable:
            fam.add("nestctl_up", 0.0, id=vid, layer="vm")
            continue
        vm_families(fam, vid, vm, node.vendor)
        if guests and vm.get("running") is True:
            guest_families(fam, vid, vm)
        attributed |= _findings(fam, vid, vm.get("findings"))
    for ct in _dicts(body.get("cts")):
        cid = ct_id(ct.get("vmid"))
        if cid is None:
            continue
        node = nodes.get(ct.get("node")) or nodes.get(None) or Node(True, None)
        if not node.reachable:
            fam.add("nestctl_up", 0.0, id=cid, layer="ct")
            continue
        ct_families(fam, cid, ct)
        attributed |= _findings(fam, cid, ct.get("findings"))
    # Top-level findings not already counted for a VM belong to the node (local) or to the
    # cluster as a whole (no id).
    rest = [f for f in _dicts(body.get("findings")) if _key(f) not in attributed]
    _findings(fam, node_id(local_node) if "host" in body else None, rest)
    if isinstance(body.get("backups"), list):
        from nestctl.metrics.backup import backup_families  # noqa: PLC0415

        backup_families(fam, _dicts(body["backups"]))
    fam.enum("nestctl_verdict", VERDICTS, body.get("verdict"))
    return fam


def _nodes(
    fam: Families,
    body: Mapping[str, Any],
    local_node: str | None,
    attributed: set[tuple[object, object]],
) -> dict[Any, Node]:
    """Host families of every node; the map a VM's `node` key looks its node up in. Findings
    exported for a node are added to `attributed` (the top level repeats some)."""
    out: dict[Any, Node] = {}
    host = body.get("host")
    if isinstance(host, Mapping):
        hid = node_id(local_node)
        if hid is not None:
            host_families(fam, hid, host)
        else:
            fam.failed("", "node_name")  # no name to key the host's series on: none exported
        # Locally every VM (any node's, with --all-nodes) is judged against this host's CPU.
        out[None] = Node(True, host.get("vendor"))
    for node in _dicts(body.get("nodes")):
        name = node.get("node")
        hid = node_id(name)
        reachable = node.get("reachable") is not False
        out[name] = Node(reachable, node.get("vendor"))
        if hid is None:
            continue
        if reachable:
            host_families(fam, hid, node)
        else:
            fam.add("nestctl_up", 0.0, id=hid, layer="host")
        attributed |= _findings(fam, hid, node.get("findings"))
    return out


def _key(finding: Mapping[str, Any]) -> tuple[object, object]:
    return finding.get("code"), finding.get("message")


def _findings(fam: Families, target: str | None, findings: object) -> set[tuple[object, object]]:
    seen: set[tuple[object, object]] = set()
    for f in _dicts(findings):
        code, severity = f.get("code"), f.get("severity")
        if isinstance(code, str) and severity in SEVERITIES:
            fam.add("nestctl_finding", 1.0, id=target or "", code=code, severity=str(severity))
        seen.add(_key(f))
    return seen


def _dicts(value: object) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []
