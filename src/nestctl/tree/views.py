"""One level of a lab as plain data: what `tree` needs of a target, however it was gathered."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nestctl.findings import Finding, Severity, unknown

_UUID = re.compile(r"(?:^|,)uuid=([0-9a-fA-F-]{36})(?:,|$)", re.ASCII)


def smbios_uuid(smbios1: str | None) -> str | None:
    """The `uuid=` of a VM's smbios1 option, lower-case."""
    m = _UUID.search(smbios1 or "")
    return m.group(1).lower() if m else None


@dataclass
class VmView:
    vmid: int
    name: str | None
    node: str | None
    verdict: str
    broken_link: str | None
    smbios_uuid: str | None = None


@dataclass
class NodeView:
    node: str
    verdict: str
    findings: list[Finding] = field(default_factory=list)
    product_uuid: str | None = None  # the node's DMI product_uuid, when known (SSH, JSON)


@dataclass
class TargetView:
    """A target's nodes and VMs, or why it could not be read (`problem`)."""

    name: str
    parent: tuple[str, int] | None = None
    nodes: list[NodeView] = field(default_factory=list)
    vms: list[VmView] = field(default_factory=list)
    problem: Finding | None = None

    @classmethod
    def from_json(cls, name: str, body: dict[str, Any]) -> TargetView:
        """From `nestctl doctor --api --json` output (plus optional `product_uuid` per node and
        `smbios_uuid` per VM): a lab can bring this back from inside a VM."""
        from nestctl.findings import Severity as Sev  # noqa: PLC0415

        nodes = [
            NodeView(
                str(n.get("node")),
                _verdict_of(n.get("findings", [])),
                [
                    Finding(f["code"], Sev(f["severity"]), f["message"], f.get("fix"))
                    for f in n.get("findings", [])
                ],
                product_uuid=(n.get("product_uuid") or "").lower() or None,
            )
            for n in body.get("nodes", [])
        ]
        vms = [
            VmView(
                int(v["vmid"]),
                v.get("name"),
                v.get("node"),
                _verdict_of([f for f in v.get("findings", []) if f.get("severity") != "info"]),
                v.get("broken_link"),
                (v.get("smbios_uuid") or "").lower() or None,
            )
            for v in body.get("vms", [])
        ]
        return cls(name, nodes=nodes, vms=vms)


def _verdict_of(findings: list[dict[str, Any]]) -> str:
    severities = {f.get("severity") for f in findings}
    if "error" in severities:
        return "not-ready"
    if severities & {"warning", "unknown"}:
        return "unknown"
    return "ready"


def unreachable(name: str, parent: tuple[str, int] | None, why: str) -> TargetView:
    return TargetView(
        name,
        parent,
        problem=unknown("tree.target.unreachable", f"target {name} could not be checked: {why}"),
    )


def node_verdict(findings: list[Finding]) -> str:
    from nestctl.findings import verdict_for  # noqa: PLC0415

    return verdict_for(f for f in findings if f.severity is not Severity.INFO).value
