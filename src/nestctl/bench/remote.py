"""Run the benchmarks inside a VM from its Proxmox host, through the QEMU guest agent.

guest-file-write copies the runner zip in, guest-exec runs it with the guest's python3, the result
file comes back with guest-file-read; the guest's copy is removed afterwards. The result is
labelled with the VM's chain: node, VMID, the running -cpu, and the host's own settings (its level,
EPT/NPT) that explain the guest's numbers.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Callable
from typing import Any

from nestctl.bench.results import ResultFileError, deeper_level, parse_result
from nestctl.bench.ship import runner_zip
from nestctl.guest.agent import AgentError, GuestAgent, GuestAgentError, agent_socket_path
from nestctl.machine import Host
from nestctl.parse import parse_uint

WRITE_CHUNK = 32 * 1024  # raw bytes per guest-file-write (base64 makes ~43 KiB of JSON)
#: Where a guest's python3 may live; the agent's PATH is often minimal (no /usr/bin at all).
PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3", "python3")
QUICK_TIMEOUT, FULL_TIMEOUT = 300.0, 900.0  # generous: guests may run under emulation

Progress = Callable[[str], None]


class RemoteBenchError(Exception):
    """The benchmark could not run in the guest; the message says why and what would help."""


def _exec_ok(agent: GuestAgent, path: str, args: list[str], timeout: float) -> str | None:
    try:
        res = agent.exec(path, args, timeout)
    except AgentError:
        return None  # the program does not exist in the guest
    if res.exitcode != 0:
        return None
    return res.stdout.decode("utf-8", errors="replace").strip()


def find_python(agent: GuestAgent) -> str:
    probe = ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    too_old = None
    for path in PYTHONS:
        out = _exec_ok(agent, path, probe, 60.0)
        if out is None:
            continue
        major, _, minor = out.partition(".")
        major_n, minor_n = parse_uint(major), parse_uint(minor)
        if major_n is not None and minor_n is not None and (major_n, minor_n) >= (3, 11):
            return path
        too_old = f"{path} is Python {out}"
    if too_old:
        raise RemoteBenchError(f"the guest's Python is too old ({too_old}; nestctl needs 3.11)")
    raise RemoteBenchError("no python3 in the guest (install python3 there)")


def write_file(agent: GuestAgent, path: str, data: bytes) -> None:
    """guest-file-open/write/close: the agent's way to put a file into the guest."""
    handle = agent.call("guest-file-open", {"path": path, "mode": "wb"})
    if not isinstance(handle, int):
        raise RemoteBenchError(f"guest-file-open {path}: unexpected reply {handle!r:.80}")
    try:
        for start in range(0, len(data), WRITE_CHUNK):
            chunk = base64.b64encode(data[start : start + WRITE_CHUNK]).decode()
            agent.call("guest-file-write", {"handle": handle, "buf-b64": chunk})
    finally:
        with contextlib.suppress(AgentError):
            agent.call("guest-file-close", {"handle": handle})


