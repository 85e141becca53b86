"""The e2e guest with a screen: a VGA card, QEMU's VNC server on a unix socket (with a password,
as Proxmox runs it), QMP, and a shell on the screen (tty1), for the console tests.

The base guest's /init stays as it is: a second cpio archive (`publish_layered`) adds
`/console_init`, which the kernel runs first (`rdinit=`); it starts `sh` on tty1 and then execs
the usual /init. The kernel prints its boot text on the screen (console=tty0) and keeps the
serial console last, so /init's @@ markers still reach the serial log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.guest_image import GuestImage, _cpio_gz, build_guest, cache_root, publish_layered
from tests.e2e.guest_vm import APPEND as GUEST_APPEND
from tests.e2e.guest_vm import BootedGuest, boot

CONSOLE_INIT = """#!/bin/sh
# rdinit of the console test guest: a shell on the screen (tty1), then the usual /init.
export PATH=/bin
mount -t devtmpfs dev /dev
(
    sleep 2
    echo "nestctl console ready" >/dev/tty1
    exec /bin/busybox setsid -c /bin/sh -i </dev/tty1 >/dev/tty1 2>&1
) </dev/console &
exec /init
"""
APPEND = "console=tty0 console=ttyS0 loglevel=6 rdinit=/console_init"


def build_console_guest(root: Path | None = None) -> GuestImage:
    root = root or cache_root()
    base = build_guest(root)
    key = hashlib.sha256(str(base.initrd).encode() + CONSOLE_INIT.encode()).hexdigest()[:16]
    target = root / f"console-{key}"
    initrd = target / "initrd.gz"
    if not initrd.exists():

        def layer(work: Path, out: Path) -> None:
            stage = work / "stage"
            stage.mkdir()
            script = stage / "console_init"
            script.write_text(CONSOLE_INIT)
            script.chmod(0o755)
            out.write_bytes(_cpio_gz(stage))

        publish_layered(base.initrd, target, layer, "console-*")
    return GuestImage(base.kernel, initrd, base.kernel_package, False, 0.0)


@dataclass
class ScreenGuest(BootedGuest):
    """A booted guest with a screen: its VNC and QMP sockets live in `sockets`."""

    sockets: Path = field(kw_only=True)

    @property
    def vnc_socket(self) -> Path:
        return self.sockets / "vnc.sock"

    @property
    def qmp_socket(self) -> Path:
        return self.sockets / "qmp.sock"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.sockets, ignore_errors=True)


def start_console_guest(image: GuestImage, cpu: str = "qemu64") -> ScreenGuest:
    # A short directory of its own: unix socket paths are limited to 107 bytes.
    sockets = Path(tempfile.mkdtemp(prefix="nestctl-vnc-"))
    screen = [
        "-device", "VGA",
        "-vnc", f"unix:{sockets / 'vnc.sock'},password=on",
        "-qmp", f"unix:{sockets / 'qmp.sock'},server=on,wait=off",
    ]  # fmt: skip
    workdir, proc, argv = boot(
        kernel=image.kernel,
        initrd=image.initrd,
        append=f"{GUEST_APPEND} {APPEND}",
        cpu=cpu,
        extra=screen,
    )
    return ScreenGuest(workdir, proc, argv, time.monotonic(), cpu=cpu, sockets=sockets)


def qmp(guest: ScreenGuest, command: str, **arguments: Any) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(guest.qmp_socket))
        stream = sock.makefile("rwb")
        stream.readline()
        reply: dict[str, Any] = {}
        for cmd, args in (("qmp_capabilities", {}), (command, arguments)):
            stream.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
            stream.flush()
            while True:
                reply = json.loads(stream.readline())
                if "return" in reply or "error" in reply:
                    break
        if "error" in reply:
            raise RuntimeError(f"QMP {command}: {reply['error']}")
        return reply["return"]


def screendump(guest: ScreenGuest) -> tuple[int, int, bytes]:
    """QEMU's own picture of the screen: (width, height, RGB bytes), through QMP `screendump`
    (PPM, its default format)."""
    path = guest.workdir / f"screen-{time.monotonic_ns()}.ppm"
    qmp(guest, "screendump", filename=str(path))
    data = path.read_bytes()
    with contextlib.suppress(OSError):
        path.unlink()
    # P6\n<w> <h>\n255\n<rgb>
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1
    if fields[0] != b"P6":
        raise ValueError("screendump is not a binary PPM")
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[pos : pos + width * height * 3]
