"""Large clusters for benchmarks (16 nodes, 2,000 VMs), written as ordinary fixture roots.

The trees are built with tests/vm/vmtrees.py, the builders the local-mode tests use, so the
SSH / cluster-file-system path and the API path can be measured on the same cluster.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from tests.pvesim.cluster import Cluster, load_cluster
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
_VERSIONS = (vmtrees.PVE92, vmtrees.PVE84)


def write_cluster(directory: Path, *, nodes: int = 16, vms: int = 2000, seed: int = 13) -> Path:
    """Write `nodes` node roots holding `vms` VMs in total under directory/nodes/."""
    rng = random.Random(seed)
    names = [f"pve{i + 1}" for i in range(nodes)]
    (directory / "nodes").mkdir(parents=True, exist_ok=True)
    (directory / "cluster.json").write_text(json.dumps({"name": directory.name or "bench"}))
    roots = {}
    for i, name in enumerate(names):
        root = directory / "nodes" / name
        vmtrees.node(
            root, vendor="intel" if i % 3 else "amd", versions=_VERSIONS[i % 5 == 4], hostname=name
        )
        (root / "node.json").write_text(json.dumps({"ip": f"192.0.2.{10 + i}"}))
        roots[name] = root
    for n in range(vms):
        vmid = 100 + n
        name = names[n % nodes]
        root = roots[name]
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
        vmtrees.vm_conf(root, vmid, text)
        if n % 5 < 3:  # three in five run
            vmtrees.run_vm(root, vmid, 10_000 + n, cpu.split(",")[0])
    return directory


def generate_cluster(*, nodes: int = 16, vms: int = 2000, seed: int = 13) -> Cluster:
    """A cluster held in memory (its files are written to a temporary directory and read back)."""
    with tempfile.TemporaryDirectory(prefix="pvesim-gen-") as tmp:
        return load_cluster(write_cluster(Path(tmp) / "bench", nodes=nodes, vms=vms, seed=seed))
