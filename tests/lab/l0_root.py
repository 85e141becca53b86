"""L0 as nestctl sees a Proxmox node: a root directory whose VMs are the lab's real L1 QEMUs.

This machine is no Proxmox node (and its /dev/kvm is never used), so, like `tests/e2e/pve_root.py`,
the L0 side is a directory for `--root`: pmxcfs' layout with one config per L1, the pid file
holding the real L1 QEMU's pid, that process's real command line under /proc (its pid file and
agent socket paths written as this root names them), and the agent socket a symlink to L1's.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import write_tree
from tests.lab.stack import L1

NODE = "l0lab"


def _as_in_root(argv: list[str], vmid: int, l1: L1) -> list[str]:
    """The real argv with L1's pid file and socket at the paths this root gives them."""
    out = []
    for arg in argv:
        moved = arg.replace(str(l1.pidfile), f"/var/run/qemu-server/{vmid}.pid")
        out.append(moved.replace(str(l1.qga_socket), f"/var/run/qemu-server/{vmid}.qga"))
    return out


def make_l0_root(tmp: Path, l1s: list[L1]) -> Path:
    root = tmp / "l0"
    files = {"/etc/hostname": f"{NODE}\n"}
    for l1 in l1s:
        vmid, pid = l1.spec.vmid, l1.proc.pid
        # kvm: 0 because L1 really runs under TCG; args: -cpu replaces Proxmox's own -cpu.
        files[f"/etc/pve/nodes/{NODE}/qemu-server/{vmid}.conf"] = (
            f"agent: 1\nargs: -cpu {l1.spec.cpu}\ncores: 1\nkvm: 0\nmemory: {l1.spec.memory}\n"
            f"name: lab-l1-{vmid}\nostype: l26\ntags: nested\n"  # the admin's mark: meant to nest
        )
        files[f"/var/run/qemu-server/{vmid}.pid"] = f"{pid}\n"
        files[f"/proc/{pid}/cmdline"] = "\0".join(_as_in_root(l1.argv, vmid, l1)) + "\0"
    write_tree(root, files)
    os.symlink(f"nodes/{NODE}/qemu-server", root / "etc" / "pve" / "qemu-server")
    os.symlink(f"nodes/{NODE}", root / "etc" / "pve" / "local")
    for l1 in l1s:
        os.symlink(l1.qga_socket, root / "var" / "run" / "qemu-server" / f"{l1.spec.vmid}.qga")
    return root
