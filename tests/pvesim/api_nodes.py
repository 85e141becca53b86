"""Cluster- and node-level endpoints: version, inventory, node status and power, packages, tasks."""

from __future__ import annotations

import re
import time
from typing import Any

from nestctl.vm.cpumodels import BUILTIN_MODELS, x86_vendors
from tests.pvesim.cluster import Cluster, Node, Task, Vm
from tests.pvesim.handlers import ApiError, Ctx, Extra, handles, index

_UPID = re.compile(
    r"UPID:([a-zA-Z0-9\-]+):([0-9A-F]{8}):([0-9A-F]{8,9}):([0-9A-F]{8}):([^:\s]+):([^:\s]*):([^:\s]+):"
)
_PACKAGES = (
    ("proxmox-ve", "The Proxmox Virtual Environment"),
    ("pve-manager", "The Proxmox Virtual Environment"),
    ("qemu-server", "Qemu Server Tools"),
    ("pve-qemu-kvm", "Full virtualization on x86 hardware"),
    ("libpve-common-perl", "Proxmox VE base library"),
    ("pve-firewall", "Proxmox VE Firewall"),
)
_CPU_FLAGS = [
    "nested-virt",
    "md-clear",
    "pcid",
    "spec-ctrl",
    "ssbd",
    "ibpb",
    "virt-ssbd",
    "amd-ssbd",
    "amd-no-ssb",
    "pdpe1gb",
    "hv-tlbflush",
    "hv-evmcs",
    "aes",
    "vmx",
    "svm",
]


def version_info(node: Node) -> dict[str, Any]:
    major, minor = node.major_minor
    info: dict[str, Any] = {
        "version": node.version,
        "release": f"{major}.{minor}",
        "repoid": node.repoid,
    }
    if (major, minor) >= (6, 0):
        info["console"] = "html5"
    if major < 7:
        info["keyboard"] = "en-us"
    return info


@handles("GET", "/version")
def get_version(ctx: Ctx) -> Any:
    return version_info(ctx.cluster.entry)


@handles("GET", "/nodes/{node}/version")
def get_node_version(ctx: Ctx) -> Any:
    info = version_info(ctx.node)
    info.pop("console", None)
    return info


def _vm_resource(vm: Vm, node: Node) -> dict[str, Any]:
    conf = vm.conf.main
    entry: dict[str, Any] = {
        "id": f"qemu/{vm.vmid}",
        "type": "qemu",
        "vmid": vm.vmid,
        "node": vm.node,
        "name": conf.get("name", f"VM {vm.vmid}"),
        "status": ("running" if vm.running else "stopped") if node.online else "unknown",
        "template": 1 if conf.get("template") == "1" else 0,
        "maxcpu": int(conf.get("cores", "1")) * int(conf.get("sockets", "1")),
        "maxmem": _memory_bytes(conf),
        "maxdisk": 34_359_738_368,
        "disk": 0,
        "mem": _memory_bytes(conf) // 3 if vm.running else 0,
        "cpu": 0.0123 if vm.running else 0,
        "uptime": int(time.time() - vm.started) if vm.running else 0,
        "netin": 123_456 if vm.running else 0,
        "netout": 65_432 if vm.running else 0,
        "diskread": 1_048_576 if vm.running else 0,
        "diskwrite": 524_288 if vm.running else 0,
    }
    if "tags" in conf:
        entry["tags"] = conf["tags"]
    if "lock" in conf:
        entry["lock"] = conf["lock"]
    if not node.online:
        for key in ("mem", "cpu", "uptime", "netin", "netout", "diskread", "diskwrite"):
            entry.pop(key)
    return entry


def _memory_bytes(conf: dict[str, str]) -> int:
    raw = conf.get("memory", "2048")
    m = re.match(r"(?:current=)?(\d+)", raw)
    return (int(m.group(1)) if m else 2048) * 1024 * 1024


