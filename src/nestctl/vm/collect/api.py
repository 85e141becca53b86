"""The API collector: every node and VM of a cluster through `ApiClient`, concurrently.

Requests: `/version` and `/cluster/resources` once; per node `status`, `apt/versions`,
`capabilities/qemu/cpu-flags` and `qemu?full=1` (every VM's status with running-qemu and
running-machine, as status/current gives them, in one reply); per VM `pending` (the config in
force, the pending values and deletions in one reply). `status/current` is asked only for a
running VM the node list left out.
Reads run through a bounded thread pool (the client retries them); a node or VM that fails
becomes a finding and the rest completes. Only a failure of the first requests (TLS, auth, no
answer) stops the scan: then nothing about the cluster is known.

What the API cannot show:
- the KVM module's `nested` parameter: unknown unless a `NestedReader` (`--ssh`) reads it;
- the running QEMU's command line: the running -cpu is what Proxmox builds from the config in
  force with the QEMU version the process runs (`running-qemu`); a CPU change waits in
  [PENDING] until a restart, so the config in force is what the process was started with.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from nestctl.api.client import UNCHANGED, ApiClient, decode_data
from nestctl.api.errors import (
    ApiBadReplyError,
    ApiConnectionError,
    ApiError,
    ApiNodeUnreachableError,
    ApiNotImplementedError,
    ApiPermissionError,
)
from nestctl.findings import Finding, unknown, warning
from nestctl.parse import cpuid_vendor, parse_uint
from nestctl.vm.collect.fanout import fan_out
from nestctl.vm.collect.nested import NestedReader as NestedReader  # noqa: PLC0414 - re-exported for callers
from nestctl.vm.collect.nested import NestedReading as NestedReading  # noqa: PLC0414 - re-exported
from nestctl.vm.collect.pmxcfs import ClusterFiles
from nestctl.vm.facts import NodeFacts, ScanFacts, UnreachableVm, VmFacts, VmOptions
from nestctl.vm.model import CpuEnv, VmConfig
from nestctl.vm.running import RunningCheck, RunningVm

if TYPE_CHECKING:
    from nestctl.vm.collect.memo import MemoRound

_VERSION = re.compile(r"(\d+)\.(\d+)(?:[.-](\d+))?", re.ASCII)


#: Called once per finished request group (a node or a VM), for a progress bar.
Progress = Callable[[], None]

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


@dataclass
class ApiScan(ScanFacts):
    """The scan plus what only the API view has: per-node reports and the server version."""

    node_reports: list[NodeReport] = field(default_factory=list)
    version: str | None = None
    names: dict[int, str | None] = field(default_factory=dict)
    resources: list[Any] = field(default_factory=list)  # /cluster/resources as read
    ct_scan: Any = None  # nestctl.ct.collect.CtScan, when containers were asked for


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


def config_from_pending(vmid: int, node: str, items: Any) -> VmConfig:
    """A `VmConfig` from the pending endpoint's list of {key, value, pending, delete}."""
    if not isinstance(items, list):
        raise ApiBadReplyError("the pending list is not a list")
    conf = VmConfig(vmid=vmid, path=f"/etc/pve/nodes/{node}/qemu-server/{vmid}.conf", node=node)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ApiBadReplyError("a pending entry without a key")
        key = item["key"]
        if key == "digest":
            conf.digest = text_of(item.get("value", ""))
            continue
        if "value" in item:
            if key == "description":
                conf.description = text_of(item["value"])
            conf.main[key] = text_of(item["value"])
        if "pending" in item:
            conf.pending[key] = text_of(item["pending"])
        delete = int_of(item.get("delete"))
        if delete:
            conf.pending_delete.append((key, delete == 2))
    conf.main.pop("description", None)
    return conf


# -- the scan ------------------------------------------------------------------------------------


