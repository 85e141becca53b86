"""Fake Proxmox nodes for VM-layer tests: host CPU, KVM, dpkg versions, VM configs, running VMs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.helpers import write_tree

INTEL_CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
    "model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\n"
    "flags\t\t: fpu vme sse4_2 popcnt avx avx2 bmi1 bmi2 fma movbe adx rdseed smap aes "
    "pclmulqdq xsave avx512f avx512bw avx512vl avx512_vnni pku clwb vmx\n"
)
AMD_CPUINFO = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
    "model name\t: AMD EPYC 7543 32-Core Processor\n"
    "flags\t\t: fpu sse4_2 sse4a popcnt avx avx2 sha_ni clzero rdseed adx svm\n"
)

PVE84 = {
    "qemu-server": "8.3.13",
    "pve-manager": "8.4.1",
    "pve-qemu-kvm": "9.2.0-5",
}
PVE92 = {
    "qemu-server": "9.2.6",
    "pve-manager": "9.2.2",
    "pve-qemu-kvm": "11.0.2-1",
}


def dpkg_status(versions: dict[str, str]) -> str:
    stanzas = [
        f"Package: {pkg}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {ver}\n"
        for pkg, ver in versions.items()
    ]
    stanzas.append("Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n")
    return "\n".join(stanzas)


def node(
    root: Path,
    *,
    vendor: str = "intel",
    nested: str = "Y",
    versions: dict[str, str] | None = None,
    hostname: str = "pve1",
) -> Path:
    """A node with KVM loaded; `versions` default to PVE 9.2."""
    module = "kvm_intel" if vendor == "intel" else "kvm_amd"
    write_tree(
        root,
        {
            "/proc/cpuinfo": INTEL_CPUINFO if vendor == "intel" else AMD_CPUINFO,
            f"/sys/module/{module}/parameters/nested": f"{nested}\n",
            "/sys/module/kvm/parameters/ignore_msrs": "N\n",
            "/dev/kvm": "",
            "/etc/hostname": f"{hostname}\n",
            "/var/lib/dpkg/status": dpkg_status(versions or PVE92),
        },
    )
    (root / "etc/pve/qemu-server").mkdir(parents=True, exist_ok=True)
    return root


def vm_conf(root: Path, vmid: int, text: str, node_name: str | None = None) -> None:
    where = f"/etc/pve/nodes/{node_name}/qemu-server" if node_name else "/etc/pve/qemu-server"
    write_tree(root, {f"{where}/{vmid}.conf": text})


def digest_args(root: Path, vmid: int) -> list[str]:
    """`--digest` of the config as written: what `vm enable` sends with `qm set`."""
    data = (root / f"etc/pve/qemu-server/{vmid}.conf").read_bytes()
    return ["--digest", hashlib.sha1(data).hexdigest()]


def qemu_argv(vmid: int, cpu: str, *extra: str) -> list[str]:
    return [
        "/usr/bin/kvm",
        "-id",
        str(vmid),
        "-pidfile",
        f"/var/run/qemu-server/{vmid}.pid",
        "-daemonize",
        "-cpu",
        cpu,
        "-m",
        "2048",
        "-machine",
        "type=pc-q35-9.2+pve1",
        *extra,
    ]


def run_vm(root: Path, vmid: int, pid: int, cpu: str, *extra: str) -> None:
    """A running QEMU for `vmid`: pid file, NUL-separated /proc/<pid>/cmdline, stat."""
    argv = qemu_argv(vmid, cpu, *extra)
    write_tree(
        root,
        {
            f"/var/run/qemu-server/{vmid}.pid": f"{pid}\n",
            f"/proc/{pid}/cmdline": ("\0".join(argv) + "\0").encode(),
            f"/proc/{pid}/stat": f"{pid} (kvm) S 1 {pid} {pid} 0 -1 4194560",
        },
    )
