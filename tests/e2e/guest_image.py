"""Build (once, then cache) the tiny Linux guest the end-to-end tests boot under TCG.

Debian's cloud kernel unpacked from its .deb, and an initramfs with static busybox, the kernel's
virtio and KVM modules, qemu-ga with the shared libraries it needs, and `guest_init.sh` as /init.
The result is cached under ``~/.cache/nestctl-e2e/<key>/`` (``$NESTCTL_E2E_CACHE`` overrides), the
key covering the kernel package, the init script, this builder and the qemu-ga/busybox binaries.
Anything missing (tools, no network for apt-get download) raises `GuestUnavailableError` with the
reason, which the fixtures turn into a skip.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT_SCRIPT = HERE / "guest_init.sh"
KERNEL_META = "linux-image-cloud-amd64"
MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_console",
    "irqbypass",
    "kvm",
    "kvm-amd",
    "kvm-intel",
)
BUSYBOX_APPLETS = (
    "sh", "mount", "cat", "grep", "insmod", "poweroff", "sleep", "ls", "sed", "basename",
    "mkdir", "test", "[", "echo", "uname", "true", "false", "id", "stat", "cut", "tr", "head",
)  # fmt: skip
QEMU_GA = "/usr/sbin/qemu-ga"
BUSYBOX = "/bin/busybox"


class GuestUnavailableError(Exception):
    """The guest cannot be built here; the message says why (tests skip with it)."""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    kernel_package: str
    built: bool  # False when it came from the cache
    seconds: float


def cache_root() -> Path:
    env = os.environ.get("NESTCTL_E2E_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nestctl-e2e"


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 120) -> str:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuestUnavailableError(f"{' '.join(argv)}: {exc}") from exc
    if proc.returncode != 0:
        raise GuestUnavailableError(
            f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout


def _check_tools() -> None:
    missing = [t for t in ("qemu-system-x86_64", "cpio", "dpkg", "ldd") if not shutil.which(t)]
    missing += [p for p in (QEMU_GA, BUSYBOX) if not os.path.exists(p)]
    if missing:
        raise GuestUnavailableError(
            f"missing {', '.join(missing)} (run scripts/install-debian-deps as root)"
        )
    if shutil.which("file") and "statically linked" not in _run(["file", "-L", BUSYBOX]):
        raise GuestUnavailableError(f"{BUSYBOX} is not static (install busybox-static)")


def _kernel_package() -> str:
    """The versioned package behind the meta package, as apt offers it today."""
    out = _run(["apt-cache", "depends", KERNEL_META])
    for line in out.splitlines():
        m = re.match(r"\s*Depends:\s*(linux-image-\S+)", line)
        if m:
            return m.group(1)
    raise GuestUnavailableError(f"apt-cache depends {KERNEL_META}: no linux-image dependency")


def _kernel_deb(downloads: Path) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    try:
        package = _kernel_package()
    except GuestUnavailableError:
        debs = sorted(downloads.glob("linux-image-*.deb"))
        if debs:
            return debs[-1]  # offline: the one we downloaded before
        raise
    found = sorted(downloads.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    # Download into a private folder and rename: a concurrent test run never sees half a file.
    private = Path(tempfile.mkdtemp(prefix=".download-", dir=downloads))
    try:
        _run(["apt-get", "download", package], cwd=private, timeout=300)
        got = sorted(private.glob(f"{package}_*.deb"))
        if not got:
            raise GuestUnavailableError(f"apt-get download {package} gave no .deb")
        target = downloads / got[-1].name
        got[-1].rename(target)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    for old in downloads.glob("linux-image-*.deb"):
        if old != target:
            old.unlink(missing_ok=True)  # a kernel apt no longer offers
    return target


def _fingerprint(deb: Path) -> str:
    h = hashlib.sha256()
    h.update(deb.name.encode())
    for f in (INIT_SCRIPT, Path(__file__)):
        h.update(f.read_bytes())
    for p in (QEMU_GA, BUSYBOX):
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _copy_with_libs(binary: str, stage: Path) -> None:
    """Copy a dynamic binary and every library ldd names to the same paths in the stage."""
    paths = [binary]
    for line in _run(["ldd", binary]).splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            paths.append(m.group(1))
    for p in paths:
        dest = stage / p.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(p), dest)


def _cpio_gz(stage: Path) -> bytes:
    names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
    cpio = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        cwd=stage,
        input="\n".join([".", *names]).encode() + b"\n",
        capture_output=True,
        check=False,
    )
    if cpio.returncode != 0:
        raise GuestUnavailableError(f"cpio: {cpio.stderr.decode(errors='replace').strip()}")
    return gzip.compress(cpio.stdout, compresslevel=1)


def _build_initrd(kernel_tree: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="nestctl-initrd-") as tmp:
        stage = Path(tmp)
        for d in ("bin", "mods", "proc", "sys", "dev", "run", "tmp", "etc"):
            (stage / d).mkdir()
        shutil.copy2(BUSYBOX, stage / "bin" / "busybox")
        for applet in BUSYBOX_APPLETS:
            (stage / "bin" / applet).symlink_to("busybox")
        for name in MODULES:
            hits = list(kernel_tree.glob(f"lib/modules/*/kernel/**/{name}.ko"))
            if not hits:
                raise GuestUnavailableError(f"kernel module {name}.ko not in the kernel package")
            shutil.copy2(hits[0], stage / "mods" / f"{name}.ko")
        _copy_with_libs(QEMU_GA, stage)
        shutil.copy2(QEMU_GA, stage / "bin" / "qemu-ga")
        (stage / "etc" / "os-release").write_text(
            'ID=nestctl-e2e\nNAME="nestctl e2e guest"\nPRETTY_NAME="nestctl e2e guest"\n'
        )
        shutil.copy2(INIT_SCRIPT, stage / "init")
        (stage / "init").chmod(0o755)
        out.write_bytes(_cpio_gz(stage))


def build_guest(root: Path | None = None) -> GuestImage:
    """The cached guest, building it first if needed."""
    start = time.monotonic()
    root = root or cache_root()
    _check_tools()
    deb = _kernel_deb(root / "downloads")
    target = root / _fingerprint(deb)
    kernel, initrd = target / "vmlinuz", target / "initrd.gz"
    if kernel.exists() and initrd.exists():
        return GuestImage(kernel, initrd, deb.name, False, time.monotonic() - start)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        tree = work / "kernel"
        _run(["dpkg", "-x", str(deb), str(tree)], timeout=300)
        vmlinuz = sorted(tree.glob("boot/vmlinuz-*"))
        if not vmlinuz:
            raise GuestUnavailableError(f"{deb.name} holds no boot/vmlinuz-*")
        out = work / "out"
        out.mkdir()
        shutil.copy2(vmlinuz[0], out / "vmlinuz")
        _build_initrd(tree, out / "initrd.gz")
        try:
            out.rename(target)  # atomic: a concurrent build may have won, which is fine
        except OSError:
            if not (kernel.exists() and initrd.exists()):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for old in root.iterdir():
        if old.is_dir() and old != target and re.fullmatch(r"[0-9a-f]{16}", old.name):
            shutil.rmtree(old, ignore_errors=True)  # guests built from older inputs
    return GuestImage(kernel, initrd, deb.name, True, time.monotonic() - start)


# -- optional layer: Python in the guest (for `nestctl bench --vm`) ---------------------------
#
# A second cpio archive appended to the base initramfs (the kernel unpacks concatenated archives
# in order), so the base guest stays as it is and this layer is built and cached on its own.

PYTHON = "/usr/bin/python3.11"
PYTHON_LIB = "/usr/lib/python3.11"
#: Parts of the standard library a benchmark never needs (the reference's list, plus the 25 MB
#: static libpython under config-*, site-packages and the extra optimisation levels of .pyc files).
PYTHON_SKIP_DIRS = frozenset(
    {"test", "idlelib", "tkinter", "ensurepip", "lib2to3", "site-packages", "dist-packages"}
)


def _python_skip(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in PYTHON_SKIP_DIRS or n.startswith("config-3")}
    skip |= {n for n in names if ".opt-" in n and n.endswith(".pyc")}
    return skip


def _python_fingerprint(base: GuestImage) -> str:
    h = hashlib.sha256()
    h.update(str(base.initrd).encode())
    h.update(Path(__file__).read_bytes())
    for p in (PYTHON, PYTHON_LIB):
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _python_layer(out: Path) -> None:
    """Debian's python3.11, its shared libraries and a trimmed standard library, as cpio.gz."""
    with tempfile.TemporaryDirectory(prefix="nestctl-pylayer-") as tmp:
        stage = Path(tmp)
        _copy_with_libs(PYTHON, stage)
        lib = stage / PYTHON_LIB.lstrip("/")
        shutil.copytree(PYTHON_LIB, lib, symlinks=True, ignore=_python_skip)
        for ext in sorted((lib / "lib-dynload").glob("*.so")):
            _copy_with_libs(f"{PYTHON_LIB}/lib-dynload/{ext.name}", stage)  # libffi, libssl...
        (stage / "usr" / "bin" / "python3").symlink_to("python3.11")
        (stage / "var" / "tmp").mkdir(parents=True, exist_ok=True)
        out.write_bytes(_cpio_gz(stage))


