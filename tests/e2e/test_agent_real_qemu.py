"""The agent socket of a real QEMU whose guest runs no agent: a clear AgentUnavailable, in time."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestctl.guest.agent import AgentUnavailable, GuestAgent
from nestctl.guest.agent_machine import AgentMachine
from nestctl.machine import ReadStatus

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("qemu_binary")]


@pytest.fixture
def silent_vm() -> Iterator[Path]:
    """A paused QEMU (no guest code runs) with the virtio port Proxmox gives the agent."""
    d = Path(tempfile.mkdtemp(prefix="nestctl-e2e-"))
    sock = d / "qga.sock"
    proc = subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-device",
            "virtio-serial",
            "-chardev",
            f"socket,path={sock},server=on,wait=off,id=qga0",
            "-device",
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield sock
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def test_no_agent_in_the_guest_is_unavailable_within_the_timeout(silent_vm: Path) -> None:
    start = time.monotonic()
    with pytest.raises(AgentUnavailable, match="not answering within 2 s"):
        GuestAgent(silent_vm, timeout=2).sync()
    assert time.monotonic() - start < 3


def test_agent_machine_over_a_silent_agent_reports_why(silent_vm: Path) -> None:
    machine = AgentMachine(GuestAgent(silent_vm, timeout=1), os_kind="linux")
    read = machine.read("/proc/cpuinfo")
    assert read.status is ReadStatus.COULD_NOT_RUN
    assert "not answering" in (read.error or "")
    assert isinstance(machine.failure, AgentUnavailable)
    machine.agent.close()