def collect_api(
    client: ApiClient,
    opts: VmOptions,
    *,
    concurrency: int = 16,
    nested_reader: NestedReader | None = None,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    files: ClusterFiles | None = None,
) -> ApiScan:
    """Scan the cluster behind `client`. Raises ApiError only when nothing could be read.

    `files` (the cluster file system, read over SSH) replaces the per-VM config requests.
    """
    scan = ApiScan()
    memo = _memo_for(client)
    models = _custom_models(files, scan)
    version = client.get("/version")
    scan.version = text_of(version.get("version")) if isinstance(version, dict) else None
    resources = client.get("/cluster/resources")
    if not isinstance(resources, list):
        raise ApiBadReplyError(
            "/cluster/resources is not a list", method="GET", path="/cluster/resources"
        )
    scan.resources = resources
    nodes, vms = _inventory(resources, scan, opts)
    addresses = _addresses(client) if nested_reader is not None else {}
    if on_total is not None:
        on_total(len(nodes) + len(vms))
    gates = {name: _NodeGate() for name in nodes}

    def node_task(name: str) -> None:
        gate = gates[name]
        try:
            got, gate.report = node_from_api(
                client,
                name,
                nodes[name],
                opts=opts,
                pve_version=scan.version,
                nested_reader=nested_reader,
                custom_models=models,
                address=addresses.get(name),
                on_reachable=gate.open,
            )
            gate.facts = memo.node(name, got) if memo is not None else got
        finally:
            gate.close()

    def vm_task(res: dict[str, Any]) -> VmFacts | UnreachableVm:
        return _vm_after_node(client, res, gates[res["node"]], files, memo)

    # One pool of `concurrency` workers takes the nodes first, then the VMs; a VM's config is
    # asked as soon as its node answered (its status), while the node's other requests run.
    tasks: list[Callable[[], Any]] = [partial(node_task, name) for name in nodes]
    tasks += [partial(vm_task, res) for res in vms]
    done = fan_out(lambda task: task(), tasks, max(1, concurrency), progress)
    if memo is not None:
        memo.commit()
    scan.node_reports = [gates[name].report or NodeReport(name, False) for name in nodes]
    for got in done[len(nodes) :]:
        if isinstance(got, UnreachableVm):
            scan.unreachable.append(got)
        else:
            scan.vms.append(got)
    scan.nodes = {name: g.facts for name, g in gates.items() if g.facts is not None}
    scan.vms.sort(key=lambda v: v.config.vmid)
    return scan


class _NodeGate:
    """One node's progress, for the VMs waiting on it: answered (reachable) and done (facts)."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self.finished = threading.Event()
        self.reachable = False
        self.facts: NodeFacts | None = None
        self.report: NodeReport | None = None

    def open(self) -> None:
        self.reachable = True
        self.answered.set()

    def close(self) -> None:
        self.answered.set()
        self.finished.set()


def _vm_after_node(
    client: ApiClient,
    res: dict[str, Any],
    gate: _NodeGate,
    files: ClusterFiles | None,
    memo: MemoRound | None,
) -> VmFacts | UnreachableVm:
    """One VM: its config asked once its node answered, its facts built once the node's are."""
    vmid, node = res["vmid"], res["node"]
    known = files.configs.get(vmid) if files else None
    from_files = known is not None and known.node == node
    gate.answered.wait()
    early: _Early | None = None
    if gate.reachable and not from_files:
        early = _Early.fetch(client, res, memo)
    gate.finished.wait()
    node_facts = gate.facts
    if node_facts is None:
        findings = gate.report.findings if gate.report else []
        why = next((f.message for f in findings), f"node {node} could not be reached")
        return _unreachable(res, why)
    status = gate.report.vm_status if gate.report else {}
    if known is not None and from_files and vmid in status:
        # The cluster file system gave the config, the node list its status: no request.
        return VmFacts(known, _run_state(client, known, node_facts, status[vmid]))
    return vm_from_api(client, res, node_facts, status.get(vmid), memo=memo, early=early)


class _Early:
    """A VM's `pending` reply, asked before its node's facts were complete (or its error)."""

    def __init__(self, raw: bytes | None, items: Any, error: ApiError | None) -> None:
        self.raw, self.items, self.error = raw, items, error

    @classmethod
    def fetch(cls, client: ApiClient, res: Mapping[str, Any], memo: MemoRound | None) -> _Early:
        path = f"/nodes/{res['node']}/qemu/{res['vmid']}/pending"
        try:
            if memo is None:
                return cls(None, client.get(path), None)
            old = memo.lookup(res["node"], res["vmid"])
            raw, items = client.get_if_changed(path, old.reply if old else None)
            return cls(raw, items, None)
        except ApiError as exc:
            return cls(None, None, exc)

    def result(self) -> tuple[bytes | None, Any]:
        if self.error is not None:
            raise self.error
        return self.raw, self.items


