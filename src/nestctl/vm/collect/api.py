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

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from nestctl.api.client import UNCHANGED, ApiClient, decode_data
from nestctl.api.errors import (
    ApiBadReplyError,
    ApiError,
    ApiPermissionError,
)
from nestctl.findings import Finding, warning

# Re-exported (with NestedReader/NestedReading below): callers import these from here.
from nestctl.vm.collect.api_node import (
    API_CANNOT_SEE as API_CANNOT_SEE,  # noqa: PLC0414
)
from nestctl.vm.collect.api_node import (
    NodeReport as NodeReport,  # noqa: PLC0414
)
from nestctl.vm.collect.api_node import addresses as node_addresses
from nestctl.vm.collect.api_node import (
    int_of as int_of,  # noqa: PLC0414
)
from nestctl.vm.collect.api_node import (
    node_from_api as node_from_api,  # noqa: PLC0414
)
from nestctl.vm.collect.api_node import (
    text_of as text_of,  # noqa: PLC0414
)
from nestctl.vm.collect.api_node import (
    vendor_from as vendor_from,  # noqa: PLC0414
)
from nestctl.vm.collect.api_node import (
    version_tuple as version_tuple,  # noqa: PLC0414
)
from nestctl.vm.collect.fanout import fan_out
from nestctl.vm.collect.nested import NestedReader as NestedReader  # noqa: PLC0414 - re-exported for callers
from nestctl.vm.collect.nested import NestedReading as NestedReading  # noqa: PLC0414 - re-exported
from nestctl.vm.collect.pmxcfs import ClusterFiles
from nestctl.vm.facts import NodeFacts, ScanFacts, UnreachableVm, VmFacts, VmOptions
from nestctl.vm.model import CpuEnv, VmConfig
from nestctl.vm.running import RunningCheck, RunningVm

if TYPE_CHECKING:
    from nestctl.vm.collect.memo import MemoRound


#: Called once per finished request group (a node or a VM), for a progress bar.
Progress = Callable[[], None]


@dataclass
class ApiScan(ScanFacts):
    """The scan plus what only the API view has: per-node reports and the server version."""

    node_reports: list[NodeReport] = field(default_factory=list)
    version: str | None = None
    names: dict[int, str | None] = field(default_factory=dict)
    resources: list[Any] = field(default_factory=list)  # /cluster/resources as read
    ct_scan: Any = None  # nestctl.ct.collect.CtScan, when containers were asked for


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
    addresses = node_addresses(client) if nested_reader is not None else {}
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
