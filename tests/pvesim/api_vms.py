"""VM endpoints: list, config (read, update with digest), pending, status, power tasks, rrd."""

from __future__ import annotations

import re
import time
from typing import Any

from nestctl.vm.cpumodels import DEPRECATED_ALIASES
from tests.pvesim.api_nodes import _memory_bytes, known_models, new_task
from tests.pvesim.cluster import Node, Vm
from tests.pvesim.handlers import ApiError, Ctx, Handler, handles, index, param_error, typed

CONFIG = "/nodes/{node}/qemu/{vmid}/config"
_NOT_CHANGES = {"node", "vmid", "digest", "delete", "revert", "skiplock", "background_delay"}

# check_vm_modify_config_perm (API2/Qemu.pm): which privilege each option needs.
_CPU = {"cores", "cpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus", "affinity"}
_MEMORY = {"memory", "balloon", "shares", "allow-ksm"}
_HWTYPE = {
    "acpi",
    "hotplug",
    "kvm",
    "machine",
    "scsihw",
    "smbios1",
    "tablet",
    "vga",
    "watchdog",
    "audio0",
    "rng0",
    "amd-sev",
    "intel-tdx",
}
_OPTIONS = {
    "agent",
    "autostart",
    "bios",
    "description",
    "keyboard",
    "localtime",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "onboot",
    "ostype",
    "protection",
    "reboot",
    "startdate",
    "startup",
    "tdf",
    "template",
    "tags",
    "spice_enhancements",
    "arch",
    "hookscript",
}
_DISK_OPTS = {"boot", "bootdisk", "vmstatestorage", "efidisk0", "tpmstate0"}
_CLOUDINIT = {
    "cicustom",
    "cipassword",
    "citype",
    "ciuser",
    "ciupgrade",
    "nameserver",
    "searchdomain",
    "sshkeys",
}
_DISK_RE = re.compile(r"(ide|sata|scsi|virtio|unused)\d+")
# Options qemu-server changes on a running VM at once (vmconfig_hotplug_pending's fast plug).
_FAST_PLUG = {
    "description",
    "hookscript",
    "lock",
    "name",
    "onboot",
    "protection",
    "shares",
    "startup",
    "tags",
    "vmstatestorage",
}


# Flags a VM's own `cpu:` may carry (CPUConfig.pm); custom models may use any (reference §2.2).
_VM_FLAGS_8 = ("pcid", "spec-ctrl", "ibpb", "ssbd", "virt-ssbd", "amd-ssbd", "amd-no-ssb",
               "pdpe1gb", "md-clear", "hv-tlbflush", "hv-evmcs", "aes")  # fmt: skip
_VM_FLAGS_9_1 = tuple(sorted((*_VM_FLAGS_8, "nested-virt")))


def _cpu_problem(value: str, node: Node) -> str | None:
    """validate_vm_cpu_conf: the model must exist, flags must be whitelisted (per version)."""
    parts: dict[str, str] = {}
    for part in filter(None, value.split(",")):
        key, sep, val = part.partition("=")
        parts[key if sep else "cputype"] = val if sep else key
    model = parts.get("cputype", "kvm64")
    models = known_models(node)
    if "reported-model" in parts:
        return "Property 'reported-model' not allowed in VM-specific CPU config."
    if model.startswith("custom-"):
        return f"Custom cputype '{model[7:]}' not found"
    if model not in models and model not in DEPRECATED_ALIASES:
        return f"Built-in cputype '{model}' is not defined (missing 'custom-' prefix?)"
    allowed = _VM_FLAGS_9_1 if node.major_minor >= (9, 1) else _VM_FLAGS_8
    flags = [f[1:] for f in parts.get("flags", "").split(";") if f]
    if any(f not in allowed for f in flags):
        return f"VM-specific CPU flags must be a subset of: {', '.join(sorted(allowed))}"
    return None


def _privilege_for(key: str) -> str | None:
    """None: only root@pam (args, lock, and options nobody else may set)."""
    if key in _CPU or re.fullmatch(r"numa\d+", key):
        return "VM.Config.CPU"
    if key in _MEMORY:
        return "VM.Config.Memory"
    if key in _HWTYPE or re.fullmatch(r"(usb|serial|parallel)\d+", key):
        return "VM.Config.HWType"
    if key in _OPTIONS:
        return "VM.Config.Options"
    if key in _DISK_OPTS or _DISK_RE.fullmatch(key):
        return "VM.Config.CDROM" if key == "ide2" else "VM.Config.Disk"
    if re.fullmatch(r"net\d+", key):
        return "VM.Config.Network"
    if key in _CLOUDINIT or re.fullmatch(r"ipconfig\d+", key):
        return "VM.Config.Cloudinit"
    if key == "freeze":
        return "VM.PowerMgmt"
    return None


