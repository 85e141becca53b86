"""Guest file reads through the Proxmox API keep "incomplete" and "could not ask" apart from facts:
Proxmox's `truncated` flag, its agent timeout and a blocked guest-file-read never read as a file's
whole content or as "unreadable"."""

from __future__ import annotations

import pytest

from nestctl.api.client import ApiClient
from nestctl.api.guestagent import ApiGuestAgent
from nestctl.guest.agent_machine import EXEC_BLOCKED_FIX, AgentMachine
from nestctl.machine import ReadStatus
from tests.api.simclient import sim_client  # noqa: F401 - fixture
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures"]

MIB = 1024 * 1024


def _machine(client: ApiClient) -> AgentMachine:
    return AgentMachine(ApiGuestAgent(client, "pve1", 101), os_kind="linux")


def test_proxmox_truncated_flag_makes_the_read_truncated(
    pve_sim: PveSim,
    sim_client: ApiClient,  # noqa: F811 - fixture
) -> None:
    # Proxmox reads at most 16 MiB and says `truncated`: with a larger limit of our own, only the
    # flag tells the 16 MiB we got from the whole file.
    guest = pve_sim.cluster.vm(101).guest
    assert guest is not None
    guest.files["/var/log/kern.log"] = b"x" * (16 * MIB + 10)
    read = _machine(sim_client).read("/var/log/kern.log", max_bytes=20 * MIB)
    assert read.status is ReadStatus.TRUNCATED
    assert read.text is not None
    assert len(read.text) == 16 * MIB
    # A file that fits is whole.
    guest.files["/etc/hostname"] = b"guest\n"
    whole = _machine(sim_client).read("/etc/hostname", max_bytes=20 * MIB)
    assert (whole.status, whole.text) == (ReadStatus.OK, "guest\n")


@pytest.mark.parametrize(
    ("message", "status"),
    [
        # qemu-server gave up waiting for the agent: the question is open.
        ("VM 101 qmp command 'guest-file-open' failed - got timeout", ReadStatus.TIMED_OUT),
        # qemu-ga blocks guest-file-*: nothing was read, so nothing is known.
        (
            "Agent error: The command guest-file-open has been disabled for this instance",
            ReadStatus.COULD_NOT_RUN,
        ),
    ],
)
def test_an_agent_that_could_not_answer_is_not_unreadable(
    pve_sim: PveSim,
    sim_client: ApiClient,  # noqa: F811 - fixture
    message: str,
    status: ReadStatus,
) -> None:
    pve_sim.fail(path=r"/agent/file-read$", status=500, message=message)
    read = _machine(sim_client).read("/proc/cpuinfo")
    assert read.status is status
    assert message in (read.error or "")


def test_a_blocked_guest_exec_through_the_api_names_what_to_allow(
    pve_sim: PveSim,
    sim_client: ApiClient,  # noqa: F811 - fixture
) -> None:
    # Proxmox passes qemu-ga's refusal on; the probes that need a command are unknown, and the
    # blocker says to allow guest-exec (not "install test").
    pve_sim.fail(
        path=r"/agent/exec$",
        status=500,
        message="Agent error: The command guest-exec has been disabled for this instance",
    )
    machine = _machine(sim_client)
    presence = machine.exists("/dev/kvm")
    assert presence.present is None
    assert presence.status is ReadStatus.COULD_NOT_RUN
    assert machine.blocker is not None
    assert machine.blocker.fix == EXEC_BLOCKED_FIX
