"""How tests/data/clusters/* were made: `python -m tests.pvesim.fixture_clusters` rewrites them.

Each node is a local-mode root built with the repo's own builders (tests/vm/vmtrees.py for nodes
and VMs, tests/guest/linux_trees.py for guests), so `nestctl vm --root .../nodes/pve1` and the
simulator's API answer about the very same files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.guest import linux_trees
from tests.helpers import write_tree
from tests.pvesim.generate import ct_socket_line
from tests.vm import vmtrees

CLUSTERS = Path(__file__).resolve().parents[1] / "data" / "clusters"

INTEL_MODEL = "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
INTEL_GUEST_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse "
    "sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon rep_good nopl xtopology cpuid "
    "tsc_known_freq pni pclmulqdq vmx ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes "
    "xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch avx512f avx512bw avx512vl"
)
#: VM 101's smbios1 uuid in `lab`: the DMI product_uuid of the `lab-inner` node it runs.
INNER_UUID = "5b0a3c1e-1d2f-4b8e-9c61-0e0f2a7b1d01"
PVE74 = {"qemu-server": "7.4-3", "pve-manager": "7.4-16", "pve-qemu-kvm": "7.2.0-8"}
PVE62 = {"qemu-server": "6.2-2", "pve-manager": "6.2-4", "pve-qemu-kvm": "5.0.0-2"}


def _json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _guest(node_root: Path, vmid: int, tree: dict[str, str | bytes], meta: dict[str, Any]) -> None:
    where = node_root / "guests" / str(vmid)
    write_tree(where / "root", tree)
    _json(where / "guest.json", meta)


def _ct(node_root: Path, vmid: int, text: str, *, running: bool = False) -> None:
    """A container: etc/pve/lxc/<vmid>.conf, and when running its lxc command socket in
    proc/net/unix (PVE::LXC::list_active_containers reads it)."""
    conf = node_root / "etc/pve/lxc" / f"{vmid}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(text)
    if running:
        unix = node_root / "proc/net/unix"
        unix.parent.mkdir(parents=True, exist_ok=True)
        head = "" if unix.is_file() else "Num       RefCount Protocol Flags    Type St Inode Path\n"
        with unix.open("a") as out:
            out.write(head + ct_socket_line(vmid) + "\n")


def build_lab(base: Path) -> None:
    """Three nodes: pve1 (Intel, PVE 9.2), pve2 (AMD, 8.4, nested off), pve3 (down)."""
    _json(
        base / "cluster.json",
        {
            "name": "lab",
            "entry": "pve1",
            "firewall": {
                "options": {"enable": 1, "policy_in": "DROP", "policy_out": "ACCEPT"},
                "rules": [
                    {
                        "type": "in",
                        "action": "ACCEPT",
                        "proto": "tcp",
                        "dport": "8006",
                        "enable": 1,
                        "comment": "web UI",
                    },
                ],
            },
        },
    )
    pve1 = vmtrees.node(base / "nodes/pve1", vendor="intel", hostname="pve1")
    vmtrees.vm_conf(
        pve1,
        101,
        "#Proxmox VE inside (L1)\nagent: 1\nboot: order=scsi0\ncores: 4\ncpu: host\n"
        "machine: q35\nmemory: 8192\nname: pve-inner\n"
        "net0: virtio=BC:24:11:AA:01:01,bridge=vmbr0,firewall=1\nostype: l26\n"
        "scsi0: local-lvm:vm-101-disk-0,size=64G\nscsihw: virtio-scsi-single\n"
        f"smbios1: uuid={INNER_UUID}\nsockets: 1\n",
    )
    vmtrees.run_vm(pve1, 101, 4101, "host", "-machine", "type=pc-q35-10.0+pve1")
    tree = linux_trees.l1_kvm()
    tree["/proc/cpuinfo"] = linux_trees.cpuinfo("GenuineIntel", INTEL_MODEL, INTEL_GUEST_FLAGS)
    tree["/sys/module/kvm_intel/parameters/nested"] = "Y\n"
    tree["/sys/class/dmi/id/product_uuid"] = INNER_UUID + "\n"
    del tree["/sys/module/kvm_amd/parameters/nested"]
    _guest(
        pve1,
        101,
        tree,
        {
            "osinfo": {
                "id": "debian",
                "kernel-release": "6.14.8-2-pve",
                "machine": "x86_64",
                "name": "Debian GNU/Linux",
                "pretty-name": "Debian GNU/Linux 13 (trixie)",
                "version": "13 (trixie)",
                "version-id": "13",
                "kernel-version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.8-2",
            },
            "exec": [
                {
                    "command": ["kvm-ok"],
                    "exitcode": 0,
                    "out-data": "INFO: /dev/kvm exists\nKVM acceleration can be used\n",
                },
                {
                    "command": ["cat", "/sys/module/kvm_intel/parameters/nested"],
                    "exitcode": 0,
                    "out-data": "Y\n",
                },
            ],
        },
    )
    vmtrees.vm_conf(
        pve1,
        102,
        "agent: 1\nbios: ovmf\ncores: 4\ncpu: x86-64-v2-AES\nmachine: pc-q35-9.2+pve1\n"
        "memory: 16384\nname: win11\nnet0: e1000=BC:24:11:AA:01:02,bridge=vmbr0\n"
        "ostype: win11\nscsi0: local-lvm:vm-102-disk-0,size=128G\n"
        "tpmstate0: local-lvm:vm-102-disk-1,size=4M,version=v2.0\n"
        "\n[PENDING]\ncpu: host\n",
    )
    vmtrees.run_vm(pve1, 102, 4102, "x86-64-v2-AES,enforce", "-machine", "type=pc-q35-9.2+pve1")
    _guest(pve1, 102, {}, {"running": False})
    vmtrees.vm_conf(
        pve1,
        103,
        "boot: order=scsi0\nmemory: 2048\nname: default-cpu\n"
        "scsi0: local-lvm:vm-103-disk-0,size=8G\n",
    )
    vmtrees.vm_conf(
        pve1,
        104,
        "cores: 2\ncpu: host\nlock: backup\nmemory: 2048\nname: being-backed-up\n"
        "scsi0: local-lvm:vm-104-disk-0,size=8G\n",
    )
    # Containers: 150 runs Docker (nesting+keyctl, unprivileged, tagged nested); 151 is a plain
    # CT (not nested); 152 is locked by a backup.
    _ct(
        pve1,
        150,
        "arch: amd64\ncores: 2\nfeatures: keyctl=1,nesting=1\nhostname: docker-host\n"
        "memory: 2048\nnet0: name=eth0,bridge=vmbr0,firewall=1,hwaddr=BC:24:11:CC:01:50,"
        "ip=dhcp,type=veth\nostype: debian\nrootfs: local-lvm:vm-150-disk-0,size=16G\n"
        "swap: 512\ntags: nested\nunprivileged: 1\n",
        running=True,
    )
    _ct(
        pve1,
        151,
        "arch: amd64\ncores: 1\nhostname: dns\nmemory: 512\nnet0: name=eth0,bridge=vmbr0,"
        "hwaddr=BC:24:11:CC:01:51,ip=dhcp,type=veth\nostype: alpine\n"
        "rootfs: local-lvm:vm-151-disk-0,size=2G\nswap: 512\nunprivileged: 1\n",
    )
    _ct(
        pve1,
        152,
        "arch: amd64\ncores: 1\nhostname: backing-up\nlock: backup\nmemory: 512\n"
        "ostype: debian\nrootfs: local-lvm:vm-152-disk-0,size=4G\nunprivileged: 1\n",
        running=True,
    )
    _json(
        pve1 / "node.json",
        {
            "ip": "192.0.2.11",
            "cpus": 16,
            "sockets": 1,
            "cores": 16,
            "firewall": {
                "options": {"enable": 1},
                "rules": [
                    {
                        "type": "in",
                        "action": "ACCEPT",
                        "proto": "tcp",
                        "dport": "22",
                        "enable": 1,
                        "comment": "ssh",
                    }
                ],
            },
            "vms": {
                "101": {
                    "firewall": {
                        "options": {"enable": 1, "policy_in": "DROP"},
                        "rules": [
                            {
                                "type": "in",
                                "action": "ACCEPT",
                                "proto": "tcp",
                                "dport": "8006",
                                "enable": 1,
                                "comment": "inner web UI",
                            },
                            {
                                "type": "in",
                                "action": "ACCEPT",
                                "proto": "tcp",
                                "dport": "22",
                                "enable": 1,
                            },
                            {"type": "in", "action": "DROP", "enable": 0, "comment": "parked"},
                        ],
                    }
                }
            },
        },
    )

    pve2 = vmtrees.node(
        base / "nodes/pve2", vendor="amd", nested="0", versions=vmtrees.PVE84, hostname="pve2"
    )
    vmtrees.vm_conf(
        pve2,
        201,
        "cores: 2\ncpu: EPYC-v4,flags=+svm\nmemory: 4096\nname: epyc-nested\n"
        "net0: virtio=BC:24:11:AA:02:01,bridge=vmbr0\nscsi0: local-lvm:vm-201-disk-0,size=32G\n",
    )
    vmtrees.run_vm(pve2, 201, 4201, "EPYC-v4,enforce,+svm", "-machine", "type=pc-i440fx-9.2+pve0")
    vmtrees.vm_conf(
        pve2,
        202,
        "agent: 1\ncores: 2\ncpu: host\nmemory: 4096\nname: amd-host\n"
        "scsi0: local-lvm:vm-202-disk-0,size=32G\n",
    )
    # 250 wants Docker (tagged nested) but has no nesting/keyctl; 251 has /dev/kvm bound in.
    _ct(
        pve2,
        250,
        "arch: amd64\ncores: 2\nhostname: wants-docker\nmemory: 1024\n"
        "net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:CC:02:50,ip=dhcp,type=veth\n"
        "ostype: ubuntu\nrootfs: local-lvm:vm-250-disk-0,size=8G\nswap: 512\ntags: nested\n"
        "unprivileged: 1\n",
        running=True,
    )
    _ct(
        pve2,
        251,
        "arch: amd64\ncores: 4\ndev0: /dev/kvm,gid=104\nfeatures: nesting=1\nhostname: kvm-in-ct\n"
        "memory: 4096\nostype: debian\nrootfs: local-lvm:vm-251-disk-0,size=32G\n"
        "unprivileged: 1\n",
    )
    _json(pve2 / "node.json", {"ip": "192.0.2.12", "cpus": 64, "sockets": 1, "cores": 32})

    pve3 = vmtrees.node(base / "nodes/pve3", vendor="intel", hostname="pve3")
    vmtrees.vm_conf(pve3, 301, "cores: 2\ncpu: host\nmemory: 2048\nname: on-a-down-node\n")
    vmtrees.run_vm(pve3, 301, 4301, "host", "-machine", "type=pc-i440fx-10.0+pve0")
    _json(pve3 / "node.json", {"ip": "192.0.2.13", "online": False})


def build_inner(base: Path) -> None:
    """The Proxmox VE running inside lab's VM 101 (L1): one node, its own VMs (L2)."""
    _json(base / "cluster.json", {"name": None})
    root = vmtrees.node(base / "nodes/pve-inner", vendor="intel", hostname="pve-inner")
    write_tree(
        root,
        {
            "/proc/cpuinfo": linux_trees.cpuinfo("GenuineIntel", INTEL_MODEL, INTEL_GUEST_FLAGS, 4),
            "/sys/class/dmi/id/product_uuid": INNER_UUID + "\n",
            "/sys/class/dmi/id/sys_vendor": "QEMU\n",
        },
    )
    vmtrees.vm_conf(root, 1001, "cores: 1\ncpu: host\nmemory: 1024\nname: l2-host\nostype: l26\n")
    vmtrees.run_vm(root, 1001, 6001, "host", "-machine", "type=pc-i440fx-10.0+pve0")
    vmtrees.vm_conf(root, 1002, "cores: 1\nmemory: 1024\nname: l2-default\nostype: l26\n")
    _json(root / "node.json", {"ip": "192.0.2.50", "cpus": 4, "sockets": 1, "cores": 4})


def build_single(base: Path, versions: dict[str, str], name: str) -> None:
    """A standalone (not clustered) node on an older PVE, one running VM and one stopped."""
    _json(base / "cluster.json", {"name": None})
    root = vmtrees.node(base / "nodes" / name, vendor="intel", versions=versions, hostname=name)
    vmtrees.vm_conf(
        root, 100, "agent: 1\nboot: \ncores: 2\ncpu: host\nmemory: 2048\nname: old-host\n"
    )
    vmtrees.run_vm(root, 100, 5100, "host", "-machine", "type=pc-i440fx-7.2+pve0")
    vmtrees.vm_conf(root, 110, "cores: 1\nmemory: 1024\nname: old-stopped\n")


def main() -> None:
    for name, build in (
        ("lab", build_lab),
        ("lab-inner", build_inner),
        ("pve7", lambda b: build_single(b, PVE74, "pve7")),
        ("pve62", lambda b: build_single(b, PVE62, "pve62")),
    ):
        target = CLUSTERS / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        build(target)


if __name__ == "__main__":
    main()
