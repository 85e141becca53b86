"""One level of a lab as plain data: what `tree` needs of a target, however it was gathered."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    """A VM in the tree: its VM object (as `nestctl vm --json` prints it) and the one verdict
    (`nestctl.vm.verdict.judge_vm`) of it. `verdict` and `broken_link` are that judgement's."""

    vmid: int
    name: str | None
    node: str | None
    verdict: str
    broken_link: str | None
    smbios_uuid: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    wants_nested: bool | None = None
    intent: str = "none"
    message: str | None = None
    fix: str | None = None
    all_vms: bool = False

    def judged(self, *, hosts_inner: bool = False) -> VmView:
        """The same VM judged again: `hosts_inner` when a tied inner target runs in it (that
        is intent: "inner-layer")."""
        return vm_view(self.body, self.smbios_uuid, hosts_inner=hosts_inner, all_vms=self.all_vms)


def vm_view(
    body: Mapping[str, Any],
    uuid: str | None = None,
    *,
    hosts_inner: bool = False,
    all_vms: bool = False,
) -> VmView:
    """A `VmView` from one VM object, judged by the one function."""
    from nestctl.vm.verdict import judge_vm  # noqa: PLC0415

    data = dict(body)
    legacy = "wants_nested" not in data  # from a nestctl before intent: judge as it did
    if "chain" not in data and isinstance(data.get("broken_link"), str):
        data["chain"] = {data["broken_link"]: "broken"}
    if hosts_inner and data.get("wants_nested") is not True:
        data["wants_nested"], data["intent"] = True, "inner-layer"
    v = judge_vm(data, all_vms=all_vms or legacy)
    name = data.get("name")
    node = data.get("node")
    return VmView(
        int(data["vmid"]),
        name if isinstance(name, str) else None,
        node if isinstance(node, str) else None,
        v.verdict,
        v.broken_link,
        uuid,
        body=data,
        wants_nested=v.wants_nested,
        intent=v.intent,
        message=v.message,
        fix=v.fix,
        all_vms=all_vms,
    )


@dataclass
class NodeView:
    node: str
    verdict: str
    findings: list[Finding] = field(default_factory=list)
    product_uuid: str | None = None  # the node's DMI product_uuid, when known (SSH, JSON)
    #: The KVM module's `nested` as read (`NestedReading.to_json`: live, after_reboot,
    #: decided_by), None when not known to this view (a tree read back from JSON).
    nested: dict[str, Any] | None = None


@dataclass
class TargetView:
    """A target's nodes and VMs, or why it could not be read (`problem`)."""

    name: str
    parent: tuple[str, int] | None = None
    nodes: list[NodeView] = field(default_factory=list)
    vms: list[VmView] = field(default_factory=list)
    problem: Finding | None = None
    cts: list[dict[str, Any]] = field(default_factory=list)  # `nestctl ct --json` objects

    @classmethod
    def from_json(cls, name: str, body: dict[str, Any], *, all_vms: bool = False) -> TargetView:
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
            vm_view(v, (v.get("smbios_uuid") or "").lower() or None, all_vms=all_vms)
            for v in body.get("vms", [])
        ]
        cts = [c for c in body.get("cts", []) if isinstance(c, dict) and "vmid" in c]
        return cls(name, nodes=nodes, vms=vms, cts=cts)


#: Finding codes of a node's own layer in a doctor report (the rest belong to its VMs).
NODE_CODES = ("host.", "doctor.")


def from_doctor(
    name: str,
    body: dict[str, Any],
    parent: tuple[str, int] | None = None,
    node: str | None = None,
    *,
    all_vms: bool = False,
) -> TargetView:
    """From a node's own `nestctl doctor --all-nodes --json` (local mode: one node, its VMs),
    run on that node or inside a VM and brought back (a lab's inner level without an API).

    The node's findings are the host layer's (`host.*`, `doctor.*`; the VM and guest ones are
    its VMs'); its name is `node`, else the one its VM configs are filed under, else the target's.
    """
    if not isinstance(body, dict) or not isinstance(body.get("vms", []), list):
        return unreachable(name, parent, "not the JSON of `nestctl doctor --json`")
    vms_json = [v for v in body.get("vms", []) if isinstance(v, dict) and "vmid" in v]
    node = node or next((str(v["node"]) for v in vms_json if v.get("node")), name)
    try:
        view = TargetView.from_json(
            name,
            {
                "nodes": [{"node": node, "findings": [
                    f for f in body.get("findings", [])
                    if isinstance(f, dict) and str(f.get("code", "")).startswith(NODE_CODES)
                ]}],
                "vms": [{**v, "node": node} for v in vms_json],
                "cts": [
                    {**c, "node": c.get("node") or node}
                    for c in body.get("cts", [])
                    if isinstance(c, dict)
                ],
            },
            all_vms=all_vms,
        )  # fmt: skip
    except (KeyError, ValueError, TypeError) as exc:
        return unreachable(name, parent, f"malformed `nestctl doctor --json` output ({exc!r:.80})")
    view.parent = parent
    return view


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