def _inventory(
    resources: list[Any], scan: ApiScan, opts: VmOptions
) -> tuple[dict[str, bool], list[dict[str, Any]]]:
    nodes: dict[str, bool] = {}
    vms: list[dict[str, Any]] = []
    for res in resources:
        if not isinstance(res, dict):
            continue
        if res.get("type") == "node" and isinstance(res.get("node"), str):
            nodes[res["node"]] = res.get("status") == "online"
        elif res.get("type") == "qemu" and isinstance(res.get("node"), str):
            vmid = int_of(res.get("vmid"))
            if vmid is None:
                continue
            vms.append({**res, "vmid": vmid})
            scan.names[vmid] = res.get("name") if isinstance(res.get("name"), str) else None
    for res in vms:  # a node only VMs mention (a resource list without node rows)
        nodes.setdefault(res["node"], True)
    if opts.vmids:
        wanted = set(opts.vmids)
        listed = {r["vmid"] for r in vms}
        vms = [r for r in vms if r["vmid"] in wanted]
        from nestctl.vm.notfound import not_found  # noqa: PLC0415

        for vmid in sorted(wanted - listed):
            scan.config_findings.append(
                not_found(vmid, listed, fix=f"check VM.Audit on /vms/{vmid} if it exists")
            )
        used = {r["node"] for r in vms}
        nodes = {n: online for n, online in nodes.items() if n in used}
    vms.sort(key=lambda r: r["vmid"])
    return dict(sorted(nodes.items())), vms


def _unreachable(res: Mapping[str, Any], why: str) -> UnreachableVm:
    name = res.get("name")
    return UnreachableVm(res["vmid"], name if isinstance(name, str) else None, res["node"], why)


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


def _addresses(client: ApiClient) -> dict[str, str]:
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


def vm_from_api(
    client: ApiClient,
    res: Mapping[str, Any],
    node: NodeFacts,
    status: dict[str, Any] | None = None,
    *,
    memo: MemoRound | None = None,
    early: _Early | None = None,
) -> VmFacts | UnreachableVm:
    vmid, name = res["vmid"], res["node"]
    base = f"/nodes/{name}/qemu/{vmid}"
    try:
        if memo is not None and (status is not None or res.get("status") != "running"):
            return _vm_remembered(client, memo, res, node, status, early=early)
        if early is not None:
            _raw, items = early.result()
            if items is UNCHANGED:
                items = decode_data(_raw or b"", method="GET", path=f"{base}/pending")
        else:
            items = client.get(f"{base}/pending")
        cfg = config_from_pending(vmid, name, items)
        run = _vm_run(client, cfg, res, node, status)
    except ApiPermissionError as exc:
        priv = exc.privilege or "VM.Audit"
        return _unreachable(res, f"not permitted: {exc.message} (grant {priv} on /vms/{vmid})")
    except ApiError as exc:
        return _unreachable(res, str(exc))
    return VmFacts(cfg, run)


def _vm_run(
    client: ApiClient,
    cfg: VmConfig,
    res: Mapping[str, Any],
    node: NodeFacts,
    status: dict[str, Any] | None,
) -> RunningCheck:
    if status is None and res.get("status") != "running":
        return RunningCheck(False, reason="stopped (the cluster says so)")
    return _run_state(client, cfg, node, status)


def _vm_remembered(
    client: ApiClient,
    memo: MemoRound,
    res: Mapping[str, Any],
    node: NodeFacts,
    status: dict[str, Any] | None,
    *,
    early: _Early | None = None,
) -> VmFacts:
    """One VM through the scan memo: its one request, and nothing more when nothing changed."""
    from nestctl.vm.collect.memo import VmEntry, run_key  # noqa: PLC0415

    vmid, name = res["vmid"], res["node"]
    path = f"/nodes/{name}/qemu/{vmid}/pending"
    old = memo.lookup(name, vmid)
    key = run_key(status, res.get("status"))
    same = old is not None and old.node is node and old.run_key == key
    if early is not None:  # asked against the last reply, before the node's facts were known
        raw, items = early.result()
    else:
        raw, items = client.get_if_changed(path, old.reply if same and old else None)
    if items is UNCHANGED and old is not None and same:
        return memo.reuse(name, vmid, old)
    if items is UNCHANGED:  # the same bytes, but the node or the run state changed
        items = decode_data(raw or b"", method="GET", path=path)
    cfg = config_from_pending(vmid, name, items)
    facts = VmFacts(cfg, _vm_run(client, cfg, res, node, status))
    if raw is not None:
        memo.keep(name, vmid, VmEntry(raw, key, node, facts))
    return facts