def _config_props(ctx: Ctx) -> dict[str, Any]:
    return dict(ctx.schema.returns(CONFIG).get("properties", {}))


@handles("GET", "/nodes/{node}/qemu")
def list_vms(ctx: Ctx) -> Any:
    node = ctx.node
    full = ctx.flag("full")
    out = []
    for vm in sorted(node.vms.values(), key=lambda v: v.vmid):
        if not ctx.users.privileges(ctx.who, f"/vms/{vm.vmid}") & {"VM.Audit"}:
            continue
        out.append(_vm_status(vm, node, full=full, listing=True))
    return out


def _vm_status(vm: Vm, node: Node, *, full: bool, listing: bool = False) -> dict[str, Any]:
    conf = vm.conf.main
    old = node.major_minor < (7, 0)
    status: dict[str, Any] = {
        "vmid": str(vm.vmid) if old else vm.vmid,  # PVE 6.2 sends vmid (and pid) as strings
        "name": conf.get("name", f"VM {vm.vmid}"),
        "status": "running" if vm.running else "stopped",
        "cpus": int(conf.get("cores", "1")) * int(conf.get("sockets", "1")),
        "maxmem": _memory_bytes(conf),
        "mem": _memory_bytes(conf) // 3 if vm.running else 0,
        "maxdisk": 34_359_738_368,
        "disk": 0,
        "cpu": 0.0123 if vm.running else 0,
        "uptime": int(time.time() - vm.started) if vm.running else 0,
        "netin": 123_456 if vm.running else 0,
        "netout": 65_432 if vm.running else 0,
        "diskread": 1_048_576 if vm.running else 0,
        "diskwrite": 524_288 if vm.running else 0,
    }
    if old:
        status["template"] = "1" if conf.get("template") == "1" else ""
        status["pid"] = str(vm.pid) if vm.running else None
    elif vm.running:
        status["pid"] = vm.pid
    if "template" in conf and not old:
        status["template"] = 1 if conf["template"] == "1" else 0
    if "lock" in conf:
        status["lock"] = conf["lock"]
    if "tags" in conf:
        status["tags"] = conf["tags"]
    if node.major_minor >= (9, 0) and not listing:
        status["memhost"] = status["mem"]
        for key in ("cpu", "io", "memory"):
            status[f"pressure{key}some"] = 0
            status[f"pressure{key}full"] = 0
    if full or not listing:
        status["qmpstatus"] = "paused" if vm.status == "paused" else status["status"]
        if vm.running and not old:
            status["running-machine"] = vm.running_machine
            status["running-qemu"] = node.qemu_version
    return status


@handles("GET", "/nodes/{node}/qemu/{vmid}")
def vm_index(ctx: Ctx) -> Any:
    _ = ctx.vm
    return index("config", "pending", "status", "agent", "firewall", "rrddata", key="subdir")


@handles("GET", "/nodes/{node}/qemu/{vmid}/status")
def vm_status_index(ctx: Ctx) -> Any:
    _ = ctx.vm
    actions = ("current", "start", "stop", "reset", "shutdown", "suspend", "reboot", "resume")
    return index(*actions, key="subdir")


@handles("GET", "/nodes/{node}/qemu/{vmid}/status/current")
def vm_current(ctx: Ctx) -> Any:
    vm, node = ctx.vm, ctx.node
    status = _vm_status(vm, node, full=True)
    status["ha"] = {"managed": 0}
    if vm.running and node.major_minor < (7, 0):  # PVE 6.2: NIC counters as strings
        status["nics"] = {f"tap{vm.vmid}i0": {"netin": "123456", "netout": "65432"}}
    if vm.conf.enabled("agent"):  # 1 whenever the config enables it, even when stopped
        status["agent"] = 1
    if node.major_minor >= (8, 2):
        status["clipboard"] = None
        if vm.running:
            status["proxmox-support"] = {
                "backup-fleecing": True,
                "pbs-dirty-bitmap": True,
                "pbs-library-version": "1.5.2",
                "query-bitmap-info": True,
            }
    return status