def _node_resource(node: Node) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": f"node/{node.name}",
        "type": "node",
        "node": node.name,
        "status": "online" if node.online else "offline",
        "level": "",
    }
    if node.online:
        entry.update(
            cpu=0.0312,
            maxcpu=node.cpus,
            mem=node.memory_total // 4,
            maxmem=node.memory_total,
            disk=12_884_901_888,
            maxdisk=101_203_873_792,
            uptime=int(time.time() - node.uptime_since),
        )
        if node.major_minor >= (7, 0):
            entry["cgroup-mode"] = 2
    return entry


@handles("GET", "/cluster/resources")
def cluster_resources(ctx: Ctx) -> Any:
    kind = ctx.text("type")
    out: list[dict[str, Any]] = []
    for node in ctx.cluster.nodes.values():
        if kind in (None, "node"):
            out.append(_node_resource(node))
        if kind in (None, "vm"):
            out += [_vm_resource(vm, node) for vm in node.vms.values() if _can_see(ctx, vm)]
            out += _ct_resources(ctx, node)
        if kind in (None, "storage"):
            out.append(
                {
                    "id": f"storage/{node.name}/local",
                    "type": "storage",
                    "storage": "local",
                    "node": node.name,
                    "status": "available" if node.online else "unknown",
                    "content": "iso,vztmpl,backup",
                    "plugintype": "dir",
                    "shared": 0,
                }
            )
            used, total = node.storage_usage.get("local", (0, 0))
            if node.online and total:
                out[-1].update(disk=used, maxdisk=total)
    return out


def _ct_resources(ctx: Ctx, node: Node) -> list[dict[str, Any]]:
    """Containers are `type=vm` resources too (type lxc, id lxc/<vmid>)."""
    from tests.pvesim.api_lxc import ct_resource  # noqa: PLC0415 - api_lxc imports this module

    return [
        ct_resource(ct, node)
        for ct in node.cts.values()
        if ctx.users.privileges(ctx.who, f"/vms/{ct.vmid}") & {"VM.Audit"}
    ]


def _can_see(ctx: Ctx, vm: Vm) -> bool:
    """/cluster/resources lists only VMs the caller may audit (as Proxmox filters it)."""
    return bool(ctx.users.privileges(ctx.who, f"/vms/{vm.vmid}") & {"VM.Audit"})


@handles("GET", "/cluster/status")
def cluster_status(ctx: Ctx) -> Any:
    cluster = ctx.cluster
    out: list[dict[str, Any]] = []
    if cluster.name is not None:
        out.append(
            {
                "type": "cluster",
                "id": "cluster",
                "name": cluster.name,
                "nodes": len(cluster.nodes),
                "quorate": 1,
                "version": 7,
            }
        )
    for i, node in enumerate(cluster.nodes.values(), start=1):
        out.append(
            {
                "type": "node",
                "id": f"node/{node.name}",
                "name": node.name,
                "nodeid": i,
                "ip": node.ip,
                "online": 1 if node.online else 0,
                "local": 1 if i == 1 else 0,
                "level": "",
            }
        )
    return out


@handles("GET", "/nodes")
def list_nodes(ctx: Ctx) -> Any:
    out = []
    for node in ctx.cluster.nodes.values():
        entry = _node_resource(node)
        if node.online:
            entry["ssl_fingerprint"] = ctx.fingerprint
        out.append(entry)
    return out


@handles("GET", "/nodes/{node}")
def node_index(ctx: Ctx) -> Any:
    _ = ctx.node
    return index("apt", "capabilities", "firewall", "qemu", "status", "tasks", "version")


def _kernel_build(node: Node) -> str:
    return f"#1 SMP PREEMPT_DYNAMIC PMX {node.kernel.removesuffix('-pve')}"