def build_python_guest(root: Path | None = None) -> GuestImage:
    """The base guest plus Python 3.11 (cached beside it), for tests that run Python inside."""
    start = time.monotonic()
    root = root or cache_root()
    if not (os.path.exists(PYTHON) and os.path.isdir(PYTHON_LIB)):
        raise GuestUnavailableError(
            f"{PYTHON} or {PYTHON_LIB} missing (apt-get install python3.11)"
        )
    base = build_guest(root)
    target = root / f"python-{_python_fingerprint(base)}"
    initrd = target / "initrd.gz"
    if initrd.exists():
        return GuestImage(base.kernel, initrd, base.kernel_package, False, time.monotonic() - start)
    publish_layered(base.initrd, target, lambda _work, layer: _python_layer(layer), "python-*")
    return GuestImage(base.kernel, initrd, base.kernel_package, True, time.monotonic() - start)


def publish_layered(
    base_initrd: Path,
    target: Path,
    make_layer: Callable[[Path, Path], None],
    older: str,
    *,
    is_ours: Callable[[Path], bool] = lambda _path: True,
) -> None:
    """Publish `target/initrd.gz` = the base initrd + one more cpio.gz archive (the kernel reads
    them in turn), built in a scratch directory beside it and renamed into place atomically.

    `make_layer(work, layer)` writes the archive to `layer` (`work` is scratch space for it).
    Afterwards the directories matching `older` (and `is_ours`) other than `target` are removed:
    images built from older inputs.
    """
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-{target.name}-", dir=root))
    try:
        layer = work / "layer.cpio.gz"
        make_layer(work, layer)
        out = work / "out"
        out.mkdir()
        (out / "initrd.gz").write_bytes(base_initrd.read_bytes() + layer.read_bytes())
        try:
            out.rename(target)  # atomic: a concurrent build may have won, which is fine
        except OSError:
            if not (target / "initrd.gz").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for old in root.glob(older):
        if old.is_dir() and old != target and is_ours(old):
            shutil.rmtree(old, ignore_errors=True)
