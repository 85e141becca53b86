"""Guest agent endpoints: ping, get-osinfo and friends, file-read, exec + exec-status."""

from __future__ import annotations

import time
from typing import Any

from tests.pvesim.cluster import ExecAnswer, Guest
from tests.pvesim.handlers import ApiError, Ctx, Handler, handles, index

_BASE = "/nodes/{node}/qemu/{vmid}/agent"
_MAX_READ = 16 * 1024 * 1024


def _guest(ctx: Ctx) -> Guest:
    """The checks qemu-server's agent_cmd makes before it talks to the agent, in its order."""
    vm = ctx.vm
    if ctx.node.major_minor < (9, 0):  # before PVE 9 every agent call needed VM.Monitor
        ctx.require(f"/vms/{vm.vmid}", "VM.Monitor")
    if not vm.running:
        raise ApiError(500, f"VM {vm.vmid} is not running")
    if not vm.conf.enabled("agent"):
        raise ApiError(500, "No QEMU guest agent configured")
    if vm.guest is None or not vm.guest.running:
        raise ApiError(500, "QEMU guest agent is not running")
    return vm.guest


def _info(ctx: Ctx, command: str) -> Any:
    guest = _guest(ctx)
    if command == "ping":
        return {"result": {}}
    if command == "get-osinfo":
        return {"result": guest.osinfo}
    if command == "get-host-name":
        return {"result": {"host-name": guest.osinfo.get("host-name", f"vm{ctx.vm.vmid}")}}
    if command == "info":
        names = [
            "guest-ping",
            "guest-get-osinfo",
            "guest-file-read",
            "guest-exec",
            "guest-exec-status",
        ]
        return {
            "result": {
                "version": "8.2.2",
                "supported_commands": [{"name": n, "enabled": True} for n in names],
            }
        }
    if command == "get-vcpus":
        cores = int(ctx.vm.conf.main.get("cores", "1"))
        return {
            "result": [
                {"logical-id": i, "online": True, "can-offline": i > 0} for i in range(cores)
            ]
        }
    if command == "network-get-interfaces":
        return {
            "result": [
                {
                    "name": "lo",
                    "ip-addresses": [
                        {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}
                    ],
                }
            ]
        }
    raise ApiError(500, f"Agent error: The command {command} has not been found")


def _info_handler(command: str) -> Handler:
    return lambda ctx: _info(ctx, command)


for _command in ("get-osinfo", "get-host-name", "info", "get-vcpus", "network-get-interfaces"):
    handles("GET", f"{_BASE}/{_command}")(_info_handler(_command))


@handles("POST", f"{_BASE}/ping")
def ping(ctx: Ctx) -> Any:
    return _info(ctx, "ping")


@handles("POST", _BASE)
def agent_command(ctx: Ctx) -> Any:
    return _info(ctx, ctx.text("command") or "")


@handles("GET", _BASE)
def agent_index(ctx: Ctx) -> Any:
    _ = ctx.vm
    return index("exec", "exec-status", "file-read", "get-osinfo", "info", "ping")


@handles("GET", f"{_BASE}/file-read")
def file_read(ctx: Ctx) -> Any:
    guest = _guest(ctx)
    path = ctx.text("file") or ""
    data = guest.read(path)
    if data is None:
        raise ApiError(500, f"Agent error: Failed to open file '{path}': No such file or directory")
    count = min(ctx.integer("count", _MAX_READ) or _MAX_READ, _MAX_READ)
    offset = ctx.integer("offset", 0) or 0
    chunk = data[offset : offset + count]
    out: dict[str, Any] = {"content": chunk.decode("utf-8", errors="replace")}
    if len(data) - offset > count:
        out["truncated"] = 1
    return out


@handles("POST", f"{_BASE}/exec")
def agent_exec(ctx: Ctx) -> Any:
    guest = _guest(ctx)
    raw = ctx.params.get("command", [])
    command = raw if isinstance(raw, list) else [raw]
    answer: ExecAnswer | None = next((a for a in guest.exec_answers if a.command == command), None)
    if answer is None:
        raise ApiError(
            500,
            "Agent error: Guest agent command failed, error was 'Failed to execute child process "
            f"\u201c{command[0] if command else ''}\u201d (No such file or directory)'",
        )
    pid = ctx.cluster.next_pid()
    guest.exec_runs[pid] = (answer, time.time() + guest.exec_seconds)
    return {"pid": pid}


@handles("GET", f"{_BASE}/exec-status")
def exec_status(ctx: Ctx) -> Any:
    guest = _guest(ctx)
    pid = ctx.integer("pid")
    run = guest.exec_runs.get(pid or -1)
    if run is None:
        raise ApiError(500, "Agent error: Invalid parameter 'pid'")
    answer, done_at = run
    if time.time() < done_at or answer is None:
        return {"exited": 0}
    del guest.exec_runs[pid or -1]  # qemu-ga forgets a process once it reported its end
    out: dict[str, Any] = {"exited": 1, "exitcode": answer.exitcode}
    if answer.out_data:
        out["out-data"] = answer.out_data
    if answer.err_data:
        out["err-data"] = answer.err_data
    return out