@handles("GET", "/nodes/{node}/status")
def node_status(ctx: Ctx) -> Any:
    node = ctx.node
    major_minor = node.major_minor
    cpuinfo: dict[str, Any] = {
        "user_hz": 100,
        "model": node.cpu_model,
        "mhz": node.mhz,
        "cpus": node.cpus,
        "sockets": node.sockets,
        "cores": node.cores,
        "flags": node.cpu_flags,
    }
    if re.search(r"(?:^|\s)(vmx|svm)(?:\s|$)", node.cpu_flags):
        cpuinfo["hvm"] = "1"  # pve-common sets it only when it sees vmx or svm
    total = node.memory_total
    status: dict[str, Any] = {
        "cpu": 0.0312,
        "wait": 0.0004,
        "idle": 0,
        "loadavg": ["0.12", "0.18", "0.21"],
        "uptime": int(time.time() - node.uptime_since),
        "kversion": f"Linux {node.kernel} {_kernel_build(node)}",
        "pveversion": f"pve-manager/{node.version}/{node.repoid}",
        "cpuinfo": cpuinfo,
        "memory": {"total": total, "used": total // 4, "free": total - total // 4},
        "swap": {"total": 8_589_934_592, "used": 0, "free": 8_589_934_592},
        "rootfs": {
            "total": 101_203_873_792,
            "used": 12_884_901_888,
            "free": 88_318_971_904,
            "avail": 83_140_485_120,
        },
        "ksm": {"shared": 0},
    }
    if major_minor >= (9, 0):
        status["memory"]["available"] = total - total // 3
        status["boot-info"] = {"mode": node.boot_mode, "secureboot": 1 if node.secureboot else 0}
        status["current-kernel"] = {
            "sysname": "Linux",
            "release": node.kernel,
            "version": _kernel_build(node),
            "machine": "x86_64",
        }
    elif major_minor >= (8, 4):
        status["boot-info"] = {"mode": node.boot_mode}
    return status


@handles("POST", "/nodes/{node}/status")
def node_power(ctx: Ctx) -> Any:
    node = ctx.node
    command = ctx.text("command")
    with ctx.cluster.lock:
        for vm in node.vms.values():
            vm.status, vm.pid = "stopped", None
        node.online = False
        if command == "reboot":
            ctx.cluster.reboot_node_later(node.name)
    return None


@handles("GET", "/nodes/{node}/apt/versions")
def apt_versions(ctx: Ctx) -> Any:
    node = ctx.node
    out = []
    for name, title in _PACKAGES:
        version = node.packages.get(name)
        if name == "pve-manager":
            version = node.version
        if version is None:
            continue
        entry = {
            "Package": name,
            "Title": title,
            "Description": title,
            "Version": version,
            "OldVersion": version,
            "Arch": "all" if name.startswith("pve-manager") else "amd64",
            "Origin": "Proxmox",
            "Priority": "optional",
            "Section": "admin",
            "CurrentState": "Installed",
        }
        if name == "proxmox-ve":
            entry["RunningKernel"] = node.kernel
            entry["ManagerVersion"] = node.version
        out.append(entry)
    return out


@handles("GET", "/nodes/{node}/capabilities")
def capabilities_index(ctx: Ctx) -> Any:
    _ = ctx.node
    return index("qemu")


@handles("GET", "/nodes/{node}/capabilities/qemu")
def capabilities_qemu(ctx: Ctx) -> Any:
    _ = ctx.node
    return index("cpu", "cpu-flags", "machines", "migration")


#: qemu-server's first version with `accel` and `supported-on` (pve-api-facts.md).
SUPPORTED_ON_SINCE = (9, 1, 17)


def _supported_on(ctx: Ctx, name: str) -> list[str]:
    """The nodes `supported-on` lists for a flag: for nested-virt those whose KVM offered vmx or
    svm when pvestatd last probed (nested on, a CPU with the flag); others by the CPU's flags."""
    out = []
    for n in ctx.cluster.nodes.values():
        has_virt = re.search(r"\b(vmx|svm)\b", n.cpu_flags) is not None
        if name == "nested-virt":
            ok = has_virt and n.nested_param is True
        else:
            ok = name in n.cpu_flags.split() or name not in ("vmx", "svm")
        if ok:
            out.append(n.name)
    return out


def _accel_unknown() -> ApiError:
    return ApiError(
        400,
        "Parameter verification failed.",
        {"accel": "property is not defined in schema and the schema does not allow additional "
                  "properties\n"},
    )  # fmt: skip


@handles("GET", "/nodes/{node}/capabilities/qemu/cpu-flags")
def cpu_flags(ctx: Ctx) -> Any:
    node = ctx.node
    if node.major_minor < (9, 1):  # added in PVE 9.1 (landscape.md §C.1)
        raise ApiError(
            501, f"Method 'GET /nodes/{node.name}/capabilities/qemu/cpu-flags' not implemented"
        )
    new = node.qemu_server >= SUPPORTED_ON_SINCE
    if ctx.text("accel") is not None and not new:
        raise _accel_unknown()  # older servers: no such parameter
    out = []
    for name in node.cpu_flags_supported or _CPU_FLAGS:
        item: dict[str, Any] = {"name": name, "description": f"{name} CPU flag"}
        if new:
            item["supported-on"] = _supported_on(ctx, name)
        out.append(item)
    return out


@handles("GET", "/cluster/qemu/cpu-flags")
def cluster_cpu_flags(ctx: Ctx) -> Any:
    """pve-manager 14a22df: the cluster-wide listing (Sys.Audit on /nodes, or Mapping rights on
    /mapping/cpu)."""
    have = ctx.users.privileges(ctx.who, "/nodes") | ctx.users.privileges(ctx.who, "/mapping/cpu")
    if not have & {"Sys.Audit", "Mapping.Audit", "Mapping.Use", "Mapping.Modify"}:
        raise ApiError(403, "Permission check failed (/nodes, Sys.Audit)")
    names = list(dict.fromkeys(f for n in ctx.cluster.nodes.values()
                               for f in (n.cpu_flags_supported or _CPU_FLAGS)))  # fmt: skip
    return [
        {"name": f, "description": f"{f} CPU flag", "supported-on": _supported_on(ctx, f)}
        for f in names
    ]


def known_models(node: Node) -> dict[str, str]:
    """Built-in CPU models of the node's qemu-server generation -> vendor (x86-64-vN: default)."""
    qemu_server = tuple(int(x) for x in re.findall(r"\d+", node.packages.get("qemu-server", "")))
    return {**x86_vendors(qemu_server or None), **dict.fromkeys(BUILTIN_MODELS, "default")}


@handles("GET", "/nodes/{node}/capabilities/qemu/cpu")
def cpu_models(ctx: Ctx) -> Any:
    models = known_models(ctx.node)
    return [{"name": n, "vendor": v, "custom": 0} for n, v in sorted(models.items())]


#: QEMU releases whose versioned machine types a build keeps (2.3 is the oldest it offers).
_QEMU_RELEASES = (
    *((2, m) for m in range(3, 13)),
    *((major, m) for major in range(3, 11) for m in range(3) if (major, m) != (3, 2)),
    (11, 0),
)


@handles("GET", "/nodes/{node}/capabilities/qemu/machines")
def machines(ctx: Ctx) -> Any:
    """Versioned machine types up to the node's QEMU, newest first."""
    major, minor = (int(x) for x in ctx.node.qemu_version.split(".")[:2])
    out = []
    for v_major, v_minor in sorted(_QEMU_RELEASES, reverse=True):
        if (v_major, v_minor) > (major, minor):
            continue
        version = f"{v_major}.{v_minor}"
        for kind, prefix in (("q35", "pc-q35"), ("i440fx", "pc-i440fx")):
            out.append({"id": f"{prefix}-{version}", "type": kind, "version": version})
    return out


# -- tasks ----------------------------------------------------------------------------------------


def new_task(
    cluster: Cluster,
    node: Node,
    kind: str,
    ident: str,
    user: str,
    finish: Any,
    *,
    seconds: float | None = None,
) -> Task:
    now = time.time()
    pid = cluster.next_pid()
    pstart = int(now * 100) & 0xFFFFFFF
    start = int(now)
    upid = f"UPID:{node.name}:{pid:08X}:{pstart:08X}:{start:08X}:{kind}:{ident}:{user}:"
    task = Task(
        upid=upid,
        node=node.name,
        type=kind,
        id=ident,
        user=user,
        starttime=start,
        pid=pid,
        pstart=pstart,
        ends=now + (cluster.task_seconds if seconds is None else seconds),
        finish=finish,
    )
    task.log.append(f"starting task {upid}")
    node.tasks[upid] = task
    cluster.running_tasks.append(task)
    return task


def _task(ctx: Ctx) -> Task:
    node = ctx.node
    upid = ctx.route.uri_params["upid"]
    if not _UPID.fullmatch(upid):
        raise ApiError(
            400, "Parameter verification failed.", {"upid": "unable to parse worker upid"}
        )
    task = node.tasks.get(upid)
    if task is None:
        raise ApiError(500, "no such task")
    return task


@handles("GET", "/nodes/{node}/tasks/{upid}/status")
def task_status(ctx: Ctx) -> Any:
    task = _task(ctx)
    out: dict[str, Any] = {
        "upid": task.upid,
        "node": task.node,
        "pid": task.pid,
        "pstart": task.pstart,
        "starttime": task.starttime,
        "type": task.type,
        "id": task.id,
        "user": task.user,
        "status": task.status,
    }
    if task.status == "stopped":  # a running task has no exitstatus key at all
        out["exitstatus"] = task.exitstatus
    return out


@handles("GET", "/nodes/{node}/tasks/{upid}/log")
def task_log(ctx: Ctx) -> Any:
    task = _task(ctx)
    start = ctx.integer("start", 0) or 0
    limit = ctx.integer("limit", 50) or 50
    lines = [{"n": i + 1, "t": t} for i, t in enumerate(task.log)]
    return Extra(lines[start : start + limit], {"total": len(lines)})


@handles("GET", "/nodes/{node}/tasks/{upid}")
def task_index(ctx: Ctx) -> Any:
    _task(ctx)
    return index("log", "status")


def _task_list_entry(task: Task) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "upid": task.upid,
        "node": task.node,
        "pid": task.pid,
        "pstart": task.pstart,
        "starttime": task.starttime,
        "type": task.type,
        "id": task.id,
        "user": task.user,
    }
    if task.status == "stopped":  # in the list, `status` holds the exit text
        entry["status"] = task.exitstatus
        entry["endtime"] = task.endtime
    return entry


@handles("GET", "/nodes/{node}/tasks")
def node_tasks(ctx: Ctx) -> Any:
    node = ctx.node
    vmid = ctx.text("vmid")
    tasks = sorted(node.tasks.values(), key=lambda t: (t.starttime, t.pid), reverse=True)
    if vmid is not None:
        tasks = [t for t in tasks if t.id == vmid]
    if ctx.text("source", "archive") == "active":
        tasks = [t for t in tasks if t.status == "running"]
    limit = ctx.integer("limit", 50) or 50
    start = ctx.integer("start", 0) or 0
    return Extra([_task_list_entry(t) for t in tasks[start : start + limit]], {"total": len(tasks)})


@handles("GET", "/cluster/tasks")
def cluster_tasks(ctx: Ctx) -> Any:
    tasks = [t for n in ctx.cluster.nodes.values() for t in n.tasks.values()]
    tasks.sort(key=lambda t: (t.starttime, t.pid), reverse=True)
    return [_task_list_entry(t) for t in tasks]
