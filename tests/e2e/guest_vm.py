"""The one booter of test guests: QEMU with `-accel tcg` (never KVM), a serial console read for
`@@KEY value` markers, and a guest-agent socket. The end-to-end set boots its tiny guests with it,
the lab (tests/lab/stack.py) its L1 hosts."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.e2e.guest_image import GuestImage

#: Kernel command line (qemu-e2e reference): noxsave and no5lvl avoid TCG hangs and aborts;
#: no_timer_check: on a loaded host TCG's timer ticks too late for the kernel's IO-APIC check,
#: which then panics ("IO-APIC + timer doesn't work!", seen with six guests at load 11).
APPEND = "console=ttyS0 quiet panic=-1 noxsave no5lvl no_timer_check"
BOOT_TIMEOUT = 240.0  # a TCG boot takes 3-5 s alone; six at once on 2 shared cores under load
# (load average 20: all six missed 90 s) take minutes
#: Guest variants (guest_init.sh reads the word from the kernel command line).
VARIANTS = {"no-test": "nestctl.no_test", "block-exec": "nestctl.block_exec"}


class BootFailedError(Exception):
    """A guest did not come up: QEMU exited or the markers never appeared."""


@dataclass
class TcgGuest:
    """One running QEMU: its work directory (console, agent socket, pid file), its markers."""

    workdir: Path
    proc: subprocess.Popen[bytes]
    argv: list[str]
    started: float
    markers: dict[str, str] = field(default_factory=dict)
    boot_seconds: float | None = None

    @property
    def qga_socket(self) -> Path:
        return self.workdir / "qga.sock"

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "qemu.pid"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll_markers(self) -> bool:
        """Read the console; True once /init printed @@READY."""
        with contextlib.suppress(FileNotFoundError):
            for line in self.console.read_text(errors="replace").splitlines():
                if line.startswith("@@"):
                    key, _, value = line[2:].partition(" ")
                    self.markers[key] = value.strip()
        return "READY" in self.markers

    def qemu_errors(self) -> str:
        return (self.workdir / "qemu.err").read_text(errors="replace").strip()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def boot(
    *,
    kernel: Path,
    initrd: Path,
    append: str,
    cpu: str,
    memory: int = 256,
    prefix: str = "nestctl-e2e-",
    extra: Sequence[str] = (),
) -> tuple[Path, subprocess.Popen[bytes], list[str]]:
    """Start QEMU (TCG, one vCPU, no devices but the agent's serial port, a pid file, the
    console into a file); `extra` adds options (a name, a display). (workdir, process, argv)."""
    # A short directory: unix socket paths are limited to 107 bytes.
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    argv = [
        "qemu-system-x86_64",
        *extra,
        "-accel", "tcg",
        "-cpu", cpu,
        "-m", str(memory),
        "-smp", "1",
        "-nodefaults",
        "-display", "none",
        "-no-reboot",
        "-serial", f"file:{workdir / 'console.log'}",
        "-kernel", str(kernel),
        "-initrd", str(initrd),
        "-append", append,
        "-device", "virtio-serial",
        "-chardev", f"socket,id=qga0,path={workdir / 'qga.sock'},server=on,wait=off",
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        "-pidfile", str(workdir / "qemu.pid"),
    ]  # fmt: skip
    err = (workdir / "qemu.err").open("wb")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    finally:
        err.close()
    return workdir, proc, argv


G = TypeVar("G", bound=TcgGuest)


def wait_all(
    guests: Sequence[G],
    timeout: float,
    *,
    ready: Callable[[G], bool],
    fail: Callable[[str], Exception],
    name: Callable[[G], str],
    every: float = 0.1,
) -> None:
    """Until `ready(g)` holds for each guest (which records its boot time); `fail(message)` is
    raised for the first that exits, or for those still waiting at the deadline."""
    deadline = time.monotonic() + timeout
    waiting = list(guests)
    while waiting:
        for g in list(waiting):
            if g.proc.poll() is not None:
                raise fail(f"{name(g)} exited with {g.proc.returncode}: {g.qemu_errors()}")
            if ready(g):
                g.boot_seconds = time.monotonic() - g.started
                waiting.remove(g)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(name(g) for g in waiting)
            raise fail(f"{names}: not ready within {timeout:.0f} s")
        if waiting:
            time.sleep(every)


@dataclass
class BootedGuest(TcgGuest):
    """A tiny end-to-end guest: its -cpu and what its /init printed."""

    cpu: str = field(kw_only=True)
    variant: str | None = field(default=None, kw_only=True)  # a key of VARIANTS

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(self.markers.get("FLAGS", "").split())

    @property
    def vendor(self) -> str:
        return self.markers.get("VENDOR", "")

    @property
    def dev_kvm(self) -> bool:
        return self.markers.get("DEVKVM") == "yes"


def start_guest(image: GuestImage, cpu: str, variant: str | None = None) -> BootedGuest:
    append = f"{APPEND} {VARIANTS[variant]}" if variant else APPEND
    workdir, proc, argv = boot(kernel=image.kernel, initrd=image.initrd, append=append, cpu=cpu)
    return BootedGuest(workdir, proc, argv, time.monotonic(), cpu=cpu, variant=variant)


def wait_ready(guests: list[BootedGuest], timeout: float = BOOT_TIMEOUT) -> None:
    """Wait until every guest printed its markers; BootFailedError names the one that did not."""

    def fail(message: str) -> Exception:
        return BootFailedError(f"no @@READY: {message}")

    wait_all(guests, timeout, ready=BootedGuest.poll_markers, fail=fail, name=_cpu_name)


def _cpu_name(g: BootedGuest) -> str:
    return f"QEMU -cpu {g.cpu}"
