"""One node through the API: its status, versions, CPU flags, addresses and VM statuses
(`node_from_api`), and the normalising of what the API sends (numbers often arrive as strings).

Split from `nestctl.vm.collect.api`, which runs the scan and reads the VMs; that module re-exports
these names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nestctl.api.client import ApiClient
from nestctl.api.errors import (
    ApiConnectionError,
    ApiError,
    ApiNodeUnreachableError,
    ApiNotImplementedError,
    ApiPermissionError,
)
from nestctl.findings import Finding, unknown
from nestctl.parse import cpuid_vendor, parse_uint
from nestctl.vm.collect.nested import NestedReader, NestedReading
from nestctl.vm.facts import NodeFacts, VmOptions

_VERSION = re.compile(r"(\d+)\.(\d+)(?:[.-](\d+))?", re.ASCII)

API_CANNOT_SEE = (
    "the Proxmox API does not expose the kvm module's nested parameter; --ssh reads it on the node"
)


@dataclass
class NodeReport:
    """One `nodes` entry of `nestctl doctor --api --json`."""

    node: str
    reachable: bool
    vendor: str | None = None
    virt_flag: str | None = None
    nested: NestedReading = field(
        default_factory=lambda: NestedReading(None, problem=API_CANNOT_SEE)
    )
    findings: list[Finding] = field(default_factory=list)
    vm_status: dict[int, dict[str, Any]] = field(default_factory=dict)  # from qemu?full=1

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "reachable": self.reachable,
            "vendor": self.vendor,
            "virt_flag": self.virt_flag,
            "nested": self.nested.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


# -- normalising what the API sends (numbers often arrive as strings) --------------------------


def text_of(value: Any) -> str:
    """A config value as the config file would hold it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def int_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return parse_uint(value) if isinstance(value, str) else None


def vendor_from(flags: frozenset[str], model: str | None) -> str | None:
    """Node cpuinfo over the API has no vendor: the virt flag says it, else the model name."""
    if "vmx" in flags:
        return "intel"
    if "svm" in flags:
        return "amd"
    text = (model or "").lower()
    if "intel" in text:
        return "intel"
    if "amd" in text or "hygon" in text:
        return "amd"
    return "other" if model else None


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    m = _VERSION.match(text or "")
    if m is None:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def node_from_api(
    client: ApiClient,
    name: str,
    online: bool,
    *,
    opts: VmOptions,
    pve_version: str | None,
    nested_reader: NestedReader | None,
    custom_models: dict[str, dict[str, str]] | None = None,
    address: str | None = None,
    on_reachable: Callable[[], None] | None = None,
) -> tuple[NodeFacts | None, NodeReport]:
    report = NodeReport(node=name, reachable=False)
    if not online:
        report.findings.append(
            unknown(
                "api.node.offline",
                f"node {name}: the cluster lists it offline: its VMs could not be checked",
                f"check node {name} (pvecm status)",
            )
        )
        return None, report
    base = f"/nodes/{name}"
    try:
        status = client.get(f"{base}/status")
    except (ApiConnectionError, ApiNodeUnreachableError) as exc:
        report.findings.append(
            unknown(
                "api.node.unreachable",
                f"node {name} could not be reached: {exc}: its VMs could not be checked",
            )
        )
        return None, report
    except ApiError as exc:
        status = None
        report.findings.append(_node_problem(name, "status", exc))
    report.reachable = True
    if on_reachable is not None:
        on_reachable()  # the node answers: its VMs may be asked now
    cpuinfo = status.get("cpuinfo") if isinstance(status, dict) else None
    flags: frozenset[str] = frozenset()
    model = None
    if isinstance(cpuinfo, dict):
        flags = frozenset(text_of(cpuinfo.get("flags", "")).split())
        model = text_of(cpuinfo["model"]) if "model" in cpuinfo else None
    vendor = vendor_from(flags, model) if isinstance(cpuinfo, dict) else None
    report.vendor = vendor
    report.virt_flag = "vmx" if "vmx" in flags else "svm" if "svm" in flags else None
    versions, problems = _versions(client, base, name, report)
    report.vm_status = _vm_statuses(client, base)
    nested_virt, cpu_flags = _nested_virt_flag(client, base)
    reading = NestedReading(None, problem=API_CANNOT_SEE)
    if nested_reader is not None:
        reading = nested_reader(name, address)
    if reading.live is None:
        from nestctl.vm.collect.evidence import cpu_flags_reading  # noqa: PLC0415

        uptime = status.get("uptime") if isinstance(status, dict) else None
        dated = cpu_flags_reading(
            cpu_flags, name, float(uptime) if isinstance(uptime, (int, float)) else None
        )
        if dated is not None:
            reading = dated
        elif nested_reader is None:
            from nestctl.vm.collect.evidence import UNKNOWN_WHY  # noqa: PLC0415

            reading = NestedReading(None, problem=UNKNOWN_WHY)
    report.nested = reading
    facts = _node_facts(
        name,
        opts,
        cpuinfo=cpuinfo if isinstance(cpuinfo, dict) else None,
        vendor=vendor,
        flags=flags,
        model=model,
        versions=versions,
        pve_version=pve_version,
        reading=reading,
        nested_virt=nested_virt,
        problems=problems,
        custom_models=custom_models,
    )
    return facts, report


