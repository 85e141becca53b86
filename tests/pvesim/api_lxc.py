"""Container (LXC) endpoints: list, status, power tasks, config with digest and pending, rrd.

As pve-container answers them (commit 94f5585): src/PVE/API2/LXC.pm (list, rrddata),
API2/LXC/Status.pm (power: "CT 200 already running" / "not running" are refused before the task
starts; `suspend` is a CRIU checkpoint that stops the CT, `resume` restores it and is refused on
a running CT), API2/LXC/Config.pm (PUT: lock, then digest, then the privilege of each option as
check_ct_modify_config_perm decides; a running CT keeps most changes [pve:pending] until its next
start, LXC/Config.pm vmconfig_hotplug_pending).
"""

from __future__ import annotations

import re
import time
from typing import Any

from tests.pvesim.api_nodes import new_task
from tests.pvesim.cluster import Ct, Node
from tests.pvesim.ctconf import CtConf
from tests.pvesim.handlers import ApiError, Ctx, Handler, handles, index, param_error, typed

CONFIG = "/nodes/{node}/lxc/{vmid}/config"
_NOT_CHANGES = {"node", "vmid", "digest", "delete", "revert"}
# LXC/Config.pm $LXC_FASTPLUG_OPTIONS, and what vmconfig_hotplug_pending hot-plugs on top.
_FAST_PLUG = {"description", "onboot", "startup", "protection", "hostname", "hookscript", "cores",
              "tags", "lock"}  # fmt: skip
_HOT_PLUG = re.compile(r"cpulimit|cpuunits|memory|swap|net\d+")


def memory_bytes(conf: dict[str, str]) -> int:
    raw = conf.get("memory", "512")  # pve-container's default
    return (int(raw) if raw.isdigit() else 512) * 1024 * 1024


def _swap_bytes(conf: dict[str, str]) -> int:
    raw = conf.get("swap", "512")
    return (int(raw) if raw.isdigit() else 512) * 1024 * 1024


