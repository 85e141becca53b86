"""Boot the tiny guest under QEMU with `-accel tcg` (never KVM) and read its serial markers."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.guest_image import GuestImage

#: Kernel command line (qemu-e2e reference): noxsave and no5lvl avoid TCG hangs and aborts;
#: no_timer_check: on a loaded host TCG's timer ticks too late for the kernel's IO-APIC check,
#: which then panics ("IO-APIC + timer doesn't work!", seen with six guests at load 11).
APPEND = "console=ttyS0 quiet panic=-1 noxsave no5lvl no_timer_check"
BOOT_TIMEOUT = 90.0  # a TCG boot takes 3-5 s alone; several at once on 2 shared cores take longer
#: Guest variants (guest_init.sh reads the word from the kernel command line).
VARIANTS = {"no-test": "nestctl.no_test", "block-exec": "nestctl.block_exec"}


class BootFailedError(Exception):
    """A guest did not come up: QEMU exited or the markers never appeared."""


@dataclass
class BootedGuest:
    """One running guest: its -cpu, agent socket, and what its /init printed."""

    cpu: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    started: float
    markers: dict[str, str] = field(default_factory=dict)
    variant: str | None = None  # a key of VARIANTS
    boot_seconds: float | None = None

    @property
    def qga_socket(self) -> Path:
        return self.workdir / "qga.sock"

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(self.markers.get("FLAGS", "").split())

    @property
    def vendor(self) -> str:
        return self.markers.get("VENDOR", "")

    @property
    def dev_kvm(self) -> bool:
        return self.markers.get("DEVKVM") == "yes"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def argv(self) -> list[str]:
        return [str(a) for a in self.proc.args]  # type: ignore[union-attr]

    def poll_markers(self) -> bool:
        """Read the console; True once /init printed @@READY."""
        try:
            text = self.console.read_text(errors="replace")
        except FileNotFoundError:
            return False
        for line in text.splitlines():
            if line.startswith("@@"):
                key, _, value = line[2:].partition(" ")
                self.markers[key] = value.strip()
        return "READY" in self.markers

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_guest(
    image: GuestImage,
    cpu: str,
    variant: str | None = None,
    *,
    extra_args: Callable[[Path], list[str]] | None = None,
    append: str = "",
) -> BootedGuest:
    """`extra_args(workdir)`: more QEMU arguments (a screen, a QMP socket); `append`: more kernel
    command line."""
    # A short directory: unix socket paths are limited to 107 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="nestctl-e2e-"))
    argv = [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-m", "256",
        "-smp", "1",
        "-nodefaults",
        "-display", "none",
        "-no-reboot",
        "-serial", f"file:{workdir / 'console.log'}",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", " ".join(filter(None, (APPEND, VARIANTS.get(variant or ""), append))),
        "-cpu", cpu,
        "-device", "virtio-serial",
        "-chardev", f"socket,path={workdir / 'qga.sock'},server=on,wait=off,id=qga0",
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        *(extra_args(workdir) if extra_args else []),
    ]  # fmt: skip
    stderr = (workdir / "qemu.err").open("wb")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    finally:
        stderr.close()
    return BootedGuest(cpu, workdir, proc, time.monotonic(), variant=variant)


def wait_ready(guests: list[BootedGuest], timeout: float = BOOT_TIMEOUT) -> None:
    """Wait until every guest printed its markers; BootFailedError names the one that did not."""
    deadline = time.monotonic() + timeout
    waiting = list(guests)
    while waiting:
        for g in list(waiting):
            if g.poll_markers():
                g.boot_seconds = time.monotonic() - g.started
                waiting.remove(g)
            elif g.proc.poll() is not None:
                err = (g.workdir / "qemu.err").read_text(errors="replace").strip()
                raise BootFailedError(f"QEMU -cpu {g.cpu} exited with {g.proc.returncode}: {err}")
        if waiting and time.monotonic() > deadline:
            names = ", ".join(g.cpu for g in waiting)
            raise BootFailedError(
                f"no @@READY from the guest(s) -cpu {names} within {timeout:.0f} s"
            )
        if waiting:
            time.sleep(0.1)