@handles("GET", CONFIG)
def get_config(ctx: Ctx) -> Any:
    vm = ctx.vm
    props = _config_props(ctx)
    snapshot = ctx.text("snapshot")
    if snapshot is not None:
        values = vm.conf.sections.get(snapshot)
        if values is None:
            raise ApiError(500, f"snapshot '{snapshot}' does not exist")
    else:
        values = vm.conf.main if ctx.flag("current") else vm.conf.effective()
    out = {k: typed(props, k, v) for k, v in values.items()}
    if "cipassword" in out:
        out["cipassword"] = "**********"
    out["digest"] = vm.conf.digest
    return out


@handles("GET", "/nodes/{node}/qemu/{vmid}/pending")
def get_pending(ctx: Ctx) -> Any:
    conf = ctx.vm.conf
    props = _config_props(ctx)
    out = []
    for key in sorted(set(conf.main) | set(conf.pending) | set(conf.pending_delete)):
        entry: dict[str, Any] = {"key": key}
        if key in conf.main:
            entry["value"] = typed(props, key, conf.main[key])
        if key in conf.pending:
            entry["pending"] = typed(props, key, conf.pending[key])
        if key in conf.pending_delete:
            entry["delete"] = 2 if conf.pending_delete[key] else 1
        out.append(entry)
    return out


def _update_config(ctx: Ctx) -> None:
    vm = ctx.vm
    conf = vm.conf
    changes = {k: ctx.text(k) or "" for k in ctx.params if k not in _NOT_CHANGES}
    deletes = [k for k in re.split(r"[,;\s]+", ctx.text("delete") or "") if k]
    reverts = [k for k in re.split(r"[,;\s]+", ctx.text("revert") or "") if k]
    for key in [*changes, *deletes, *reverts]:
        need = _privilege_for(key.lstrip("!"))
        if need is None:
            if ctx.who.userid != "root@pam" or ctx.who.tokenid is not None:
                raise ApiError(500, f"only root can set '{key}' config")
        else:
            ctx.require(f"/vms/{vm.vmid}", need)
    cpu = changes.get("cpu")
    problem = _cpu_problem(cpu, ctx.node) if cpu is not None else None
    if problem is not None:
        raise param_error({"cpu": f"invalid format - {problem}\n"})
    both = set(changes) & {k.lstrip("!") for k in deletes}
    if both:
        key = sorted(both)[0]
        raise ApiError(
            400, "Parameter verification failed.", {"delete": f"conflicting options '{key}'"}
        )
    digest = ctx.text("digest")
    with ctx.cluster.lock:
        if digest is not None and digest != conf.digest:
            raise ApiError(
                500, "detected modified configuration - file changed by other user? Try again."
            )
        if "lock" in conf.main and not ctx.flag("skiplock"):
            raise ApiError(500, f"VM is locked ({conf.main['lock']})")
        for key in reverts:
            conf.pending.pop(key, None)
            conf.pending_delete.pop(key, None)
        for item in deletes:
            key = item.lstrip("!")
            conf.pending.pop(key, None)
            if key in conf.main:
                conf.pending_delete[key] = item.startswith("!")
        for key, value in changes.items():
            conf.pending[key] = value
            conf.pending_delete.pop(key, None)
        if vm.running:
            _hotplug(vm)
        else:
            conf.apply_pending()
        conf.touch()


def _hotplug(vm: Vm) -> None:
    """On a running VM only what qemu-server hot-plugs leaves [PENDING] at once."""
    conf = vm.conf
    hotplug = conf.main.get("hotplug", "network,disk,usb")
    features = {"network", "disk", "usb"} if hotplug == "1" else set(hotplug.split(","))
    if hotplug == "0":
        features = set()

    def live(key: str) -> bool:
        return (
            key in _FAST_PLUG
            or (re.fullmatch(r"net\d+", key) is not None and "network" in features)
            or (re.fullmatch(r"usb\d+", key) is not None and "usb" in features)
        )

    for key in [k for k in conf.pending if live(k)]:
        conf.main[key] = conf.pending.pop(key)
    for key in [k for k in conf.pending_delete if live(k)]:
        conf.main.pop(key, None)
        conf.pending_delete.pop(key)


@handles("PUT", CONFIG)
def put_config(ctx: Ctx) -> Any:
    _update_config(ctx)
    return None