def _cpus(ct: Ct, node: Node) -> int:
    raw = ct.conf.main.get("cores", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else node.cpus


def ct_name(ct: Ct) -> str:
    return ct.conf.main.get("hostname", f"CT{ct.vmid}")


def _numbers(ct: Ct, node: Node) -> dict[str, Any]:
    conf = ct.conf.main
    up = ct.running
    return {
        "cpu": 0.0051 if up else 0,
        "maxmem": memory_bytes(conf),
        "mem": memory_bytes(conf) // 4 if up else 0,
        "maxswap": _swap_bytes(conf),
        "maxdisk": 8_589_934_592,
        "disk": 1_073_741_824 if up else 0,
        "uptime": int(time.time() - ct.started) if up else 0,
        "netin": 23_456 if up else 0,
        "netout": 5_432 if up else 0,
        "diskread": 204_800 if up else 0,
        "diskwrite": 102_400 if up else 0,
    }


def ct_resource(ct: Ct, node: Node) -> dict[str, Any]:
    """The `/cluster/resources` entry (type lxc, id lxc/<vmid>)."""
    conf = ct.conf.main
    entry: dict[str, Any] = {
        "id": f"lxc/{ct.vmid}",
        "type": "lxc",
        "vmid": ct.vmid,
        "node": ct.node,
        "name": ct_name(ct),
        "status": ("running" if ct.running else "stopped") if node.online else "unknown",
        "template": 1 if conf.get("template") == "1" else 0,
        "maxcpu": _cpus(ct, node),
        **_numbers(ct, node),
    }
    entry.pop("maxswap")
    if "tags" in conf:
        entry["tags"] = conf["tags"]
    if "lock" in conf:
        entry["lock"] = conf["lock"]
    if not node.online:
        for key in ("mem", "cpu", "uptime", "netin", "netout", "diskread", "diskwrite"):
            entry.pop(key)
    return entry


def _status(ct: Ct, node: Node) -> dict[str, Any]:
    conf = ct.conf.main
    out: dict[str, Any] = {
        "vmid": ct.vmid,
        "name": ct_name(ct),
        "status": "running" if ct.running else "stopped",
        "cpus": _cpus(ct, node),
        "type": "lxc",
        **_numbers(ct, node),
    }
    if conf.get("template") == "1":
        out["template"] = 1
    if "lock" in conf:
        out["lock"] = conf["lock"]
    if "tags" in conf:
        out["tags"] = conf["tags"]
    return out


@handles("GET", "/nodes/{node}/lxc")
def list_cts(ctx: Ctx) -> Any:
    node = ctx.node
    return [
        _status(ct, node)
        for ct in sorted(node.cts.values(), key=lambda c: c.vmid)
        if ctx.users.privileges(ctx.who, f"/vms/{ct.vmid}") & {"VM.Audit"}
    ]


@handles("GET", "/nodes/{node}/lxc/{vmid}")
def ct_index(ctx: Ctx) -> Any:
    _ = ctx.ct
    names = ("config", "pending", "status", "firewall", "rrddata", "snapshot")
    return index(*names, key="subdir")


@handles("GET", "/nodes/{node}/lxc/{vmid}/status")
def ct_status_index(ctx: Ctx) -> Any:
    _ = ctx.ct
    actions = ("current", "start", "stop", "shutdown", "reboot", "suspend", "resume")
    return index(*actions, key="subdir")


@handles("GET", "/nodes/{node}/lxc/{vmid}/status/current")
def ct_current(ctx: Ctx) -> Any:
    ct, node = ctx.ct, ctx.node
    out = _status(ct, node)
    out["ha"] = {"managed": 0}
    if node.major_minor >= (9, 0) and ct.running:
        for key in ("cpu", "io", "memory"):
            out[f"pressure{key}some"] = 0
            if key != "cpu":
                out[f"pressure{key}full"] = 0
    return out


def _config_props(ctx: Ctx) -> dict[str, Any]:
    return dict(ctx.schema.returns(CONFIG).get("properties", {}))


@handles("GET", CONFIG)
def get_config(ctx: Ctx) -> Any:
    ct = ctx.ct
    conf = ct.conf
    props = _config_props(ctx)
    snapshot = ctx.text("snapshot")
    if snapshot is not None:
        section = conf.sections.get(snapshot)
        if section is None:
            raise ApiError(500, f"snapshot '{snapshot}' does not exist")
        values, lxc = section.values, section.lxc
    else:
        values = conf.main if ctx.flag("current") else conf.effective()
        lxc = conf.lxc
    out: dict[str, Any] = {k: typed(props, k, v) for k, v in values.items()}
    if lxc:
        out["lxc"] = [[k, v] for k, v in lxc]
    out["digest"] = conf.digest
    return out


@handles("GET", "/nodes/{node}/lxc/{vmid}/pending")
def get_pending(ctx: Ctx) -> Any:
    conf = ctx.ct.conf
    out = []
    for key in sorted(set(conf.main) | set(conf.pending) | set(conf.pending_delete)):
        entry: dict[str, Any] = {"key": key}
        if key in conf.main:
            entry["value"] = conf.main[key]
        if key in conf.pending:
            entry["pending"] = conf.pending[key]
        if key in conf.pending_delete:
            entry["delete"] = 2 if conf.pending_delete[key] else 1
        out.append(entry)
    return out


def _features(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, value.split(",")):
        key, _, val = part.partition("=")
        out[key] = val
    return out


def _check_perm(ctx: Ctx, ct: Ct, key: str, new: str | None) -> None:
    """LXC.pm check_ct_modify_config_perm (root@pam, not a token of it, passes everything)."""
    if ctx.who.userid == "root@pam" and ctx.who.tokenid is None:
        return
    path = f"/vms/{ct.vmid}"
    if key in ("cores", "cpuunits", "cpulimit"):
        ctx.require(path, "VM.Config.CPU")
    elif key == "rootfs" or re.fullmatch(r"mp\d+", key):
        ctx.require(path, "VM.Config.Disk")
    elif key in ("memory", "swap"):
        ctx.require(path, "VM.Config.Memory")
    elif re.fullmatch(r"net\d+", key) or key in ("nameserver", "searchdomain", "hostname"):
        ctx.require(path, "VM.Config.Network")
    elif re.fullmatch(r"dev\d+", key):
        raise ApiError(
            403,
            "Permission check failed (configuring device passthrough is only allowed for root@pam)",
        )
    elif key == "features":
        _check_features_perm(ctx, ct, new)
    elif key == "hookscript":
        raise ApiError(
            403, "Permission check failed (changing the hookscript is only allowed for root@pam)"
        )
    else:
        ctx.require(path, "VM.Config.Options")


def _check_features_perm(ctx: Ctx, ct: Ct, new: str | None) -> None:
    if ct.conf.main.get("unprivileged", "0") not in ("1", "on", "yes", "true"):
        raise ApiError(
            403,
            "Permission check failed (changing feature flags for privileged container is only "
            "allowed for root@pam)",
        )
    old = _features(ct.conf.main.get("features", ""))
    changed = old if new is None else _features(new)
    if new is not None and ct.conf.main.get("features"):
        keys = {k for k in old.keys() | changed.keys() if old.get(k, "") != changed.get(k, "")}
    else:
        keys = set(changed)
    if keys - {"nesting"}:
        raise ApiError(
            403,
            "Permission check failed (changing feature flags (except nesting) is only allowed "
            "for root@pam)",
        )
    if keys:
        ctx.require(f"/vms/{ct.vmid}", "VM.Allocate")


@handles("PUT", CONFIG)
def put_config(ctx: Ctx) -> Any:
    ct = ctx.ct
    conf = ct.conf
    changes = {k: ctx.text(k) or "" for k in ctx.params if k not in _NOT_CHANGES}
    deletes = [k for k in re.split(r"[,;\s]+", ctx.text("delete") or "") if k]
    reverts = [k for k in re.split(r"[,;\s]+", ctx.text("revert") or "") if k]
    if not (changes or deletes or reverts):
        raise ApiError(500, "no options specified")
    with ctx.cluster.lock:
        if "lock" in conf.main:
            raise ApiError(500, f"CT is locked ({conf.main['lock']})")
        digest = ctx.text("digest")
        if digest is not None and digest != conf.digest:
            raise ApiError(
                500, "detected modified configuration - file changed by other user? Try again."
            )
        for key in [*deletes, *reverts]:
            _check_perm(ctx, ct, key, None)
        for key, value in changes.items():
            _check_perm(ctx, ct, key, value)
        for key in deletes:
            if key in changes:
                raise param_error(
                    {"delete": f"you can't use '-{key}' and -delete {key}' at the same time"}
                )
        if "unprivileged" in changes or "unprivileged" in deletes:
            raise param_error({"unprivileged": "unable to modify read-only option: 'unprivileged'"})
        _update(conf, ct.running, changes, deletes, reverts)
    return None


def _update(
    conf: CtConf, running: bool, changes: dict[str, str], deletes: list[str], reverts: list[str]
) -> None:
    for key in reverts:
        conf.pending.pop(key, None)
        conf.pending_delete.pop(key, None)
    for key in deletes:
        if key in conf.main or key in conf.pending:
            conf.pending.pop(key, None)
            conf.pending_delete[key] = False
    for key, value in changes.items():
        conf.pending[key] = value
        conf.pending_delete.pop(key, None)
    if running:
        for key in [k for k in conf.pending if k in _FAST_PLUG or _HOT_PLUG.fullmatch(k)]:
            conf.main[key] = conf.pending.pop(key)
        for key in [k for k in conf.pending_delete if k in _FAST_PLUG or _HOT_PLUG.fullmatch(k)]:
            conf.main.pop(key, None)
            conf.pending_delete.pop(key)
        conf.touch()
    else:
        conf.apply_pending()


# -- power: each action is a task; some refusals come before the task (Status.pm) ----------------

_KIND = {
    "start": "vzstart",
    "stop": "vzstop",
    "shutdown": "vzshutdown",
    "reboot": "vzreboot",
    "suspend": "vzsuspend",
    "resume": "vzresume",
}


def _power(ctx: Ctx, action: str) -> Any:
    ct, node = ctx.ct, ctx.node
    skiplock = ctx.flag("skiplock")
    with ctx.cluster.lock:
        if action in ("start", "resume") and ct.running:
            raise ApiError(500, f"CT {ct.vmid} already running")
        if action in ("stop", "shutdown", "suspend") and not ct.running:
            raise ApiError(500, f"CT {ct.vmid} not running")
        if action == "reboot" and not ct.running:
            raise ApiError(500, f"VM {ct.vmid} not running")  # sic: Status.pm says VM here

    def finish() -> str | None:
        if action in ct.task_errors:
            return ct.task_errors[action]
        if "lock" in ct.conf.main and action == "reboot":
            # LXC.pm vm_reboot stops it (skiplock), then the start's pre-start hook refuses
            # the lock: the CT ends stopped.
            ct.status, ct.pid = "stopped", None
            return f"startup for container '{ct.vmid}' failed"
        if "lock" in ct.conf.main and not skiplock and action != "resume":
            return f"CT is locked ({ct.conf.main['lock']})"
        if action in ("start", "reboot"):
            if ct.conf.main.get("template") == "1":
                return "you can't start a CT if it's a template"
            ct.conf.apply_pending()  # a start applies [pve:pending]
            ct.status, ct.pid, ct.started = "running", ctx.cluster.next_pid(), time.time()
        elif action in ("stop", "shutdown"):
            ct.status, ct.pid = "stopped", None
        elif action == "suspend":
            ct.status, ct.pid = "suspended", None
        elif action == "resume":
            if ct.status != "suspended":
                return (
                    f"command 'lxc-checkpoint -n {ct.vmid} -r --foreground -D /var/lib/vz/dump' "
                    "failed: exit code 1"
                )
            ct.status, ct.pid = "running", ctx.cluster.next_pid()
        return None

    return new_task(ctx.cluster, node, _KIND[action], str(ct.vmid), ctx.who.name, finish).upid


def _power_handler(action: str) -> Handler:
    return lambda ctx: _power(ctx, action)


for _action in _KIND:
    handles("POST", f"/nodes/{{node}}/lxc/{{vmid}}/status/{_action}")(_power_handler(_action))


@handles("GET", "/nodes/{node}/lxc/{vmid}/rrddata")
def rrddata(ctx: Ctx) -> Any:
    ct, node = ctx.ct, ctx.node
    step = {"hour": 60, "day": 1800, "week": 10800, "month": 43200, "year": 604800}[
        ctx.text("timeframe") or "hour"
    ]
    now = int(time.time()) // step * step
    out: list[dict[str, Any]] = []
    for i in range(70):
        t = now - (69 - i) * step
        sample: dict[str, Any] = {"time": t}
        if ct.running and t >= ct.started:  # missing samples are left out, never null
            sample.update(
                cpu=0.0051,
                maxcpu=_cpus(ct, node),
                mem=memory_bytes(ct.conf.main) // 4,
                maxmem=memory_bytes(ct.conf.main),
                disk=1_073_741_824,
                maxdisk=8_589_934_592,
                netin=256.5,
                netout=128.25,
                diskread=0,
                diskwrite=512.0,
            )
        out.append(sample)
    return out


@handles("GET", "/nodes/{node}/lxc/{vmid}/snapshot")
def snapshots(ctx: Ctx) -> Any:
    ct = ctx.ct
    out: list[dict[str, Any]] = []
    for name, section in ct.conf.sections.items():
        entry: dict[str, Any] = {"name": name, "description": section.values.get("description", "")}
        if section.values.get("snaptime", "").isdigit():
            entry["snaptime"] = int(section.values["snaptime"])
        if "parent" in section.values:
            entry["parent"] = section.values["parent"]
        out.append(entry)
    out.append({"name": "current", "description": "You are here!", "running": int(ct.running)})
    return out