def _node_problem(name: str, what: str, exc: ApiError) -> Finding:
    if isinstance(exc, ApiPermissionError):
        priv = exc.privilege or "Sys.Audit"
        return unknown(
            "api.node.not-permitted",
            f"node {name}: {what}: not permitted ({exc.message}): the CPU and versions stay "
            f"unknown",
            f"grant {priv} on {exc.acl_path or '/nodes/' + name} (role PVEAuditor)",
        )
    return unknown("api.node.failed", f"node {name}: {what}: {exc}")


def _versions(client: ApiClient, base: str, name: str, report: NodeReport) -> tuple[Any, list[str]]:
    """The node's package versions (apt/versions), or None and why."""
    from nestctl.vm.versions import package_versions  # noqa: PLC0415

    try:
        packages = client.get(f"{base}/apt/versions")
    except ApiError as exc:
        report.findings.append(_node_problem(name, "package versions", exc))
        return None, []
    if not isinstance(packages, list):
        return None, [f"node {name}: apt/versions is not a list"]
    installed = {
        str(p.get("Package")): text_of(p.get("Version", ""))
        for p in packages
        if isinstance(p, dict) and p.get("Version")
    }
    return package_versions(installed), []


def _nested_virt_flag(client: ApiClient, base: str) -> tuple[bool | None, Any]:
    """Whether the node offers the nested-virt CPU flag (qemu-server 9.0.27+; None: unknown),
    and the listing itself: from 9.1.17 its `supported-on` is evidence of `nested`
    (`evidence.cpu_flags_reading`). `accel` is not sent: it defaults to kvm there, and older
    servers refuse it as an unknown parameter."""
    try:
        flags = client.get(f"{base}/capabilities/qemu/cpu-flags")
    except ApiNotImplementedError:
        return False, None  # an older Proxmox: no such endpoint, so no nested-virt flag either
    except ApiError:
        return None, None
    if not isinstance(flags, list):
        return None, None
    offered = any(isinstance(f, dict) and f.get("name") == "nested-virt" for f in flags)
    return offered, flags


def _node_facts(
    name: str,
    opts: VmOptions,
    *,
    cpuinfo: dict[str, Any] | None,
    vendor: str | None,
    flags: frozenset[str],
    model: str | None,
    versions: Any,
    pve_version: str | None,
    reading: NestedReading,
    nested_virt: bool | None,
    problems: list[str],
    custom_models: dict[str, dict[str, str]] | None = None,
) -> NodeFacts:
    from nestctl.host.cpuinfo import CpuInfo  # noqa: PLC0415
    from nestctl.vm.versions import cpu_env_for, parse_version_arg  # noqa: PLC0415

    qemu = parse_version_arg(opts.qemu_version) if opts.qemu_version else None
    pve = parse_version_arg(opts.pve_version) if opts.pve_version else None
    if pve is None and (versions is None or versions.qemu_server is None):
        pve = version_tuple(pve_version)  # /version: the cluster's pve-manager
    info = None
    if cpuinfo is not None:
        info = CpuInfo(cpuid_vendor(vendor), flags, model, int_of(cpuinfo.get("cpus")) or 0)
    env = cpu_env_for(
        versions=versions,
        cpuinfo=info,
        custom_models=custom_models,
        qemu_version=qemu,
        pve_version=pve,
        nodename=name,
    )
    return NodeFacts(
        name=name,
        env=env,
        cpuinfo_known=cpuinfo is not None,
        vendor=vendor,
        flags=flags,
        nested_live=reading.live,
        nested_decided_by=reading.decided_by,
        nested_unknown_why=reading.problem or "not read",
        # The message names what the user can turn on; no command (none runs from a phone).
        nested_unknown_fix=None,
        env_problems=tuple(problems),
        qemu_version_known=qemu is not None
        or (versions is not None and versions.pve_qemu_kvm is not None),
        qemu_server_known=pve is not None
        or (versions is not None and versions.qemu_server is not None),
        nested_virt_flag=nested_virt,
        custom_models_known=custom_models is not None,
    )


def addresses(client: ApiClient) -> dict[str, str]:
    """Node name -> IP from /cluster/status, for SSH from outside the cluster ({} if unknown)."""
    try:
        status = client.get("/cluster/status")
    except ApiError:
        return {}
    return {
        str(item["name"]): str(item["ip"])
        for item in (status if isinstance(status, list) else [])
        if isinstance(item, dict) and item.get("type") == "node" and item.get("ip")
    }


def _vm_statuses(client: ApiClient, base: str) -> dict[int, dict[str, Any]]:
    """Every VM's status on a node in one request ({} when it fails: then per VM)."""
    try:
        listed = client.get(f"{base}/qemu", full=1)
    except ApiError:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for item in listed if isinstance(listed, list) else []:
        vmid = int_of(item.get("vmid")) if isinstance(item, dict) else None
        if vmid is not None:
            out[vmid] = item
    return out
