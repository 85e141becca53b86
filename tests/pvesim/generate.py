"""Large clusters for benchmarks (16 nodes, 2,000 VMs, optionally containers beside them): in
memory, or as ordinary fixture roots.

One plan feeds both: `generate_cluster` builds the state directly (writing 2,000 VMs' files
costs seconds on a slow disk), `write_cluster` writes the same cluster with tests/vm/vmtrees.py,
the builders the local-mode tests use, so the SSH / cluster-file-system path and the API path
can be measured on the very same VMs.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from tests.pvesim.cluster import (
    Cluster,
    Ct,
    Node,
    Vm,
    apply_cpuinfo,
    dpkg_versions,
    set_running,
)
from tests.pvesim.ctconf import parse_ct_conf
from tests.pvesim.vmconf import parse_conf
from tests.vm import vmtrees

_CPUS = (
    "host",
    "x86-64-v2-AES",
    "kvm64",
    "qemu64",
    "EPYC-v4,flags=+svm",
    "Cooperlake-v2,flags=+vmx",
    "x86-64-v3,flags=+nested-virt",
    "host,flags=+pcid",
)
_MACHINES = ("", "q35", "pc-q35-8.1", "pc-i440fx-9.0")
# What container configs carry, from "nothing" to "runs Docker" and "runs KVM inside".
_CT_FEATURES = ("", "nesting=1", "nesting=1,keyctl=1", "fuse=1,nesting=1", "keyctl=1")
_CT_OS = ("debian", "ubuntu", "alpine", "archlinux")


@dataclass(frozen=True)
class _NodePlan:
    name: str
    vendor: str
    versions: dict[str, str]
    ip: str


@dataclass(frozen=True)
class _VmPlan:
    vmid: int
    node: str
    text: str
    running_cpu: str | None  # None: stopped
    pid: int


@dataclass(frozen=True)
class _CtPlan:
    vmid: int
    node: str
    text: str
    running: bool


def _ct_plans(first: int, cts: int, node_plans: list[_NodePlan], seed: int) -> list[_CtPlan]:
    rng = random.Random(seed + 1)  # its own stream: the VMs stay what they were without CTs
    plans = []
    for n in range(cts):
        vmid = first + n
        lines = [
            f"hostname: ct{vmid}",
            "arch: amd64",
            f"cores: {rng.choice((1, 2, 4))}",
            f"memory: {rng.choice((512, 1024, 2048))}",
            "swap: 512",
            f"ostype: {rng.choice(_CT_OS)}",
            f"rootfs: local-lvm:vm-{vmid}-disk-0,size=8G",
            f"net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:01:{n // 256 % 256:02X}:{n % 256:02X},"
            "ip=dhcp,type=veth",
        ]
        if n % 4:
            lines.append("unprivileged: 1")
        features = rng.choice(_CT_FEATURES)
        if features:
            lines.append(f"features: {features}")
        if n % 7 == 0:
            lines.append("tags: nested")
        if n % 29 == 0:
            lines.append("dev0: /dev/kvm,gid=104")
        text = "\n".join(sorted(lines)) + "\n"
        if n % 31 == 0:
            text += "lxc.cgroup2.devices.allow: c 10:232 rwm\n"
            text += "lxc.mount.entry: /dev/kvm dev/kvm none bind,optional,create=file\n"
        plans.append(_CtPlan(vmid, node_plans[n % len(node_plans)].name, text, n % 3 < 2))
    return plans


def _plan(nodes: int, vms: int, seed: int) -> tuple[list[_NodePlan], list[_VmPlan]]:
    rng = random.Random(seed)
    node_plans = [
        _NodePlan(
            f"pve{i + 1}",
            "intel" if i % 3 else "amd",
            vmtrees.PVE84 if i % 5 == 4 else vmtrees.PVE92,
            f"192.0.2.{10 + i}",
        )
        for i in range(nodes)
    ]
    vm_plans = []
    for n in range(vms):
        vmid = 100 + n
        cpu = rng.choice(_CPUS)
        machine = rng.choice(_MACHINES)
        lines = [
            f"name: vm{vmid}",
            f"cores: {rng.choice((1, 2, 4, 8))}",
            f"memory: {rng.choice((1024, 2048, 4096))}",
            f"net0: virtio=BC:24:11:00:{n // 256 % 256:02X}:{n % 256:02X},bridge=vmbr0",
            f"scsi0: local-lvm:vm-{vmid}-disk-0,size=32G",
            "ostype: l26",
            f"cpu: {cpu}",
        ]
        if machine:
            lines.append(f"machine: {machine}")
        if n % 2:
            lines.append("agent: 1")
        text = "\n".join(sorted(lines)) + "\n"
        if n % 17 == 0:
            text += "\n[PENDING]\ncpu: host\n"
        running = cpu.split(",")[0] if n % 5 < 3 else None  # three in five run
        vm_plans.append(_VmPlan(vmid, node_plans[n % nodes].name, text, running, 10_000 + n))
    return node_plans, vm_plans


def _cpuinfo(vendor: str) -> str:
    return vmtrees.INTEL_CPUINFO if vendor == "intel" else vmtrees.AMD_CPUINFO


def write_cluster(
    directory: Path, *, nodes: int = 16, vms: int = 2000, seed: int = 13, cts: int = 0
) -> Path:
    """Write the cluster as directory/cluster.json and directory/nodes/<node>/ roots; containers
    (`cts`, vmids after the VMs') as etc/pve/lxc/<vmid>.conf, the running ones with their command
    socket in proc/net/unix."""
    node_plans, vm_plans = _plan(nodes, vms, seed)
    (directory / "nodes").mkdir(parents=True, exist_ok=True)
    (directory / "cluster.json").write_text(json.dumps({"name": directory.name or "bench"}))
    for np in node_plans:
        root = vmtrees.node(
            directory / "nodes" / np.name, vendor=np.vendor, versions=np.versions, hostname=np.name
        )
        (root / "node.json").write_text(json.dumps({"ip": np.ip}))
    for vp in vm_plans:
        root = directory / "nodes" / vp.node
        vmtrees.vm_conf(root, vp.vmid, vp.text)
        if vp.running_cpu is not None:
            vmtrees.run_vm(root, vp.vmid, vp.pid, vp.running_cpu)
    unix: dict[str, list[str]] = {}
    for cp in _ct_plans(100 + vms, cts, node_plans, seed):
        root = directory / "nodes" / cp.node
        (root / "etc/pve/lxc").mkdir(parents=True, exist_ok=True)
        (root / "etc/pve/lxc" / f"{cp.vmid}.conf").write_text(cp.text)
        if cp.running:
            unix.setdefault(cp.node, []).append(ct_socket_line(cp.vmid))
    for node_name, lines in unix.items():
        net = directory / "nodes" / node_name / "proc/net"
        net.mkdir(parents=True, exist_ok=True)
        header = "Num       RefCount Protocol Flags    Type St Inode Path\n"
        (net / "unix").write_text(header + "".join(line + "\n" for line in lines))
    return directory


def ct_socket_line(vmid: int) -> str:
    """A /proc/net/unix line of a running container's command socket (as lxc creates it)."""
    inode = 40000 + vmid
    return (
        f"0000000000000000: 00000002 00000000 00010000 0001 01 {inode} @/var/lib/lxc/{vmid}/command"
    )


def generate_cluster(
    *, nodes: int = 16, vms: int = 2000, seed: int = 13, name: str = "bench", cts: int = 0
) -> Cluster:
    """The same cluster as `write_cluster` gives, built in memory (`cts` containers after the
    VMs: `generate_cluster(vms=1400, cts=600)` is a 2,000-guest mixed cluster)."""
    node_plans, vm_plans = _plan(nodes, vms, seed)
    cluster = Cluster(name=name)
    for np in node_plans:
        node = Node(np.name, ip=np.ip)
        node.packages = dpkg_versions(vmtrees.dpkg_status(np.versions))
        node.version = node.packages["pve-manager"]
        apply_cpuinfo(node, _cpuinfo(np.vendor))
        cluster.nodes[np.name] = node
    for vp in vm_plans:
        vm = Vm(vp.vmid, vp.node, parse_conf(vp.text))
        if vp.running_cpu is not None:
            set_running(vm, vp.pid, vmtrees.qemu_argv(vp.vmid, vp.running_cpu))
        cluster.nodes[vp.node].vms[vp.vmid] = vm
    for cp in _ct_plans(100 + vms, cts, node_plans, seed):
        ct = Ct(cp.vmid, cp.node, parse_ct_conf(cp.text))
        if cp.running:
            ct.status, ct.pid, ct.started = "running", 20_000 + cp.vmid, time.time() - 3600
        cluster.nodes[cp.node].cts[cp.vmid] = ct
    return cluster
