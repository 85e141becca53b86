"""A fake Proxmox node root whose VM is a booted test guest (`nestctl vm VMID --guest` tests)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import write_tree


def make_pve_root(
    tmp: Path,
    vmid: int,
    cpu_arg: str,
    qga_socket: Path,
    *,
    pid: int = 4242,
    argv: list[str] | None = None,
    extra_conf: str = "",
) -> Path:
    """Write `<tmp>/root` as a Proxmox node running VM `vmid` with `-cpu cpu_arg`.

    * /etc/pve/qemu-server/<vmid>.conf: `agent: 1`, `tags: nested` and `args: -cpu <cpu_arg>`
      (an `args:` -cpu replaces the one Proxmox builds, so config and running process agree on
      the tested value);
    * /var/run/qemu-server/<vmid>.pid and /proc/<pid>/cmdline (NUL-separated `argv`, by default a
      Proxmox-like command line carrying `-cpu cpu_arg`);
    * /var/run/qemu-server/<vmid>.qga: a symlink to the booted guest's agent socket.
    """
    root = tmp / "root"
    conf = (
        f"agent: 1\nargs: -cpu {cpu_arg}\nboot: order=scsi0\ncores: 1\nmemory: 256\n"
        f"name: e2e-{vmid}\nostype: l26\ntags: nested\n{extra_conf}"
    )  # tagged: the e2e VM is meant to nest, so its chain decides its verdict (issue 18)
    cmdline = argv or [
        "/usr/bin/kvm", "-id", str(vmid), "-name", f"e2e-{vmid},debug-threads=on",
        "-chardev", f"socket,id=qga0,path=/var/run/qemu-server/{vmid}.qga,server=on,wait=off",
        "-cpu", cpu_arg, "-m", "256",
    ]  # fmt: skip
    write_tree(
        root,
        {
            f"/etc/pve/qemu-server/{vmid}.conf": conf,
            f"/var/run/qemu-server/{vmid}.pid": f"{pid}\n",
            f"/proc/{pid}/cmdline": "\0".join(cmdline) + "\0",
        },
    )
    link = root / "var" / "run" / "qemu-server" / f"{vmid}.qga"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(qga_socket, link)
    return root