@handles("POST", CONFIG)
def post_config(ctx: Ctx) -> Any:
    _update_config(ctx)
    vm = ctx.vm
    task = new_task(ctx.cluster, ctx.node, "qmconfig", str(vm.vmid), ctx.who.name, None, seconds=0)
    task.log.append(
        f"update VM {vm.vmid}: "
        + " ".join(f"-{k} {ctx.text(k)}" for k in ctx.params if k not in ("node", "vmid"))
    )
    return task.upid


# -- power: each action is a task that changes the state when it ends -----------------------------


def _machine_for(vm: Vm, node: Node) -> str:
    """What `running-machine` shows after a start: the pinned type or the newest one, +pve0."""
    qemu = ".".join(node.qemu_version.split(".")[:2])
    machine = vm.conf.main.get("machine", "").split(",")[0]
    m = re.fullmatch(r"(pc|q35|pc-i440fx|pc-q35)(?:-(\d+\.\d+))?(\+pve\d+)?", machine)
    if not machine or m is None:
        return f"pc-i440fx-{qemu}+pve0"
    family = "pc-q35" if "q35" in m.group(1) else "pc-i440fx"
    return f"{family}-{m.group(2) or qemu}{m.group(3) or '+pve0'}"


def _start(vm: Vm, node: Node, ctx: Ctx) -> str | None:
    """A cold start: pending changes apply, then QEMU starts (or the -cpu cannot be built)."""
    vm.conf.apply_pending()
    cpu = vm.conf.main.get("cpu")
    problem = _cpu_problem(cpu, node) if cpu is not None else None
    if problem is not None:  # get_cpu_options parses it again and dies with the same text
        vm.status, vm.pid, vm.running_machine = "stopped", None, None
        return problem
    vm.status, vm.pid, vm.started = "running", ctx.cluster.next_pid(), time.time()
    vm.running_machine = _machine_for(vm, node)
    vm.running_cpu = vm.conf.main.get("cpu", "kvm64")
    return None


def _power(ctx: Ctx, action: str) -> Any:
    vm, node = ctx.vm, ctx.node
    skiplock = ctx.flag("skiplock")

    def finish() -> str | None:
        if action in vm.task_errors:  # injected: `vm.task_errors["start"] = "start failed: ..."`
            return vm.task_errors[action]
        if "lock" in vm.conf.main and not skiplock:
            return f"VM is locked ({vm.conf.main['lock']})"
        if action == "start":
            if vm.running:
                return f"VM {vm.vmid} already running"
            return _start(vm, node, ctx)
        if not vm.running:
            return f"VM {vm.vmid} not running"
        if action in ("stop", "shutdown"):
            vm.status, vm.pid, vm.running_machine = "stopped", None, None
        elif action == "reboot":  # a cold restart: pending changes apply, new QEMU process
            return _start(vm, node, ctx)
        elif action == "suspend":
            vm.status = "paused"
        elif action == "resume":
            vm.status = "running"
        return None

    kind = {
        "start": "qmstart",
        "stop": "qmstop",
        "shutdown": "qmshutdown",
        "reboot": "qmreboot",
        "reset": "qmreset",
        "suspend": "qmsuspend",
        "resume": "qmresume",
    }[action]
    task = new_task(ctx.cluster, node, kind, str(vm.vmid), ctx.who.name, finish)
    return task.upid


def _power_handler(action: str) -> Handler:
    return lambda ctx: _power(ctx, action)


for _action in ("start", "stop", "shutdown", "reboot", "reset", "suspend", "resume"):
    handles("POST", f"/nodes/{{node}}/qemu/{{vmid}}/status/{_action}")(_power_handler(_action))


@handles("GET", "/nodes/{node}/qemu/{vmid}/rrddata")
def rrddata(ctx: Ctx) -> Any:
    vm = ctx.vm
    step = {"hour": 60, "day": 1800, "week": 10800, "month": 43200, "year": 604800}[
        ctx.text("timeframe") or "hour"
    ]
    now = int(time.time()) // step * step
    out: list[dict[str, Any]] = []
    for i in range(70):
        t = now - (69 - i) * step
        sample: dict[str, Any] = {"time": t}
        if vm.running and t >= vm.started:  # missing samples are left out, never null
            sample.update(
                cpu=0.0123,
                maxcpu=int(vm.conf.main.get("cores", "1")),
                mem=_memory_bytes(vm.conf.main) // 3,
                maxmem=_memory_bytes(vm.conf.main),
                netin=1024.5,
                netout=512.25,
                diskread=0,
                diskwrite=2048.0,
            )
        out.append(sample)
    return out


# Snapshots: api_snapshots.py.
