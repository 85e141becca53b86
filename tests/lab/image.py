"""Build (once, then cache) the lab's L1 image: a small real KVM host, and the L2 guest inside it.

L1 = the e2e guest's kernel and initramfs (busybox, virtio + KVM modules, qemu-ga) plus its
Python layer (`tests/e2e/guest_image.py`), plus a third cpio archive appended here (the kernel
unpacks concatenated archives in order, later files win):

* `/init`: `l1_init.sh` (loads kvm_amd as `/etc/modprobe.d` says, lays the node out as Proxmox
  does, starts the L2 QEMUs with Proxmox's pid file and agent socket paths);
* `/usr/bin/qemu-system-x86_64` with every library `ldd` names, and the firmware a `-kernel` boot
  of the `pc` machine reads (SeaBIOS, linuxboot, kvmvapic);
* `/usr/local/bin/nestctl`: the single-file build (`scripts/build-pyz`), as users install it;
* `/l2/vmlinuz`, `/l2/initrd.gz`: the e2e guest with Python (its own agent; bench runs there);
* busybox applets a KVM host's admin needs (modprobe, depmod, rmmod, lsmod, hostname, ps, kill,
  env for the `.pyz` shebang).

Cached under ``$NESTCTL_LAB_CACHE`` (default ``~/.cache/nestctl-lab``): the e2e guest is built into
its own sub-folder there (never the shared ``~/.cache/nestctl-e2e``, where other test runs remove
images they did not build), and the L1 image under ``l1-<key>``, the key covering every input.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.guest_image import (
    GuestImage,
    GuestUnavailableError,
    _copy_with_libs,
    _cpio_gz,
    build_python_guest,
    publish_layered,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
L1_INIT = HERE / "l1_init.sh"
L2_START = HERE / "l2_start.sh"
QEMU = "/usr/bin/qemu-system-x86_64"
#: What a `-kernel` boot of the pc machine reads. Debian's QEMU looks in /usr/share/qemu and
#: /usr/share/seabios (SeaBIOS comes from the seabios package): both are laid out.
FIRMWARE = (
    "/usr/share/seabios/bios-256k.bin", "/usr/share/seabios/bios.bin",
    "/usr/share/qemu/linuxboot_dma.bin", "/usr/share/qemu/linuxboot.bin",
    "/usr/share/qemu/kvmvapic.bin", "/usr/share/qemu/multiboot_dma.bin",
)  # fmt: skip
APPLETS = (
    "modprobe", "depmod", "rmmod", "lsmod", "hostname", "ln", "ps", "kill", "chmod", "cp", "rm",
    "tail", "wc", "sort", "dmesg", "seq", "timeout", "nproc", "xargs", "mv", "touch", "printf",
    "awk", "date", "env", "which",
)  # fmt: skip


@dataclass(frozen=True)
class LabImage:
    kernel: Path  # L1 and L2 boot the same Debian cloud kernel
    initrd: Path  # L1's
    l2_initrd: Path
    kernel_package: str
    built: bool
    seconds: float


def cache_root() -> Path:
    env = os.environ.get("NESTCTL_LAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nestctl-lab"


def _sources_digest(h: hashlib._Hash) -> None:
    """Everything the .pyz is built from (a changed line of nestctl is a new image)."""
    for base in (REPO / "src" / "nestctl", REPO / "packaging"):
        for path in sorted(base.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode())
                h.update(path.read_bytes())
    h.update((REPO / "pyproject.toml").read_bytes())


def _key(guest: GuestImage) -> str:
    h = hashlib.sha256()
    h.update(str(guest.initrd).encode())  # the Python guest's folder name is its own input key
    for f in (L1_INIT, L2_START, Path(__file__)):
        h.update(f.read_bytes())
    st = os.stat(QEMU)
    h.update(f"{QEMU}:{st.st_size}:{st.st_mtime_ns}".encode())
    _sources_digest(h)
    return h.hexdigest()[:16]


def _build_pyz(out_dir: Path) -> Path:
    """nestctl's single-file build, made by the project's own script."""
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)}
    try:
        proc = subprocess.run(
            [str(REPO / "scripts" / "build-pyz"), "--out", str(out_dir)],
            capture_output=True, text=True, timeout=600, check=False, env=env,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuestUnavailableError(f"scripts/build-pyz: {exc}") from exc
    pyz = out_dir / "nestctl.pyz"
    if proc.returncode != 0 or not pyz.is_file():
        raise GuestUnavailableError(
            f"scripts/build-pyz: exit {proc.returncode}: {proc.stderr.strip()[-800:]}"
        )
    return pyz


def _lab_layer(guest: GuestImage, pyz: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="nestctl-lab-layer-") as tmp:
        stage = Path(tmp)
        _copy_with_libs(QEMU, stage)
        for name in FIRMWARE:
            src = Path(name)
            if not src.exists():
                raise GuestUnavailableError(f"{src} missing (apt-get install qemu-system-x86)")
            for folder in {src.parent.name, "qemu"}:
                dest = stage / "usr" / "share" / folder / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src.resolve(), dest)
        bindir = stage / "bin"
        bindir.mkdir()
        for applet in APPLETS:
            (bindir / applet).symlink_to("busybox")
        (stage / "usr" / "bin" / "env").symlink_to("/bin/busybox")  # the .pyz's #! line
        local = stage / "usr" / "local" / "bin"
        local.mkdir(parents=True)
        shutil.copy2(pyz, local / "nestctl")
        (local / "nestctl").chmod(0o755)
        l2 = stage / "l2"
        l2.mkdir()
        shutil.copy2(guest.kernel, l2 / "vmlinuz")
        shutil.copy2(guest.initrd, l2 / "initrd.gz")
        sbin = stage / "usr" / "local" / "sbin"
        sbin.mkdir(parents=True)
        shutil.copy2(L2_START, sbin / "lab-start-l2")
        (sbin / "lab-start-l2").chmod(0o755)
        shutil.copy2(L1_INIT, stage / "init")
        (stage / "init").chmod(0o755)
        (stage / "etc" / "os-release").parent.mkdir(exist_ok=True)
        (stage / "etc" / "os-release").write_text(
            'ID=nestctl-lab\nNAME="nestctl lab L1"\nPRETTY_NAME="nestctl lab L1 (KVM host)"\n'
        )
        out.write_bytes(_cpio_gz(stage))


def build_lab(root: Path | None = None) -> LabImage:
    """The cached lab image, building it first if needed (GuestUnavailableError says why not)."""
    start = time.monotonic()
    root = root or cache_root()
    if not os.path.exists(QEMU):
        raise GuestUnavailableError(f"{QEMU} missing (run scripts/install-debian-deps as root)")
    guest = build_python_guest(root / "e2e")
    target = root / f"l1-{_key(guest)}"
    initrd = target / "initrd.gz"
    if initrd.exists():
        return LabImage(
            guest.kernel, initrd, guest.initrd, guest.kernel_package, False,
            time.monotonic() - start,
        )  # fmt: skip

    def make_layer(work: Path, layer: Path) -> None:
        _lab_layer(guest, _build_pyz(work / "dist"), layer)

    publish_layered(
        guest.initrd,
        target,
        make_layer,
        "l1-*",
        is_ours=lambda old: re.fullmatch(r"l1-[0-9a-f]{16}", old.name) is not None,
    )
    return LabImage(
        guest.kernel, initrd, guest.initrd, guest.kernel_package, True, time.monotonic() - start
    )
