"""A guest that is a hypervisor itself (a Proxmox VE node, or running QEMU/KVM VMs): gathered by
the guest layer, reported under `guest.linux`, and read by `decide_intent` as inner-layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nestctl.guest import agent as agent_mod
from nestctl.guest.agent import GuestAgent
from nestctl.guest.agent_machine import AgentMachine
from nestctl.guest.linux import probe_linux
from nestctl.guest.report import guest_json
from nestctl.guest.role import probe_role, probe_running_vms
from nestctl.machine import Host
from nestctl.vm.intent import decide_intent
from tests.guest.fake_agent import FakeAgent, FakeProgram, serving
from tests.guest.linux_trees import l1_kvm
from tests.helpers import write_tree

#: A process of Proxmox's QEMU as /proc shows it (qemu-server starts /usr/bin/kvm).
PVE_KVM = {
    "/proc/4242/comm": "kvm\n",
    "/proc/4242/cmdline": "/usr/bin/kvm\x00-id\x00100\x00-name\x00inner,debug-threads=on\x00",
}
#: An ordinary guest's processes, with kernel threads whose names start with kvm.
ORDINARY = {
    "/proc/1/comm": "systemd\n",
    "/proc/1/cmdline": "/sbin/init\x00",
    "/proc/77/comm": "kvm-pit/42\n",
    "/proc/77/cmdline": "",
    "/proc/78/comm": "kvm\n",  # a kernel thread named kvm: empty cmdline, not QEMU
    "/proc/78/cmdline": "",
}
PVE_NODE = {
    "/var/lib/dpkg/info/pve-manager.list": "/.\n/usr/bin/pveversion\n",
    "/usr/bin/qm": "#!/usr/bin/perl\n",
    "/etc/pve/.version": "{}\n",
}


def _guest(tmp_path: Path, extra: dict[str, str | bytes]) -> dict[str, object]:
    tree = {**l1_kvm(), **ORDINARY, **extra}
    facts = probe_linux(Host(write_tree(tmp_path, tree)))
    return guest_json(facts, [])


def test_inner_proxmox_node_is_inner_layer(tmp_path: Path) -> None:
    guest = _guest(tmp_path, {**PVE_NODE, **PVE_KVM})
    linux = guest["linux"]
    assert isinstance(linux, dict)
    assert linux["pve_node"] is True
    assert linux["pve_evidence"] == ["/var/lib/dpkg/info/pve-manager.list", "/usr/bin/qm"]
    assert linux["running_vms"] == ["kvm (pid 4242)"]
    intent = decide_intent({"cpu": "host"}, guest=guest)
    assert (intent.wants_nested, intent.intent) == (True, "inner-layer")
    assert "Proxmox VE node" in intent.why


def test_pve_node_alone_is_inner_layer(tmp_path: Path) -> None:
    guest = _guest(tmp_path, {"/usr/bin/qm": "#!/usr/bin/perl\n"})
    intent = decide_intent({}, guest=guest)
    assert (intent.intent, intent.why) == ("inner-layer", "its guest is a Proxmox VE node")


def test_pmxcfs_mount_alone_says_proxmox(tmp_path: Path) -> None:
    guest = _guest(tmp_path, {"/etc/pve/.version": "{}\n"})
    linux = guest["linux"]
    assert isinstance(linux, dict)
    assert (linux["pve_node"], linux["pve_evidence"]) == (True, ["/etc/pve"])


def test_guest_running_qemu_is_inner_layer(tmp_path: Path) -> None:
    # comm holds 15 characters: qemu-system-x86_64 reads qemu-system-x86.
    guest = _guest(tmp_path, {"/proc/900/comm": "qemu-system-x86\n", "/proc/900/cmdline": "x"})
    linux = guest["linux"]
    assert isinstance(linux, dict)
    assert (linux["pve_node"], linux["running_vms"]) == (False, ["qemu-system-x86 (pid 900)"])
    intent = decide_intent({"cpu": "host,flags=+vmx"}, guest=guest)  # before config
    assert (intent.intent, intent.why) == (
        "inner-layer",
        "its guest runs 1 VM(s) of its own (QEMU/KVM)",
    )


def test_ordinary_guest_is_no_hypervisor(tmp_path: Path) -> None:
    tree = {k: v for k, v in l1_kvm().items() if "kvm_amd" not in k}
    facts = probe_linux(Host(write_tree(tmp_path, {**tree, **ORDINARY})))
    guest = guest_json(facts, [])
    linux = guest["linux"]
    assert (linux["pve_node"], linux["running_vms"]) == (False, [])
    intent = decide_intent({"cpu": "host"}, guest=guest)
    assert (intent.wants_nested, intent.intent) == (False, "none")


def test_unreadable_proc_is_null_never_false(tmp_path: Path) -> None:
    # /proc/900's comm cannot be read (a directory in its place): none found, so unknown.
    guest = _guest(tmp_path, {"/proc/900/comm/x": ""})
    linux = guest["linux"]
    assert isinstance(linux, dict)
    assert linux["running_vms"] is None


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAgent]:
    monkeypatch.setattr(agent_mod, "SYNC_ATTEMPT", 0.2)
    with serving({}) as server:
        yield server


def _agent_machine(fake: FakeAgent) -> AgentMachine:
    return AgentMachine(GuestAgent(fake.path, timeout=2))


def test_through_the_agent(fake: FakeAgent) -> None:
    files = {**PVE_NODE, **PVE_KVM, **ORDINARY}
    fake.files.update({k: v.encode() for k, v in files.items()})
    dirs = {"/etc/pve"}
    fake.programs["test"] = lambda args: FakeProgram(exitcode=0 if args[-1] in dirs else 1)
    fake.programs["ls"] = lambda args: (
        FakeProgram(stdout=b"1\n4242\n77\n78\nself\n")
        if args[-1] == "/proc/"
        else FakeProgram(exitcode=2, stderr=b"ls: cannot access: No such file or directory\n")
    )
    machine = _agent_machine(fake)
    role = probe_role(machine)
    machine.agent.close()
    assert role.pve_node is True
    assert role.running_vms == ("kvm (pid 4242)",)


def test_agent_refusing_guest_exec(fake: FakeAgent) -> None:
    """Without guest-exec /proc cannot be listed: running VMs unknown (null), never none; a
    Proxmox node is still seen through its files (guest-file-open needs no guest-exec)."""
    fake.blocked = {"guest-exec"}
    machine = _agent_machine(fake)
    role = probe_role(machine)
    assert (role.pve_node, role.running_vms) == (None, None)
    fake.files["/usr/bin/qm"] = b"#!/usr/bin/perl\n"
    role = probe_role(machine)
    machine.agent.close()
    assert (role.pve_node, role.pve_evidence, role.running_vms) == (True, ("/usr/bin/qm",), None)
    assert decide_intent({}, guest={"linux": {"pve_node": None, "running_vms": None}}).intent == (
        "none"
    )


def test_through_the_agent_ps_is_one_command(fake: FakeAgent) -> None:
    """`ps` first: one guest-exec instead of a read per process; only `kvm` has its cmdline read
    (a kernel thread named kvm has an empty one)."""
    fake.files.update({k: v.encode() for k, v in {**PVE_KVM, **ORDINARY}.items()})
    fake.programs["ps"] = FakeProgram(
        stdout=b"    1 systemd\n   77 kvm-pit/42\n   78 kvm\n  900 qemu-system-x86\n 4242 kvm\n"
    )
    machine = _agent_machine(fake)
    running = probe_running_vms(machine)
    machine.agent.close()
    assert running == ("qemu-system-x86 (pid 900)", "kvm (pid 4242)")
    opened = [e.target for e in machine.manifest if e.kind == "read"]
    assert opened == ["agent:/proc/78/cmdline", "agent:/proc/4242/cmdline"]