def _memo_for(client: Any) -> MemoRound | None:
    """This cluster's scan memo, for a client that can tell an unchanged reply (ApiClient)."""
    if not isinstance(client, ApiClient):
        return None
    from nestctl.vm.collect.memo import begin  # noqa: PLC0415

    return begin(client.url, client.userid)


def _run_state(
    client: ApiClient, cfg: VmConfig, node: NodeFacts, status: dict[str, Any] | None
) -> RunningCheck:
    if status is not None and status.get("status") != "running":
        return RunningCheck(False, reason=f"status {text_of(status.get('status'))}")
    return _running(client, f"/nodes/{cfg.node}/qemu/{cfg.vmid}", cfg, node, status)


def _custom_models(files: ClusterFiles | None, scan: ApiScan) -> dict[str, dict[str, str]] | None:
    """Custom CPU models from the cluster file system (the API has no endpoint for them)."""
    if files is None:
        return None
    from nestctl.vm.cpumodels import parse_custom_models  # noqa: PLC0415

    scan.findings += [warning("api.pmxcfs.problem", p) for p in files.problems]
    if files.cpu_models is None:
        return {}
    models, problems = parse_custom_models(files.cpu_models)
    scan.findings += [warning("vm.env.problem", p) for p in problems]
    return models


#: (id of a node's env, running QEMU) -> (that env, the env with that QEMU).
_QEMU_ENVS: dict[tuple[int, tuple[int, int, int]], tuple[CpuEnv, CpuEnv]] = {}


def env_with_qemu(env: CpuEnv, qemu: tuple[int, int, int]) -> CpuEnv:
    """`env` with the QEMU a VM runs: one object per (node, QEMU), so that `predict_cpu`'s
    per-env cache serves every VM of a node that runs the same QEMU (a fresh copy per VM missed
    it every time). The stored `env` keeps its id from being reused while cached."""
    if env.qemu_version == qemu:
        return env
    key = (id(env), qemu)
    hit = _QEMU_ENVS.get(key)
    if hit is not None and hit[0] is env:
        return hit[1]
    new = replace(env, qemu_version=qemu)
    if len(_QEMU_ENVS) >= 256:
        _QEMU_ENVS.clear()
    _QEMU_ENVS[key] = (env, new)
    return new


def _running(
    client: ApiClient, base: str, cfg: VmConfig, node: NodeFacts, status: Any = None
) -> RunningCheck:
    """A running VM: its QEMU version and machine, and the -cpu Proxmox built at its start."""
    from nestctl.vm.analyse import effective_cpu  # noqa: PLC0415
    from nestctl.vm.cpuarg import predict_cpu  # noqa: PLC0415

    if status is None:
        status = client.get(f"{base}/status/current")
    if not isinstance(status, dict):
        raise ApiBadReplyError("status/current is not an object")
    if status.get("status") != "running":
        return RunningCheck(False, reason=f"status {text_of(status.get('status'))}")
    env = node.env
    running_qemu = version_tuple(text_of(status.get("running-qemu", "")))
    if running_qemu is not None:
        qemu3 = (*running_qemu, 0, 0, 0)[:3]
        env = env_with_qemu(env, (qemu3[0], qemu3[1], qemu3[2]))
    cpu = effective_cpu(predict_cpu(cfg.current(), env))
    machine = status.get("running-machine")
    vm = RunningVm(
        vmid=cfg.vmid,
        pid=int_of(status.get("pid")) or 0,
        argv=(),
        cpu_arg=cpu,
        machine=text_of(machine) if machine is not None else None,
    )
    return RunningCheck(True, vm=vm)


def warn_partial(scan: ApiScan) -> list[Finding]:
    """One summary finding when part of the cluster could not be read."""
    if not scan.unreachable:
        return []
    return [
        warning(
            "api.partial",
            f"{len(scan.unreachable)} VM(s) could not be checked (see their findings); "
            f"the rest of the report is complete",
        )
    ]
