"""The guest's own view (through the QEMU guest agent) joined to a VM's analysis."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from nestctl.findings import Finding, info, unknown
from nestctl.machine import Host
from nestctl.parse import parse_uint
from nestctl.vm.analyse import VmContext, VmResult
from nestctl.vm.model import VmConfig
from nestctl.vm.running import RunningCheck

#: Opens a guest agent (a context manager giving GuestAgent's methods), or raises
#: GuestAgentError.
OpenAgent = Callable[[], AbstractContextManager[Any]]


def guest_view(
    host: Host, r: VmResult, cfg: VmConfig, run: RunningCheck, ctx: VmContext
) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The guest's own view through the local QEMU guest agent socket."""
    if not r.running:
        return None, [not_running(r.vmid)]
    from nestctl.guest.agent import GuestAgent, agent_socket_path  # noqa: PLC0415

    vmid = r.vmid
    socket = agent_socket_path(host, vmid)
    if not socket.exists():
        return None, [
            info(
                "vm.guest.no-agent",
                f"VM {vmid}: no guest agent socket ({host.hostpath(socket)}): the guest's own "
                f"view needs agent: 1 in the config and qemu-guest-agent running in the guest.",
                f"qm set {vmid} --agent 1",
            )
        ]
    return guest_view_through(lambda: GuestAgent(socket, timeout=5.0), r, cfg, run, ctx)


def not_running(vmid: int) -> Finding:
    return info("vm.guest.not-running", f"VM {vmid}: not running: no guest to ask.")


def guest_view_through(
    open_agent: OpenAgent, r: VmResult, cfg: VmConfig, run: RunningCheck, ctx: VmContext
) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The guest's own view through an agent (`"via": "agent"`), or None and why: the same
    probes whether the agent is reached by its socket or through the Proxmox API."""
    from nestctl.guest.agent import GuestAgentError  # noqa: PLC0415
    from nestctl.guest.agent_machine import AgentMachine  # noqa: PLC0415
    from nestctl.guest.facts import HostSide  # noqa: PLC0415
    from nestctl.guest.report import guest_report  # noqa: PLC0415

    vmid = r.vmid
    conf = cfg.current()
    side = HostSide(
        vmid=vmid,
        running_cpu=r.running_cpu_arg,
        exposes_virt=r.nested.exposed,
        host_nested=ctx.nested_live,
        machine=run.vm.machine if run.vm else None,
        memory_mib=_int(conf.get("memory", "").split(",")[0].removeprefix("current=")),
        ostype=conf.get("ostype"),
        accel="tcg" if run.vm and run.vm.accel_tcg else "kvm",
        restart_pending=r.restart_required,
        parent_level=ctx.node_level,
    )
    why: str | None = None
    try:
        with open_agent() as agent:
            machine = AgentMachine(agent)
            rep = guest_report(machine, os=machine.os_kind, host_side=side)
            if machine.failure is not None:
                why = str(machine.failure)
    except GuestAgentError as exc:
        why = str(exc)
    if why is not None:
        return None, [
            unknown("vm.guest.agent-failed", f"VM {vmid}: the guest agent did not answer: {why}")
        ]
    obj = dict(rep.payload["guest"])
    obj["via"] = "agent"
    notes = [f.with_message(f"VM {vmid} (guest): {f.message}") for f in rep.findings]
    return obj, notes


def join_guest_view(r: VmResult) -> None:
    """The guest's own view replaces the prediction as the chain's last link.

    What the guest sees outranks what we predicted: a visible flag without a usable /dev/kvm
    (e.g. svm behind an Intel vendor string) is a broken guest link too.
    """
    if r.guest is None:
        return
    if r.guest.get("os") == "windows":
        state = "ok" if r.guest.get("kvm_usable") else "unknown"
    elif r.guest.get("os") is None:  # the agent could not tell the OS: nothing was probed
        state = "unknown"
    elif r.guest.get("virt_flag") is None:
        state = "broken"
    else:
        usable = r.guest.get("kvm_usable")  # None: the guest could not be checked, not "no"
        state = "ok" if usable else "unknown" if usable is None else "broken"
    r.chain["guest"] = state
    r.broken_link = next((k for k, v in r.chain.items() if v == "broken"), None)


def _int(text: str) -> int | None:
    return parse_uint(text)