def _tail(data: bytes) -> str:
    lines = data.decode("utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def run_in_guest(agent: GuestAgent, *, quick: bool, progress: Progress | None = None) -> bytes:
    """Copy the runner in, run it, return the result file's bytes; the guest copy is removed."""
    if agent.osinfo().get("id") == "mswindows":
        raise RemoteBenchError("the benchmarks run in Linux guests only (this one is Windows)")
    python = find_python(agent)
    mkdtemp = "import tempfile; print(tempfile.mkdtemp(prefix='nestctl-bench-'))"
    workdir = _exec_ok(agent, python, ["-c", mkdtemp], 60.0)
    if not workdir:
        raise RemoteBenchError("could not create a scratch directory in the guest")
    try:
        if progress:
            progress("copying the runner in")
        pyz, out = f"{workdir}/nestctl-bench.pyz", f"{workdir}/result.json"
        write_file(agent, pyz, runner_zip())
        if progress:
            progress("running in the guest")
        args = [pyz, "-o", out, *(["--quick"] if quick else [])]
        res = agent.exec(python, args, QUICK_TIMEOUT if quick else FULL_TIMEOUT)
        if res.timed_out:
            raise RemoteBenchError("the benchmark did not finish in the guest in time")
        if res.exitcode != 0:
            raise RemoteBenchError(f"the benchmark failed in the guest: {_tail(res.stderr)}")
        return agent.read_file(out, 4 * 1024 * 1024)
    finally:
        rmtree = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
        with contextlib.suppress(GuestAgentError):
            agent.exec(python, ["-c", rmtree, workdir], 60.0)


_DISK_KEY = re.compile(r"(scsi|virtio|sata|ide)\d+", re.ASCII)
#: Proxmox's disk cache modes; only "unsafe" ignores the guest's flushes (fsync reaches no disk).
CACHE_DEFAULT = "none"


def disk_caches(conf: dict[str, str]) -> dict[str, str]:
    """disk -> cache mode of a VM config's disks (CD-ROMs left out; unset is Proxmox's "none")."""
    out: dict[str, str] = {}
    for key, value in sorted(conf.items()):
        if not _DISK_KEY.fullmatch(key):
            continue
        opts = dict(p.split("=", 1) for p in value.split(",")[1:] if "=" in p)
        if opts.get("media") == "cdrom" or value.split(",")[0] in ("none", "cdrom"):
            continue
        out[key] = opts.get("cache", CACHE_DEFAULT)
    return out


def chain_for(host: Host, vmid: int, host_where: dict[str, Any]) -> dict[str, Any]:
    """The VM's place in the chain, as the host sees it."""
    from nestctl.vm.config import load_vm_configs, local_node  # noqa: PLC0415 - only for --vm
    from nestctl.vm.running import check_running  # noqa: PLC0415

    run = check_running(host, vmid)
    conf = load_vm_configs(host, vmids=[vmid])[0]
    raw = host_where.get("ept_npt")
    ept: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "node": local_node(host),
        "vmid": vmid,
        "cpu": run.vm.cpu_arg if run.vm else None,
        "accel": "tcg" if run.vm and run.vm.accel_tcg else ("kvm" if run.vm else None),
        "running_check": run.reason,
        "host_level": host_where.get("level"),
        "host_hypervisor": host_where.get("hypervisor"),
        "host_cpu_model": host_where.get("cpu_model"),
        "host_ept_npt": ept.get("value"),
        "host_ept_npt_source": ept.get("source"),
        "disk_cache": disk_caches(conf.current()) if conf.readable else None,
        "via": "qemu-guest-agent",
    }


def bench_vm(
    host: Host,
    vmid: int,
    host_where: dict[str, Any],
    *,
    quick: bool,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The guest's result document, labelled with its chain. Raises RemoteBenchError."""
    path = agent_socket_path(host, vmid)
    try:
        with GuestAgent(path, timeout=10.0) as agent:
            data = run_in_guest(agent, quick=quick, progress=progress)
    except GuestAgentError as exc:
        raise RemoteBenchError(f"VM {vmid}: guest agent: {exc}") from exc
    except RemoteBenchError as exc:
        raise RemoteBenchError(f"VM {vmid}: {exc}") from exc
    try:
        doc = parse_result(data.decode("utf-8", errors="replace"), f"VM {vmid} result")
    except ResultFileError as exc:
        raise RemoteBenchError(str(exc)) from exc
    where = doc["where"]
    chain = chain_for(host, vmid, host_where)
    where["chain"] = chain
    where["level_inside"] = where.get("level")
    where["level"] = deeper_level(host_where.get("level")) or where.get("level")
    if chain["accel"] == "tcg" and where.get("accel") != "tcg":
        where["accel_evidence"] = [
            *where.get("accel_evidence", []),
            "the host runs this VM's QEMU with TCG",
        ]
        where["accel"] = "tcg"
    return doc


def running_vmids(host: Host) -> tuple[list[int], tuple[str, ...]]:
    """The candidates for --levels: VMs that run on this node (as `nestctl host` and `vm` find
    them) and have an agent socket; and why some VMs may be missing from that list.

    A VM whose pid file could not be read is kept (its agent will say whether it answers); a
    stale pid file is not a running VM.
    """
    from nestctl.host.pidfiles import scan_pidfiles  # noqa: PLC0415

    scan = scan_pidfiles(host)
    found = [
        vmid
        for vmid, check in scan.checks.items()
        if check.running is not False
        and host.exists(f"/var/run/qemu-server/{vmid}.qga").present is not False
    ]
    problems = tuple(f"{p}: the VMs there are unknown" for p in scan.problems)
    return found, problems
