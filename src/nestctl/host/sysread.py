"""Reads of small kernel files (sysfs values, /proc/<pid>/cmdline, pid files, DMI strings).

`Host.read` asks for up to 8 MiB by default; Python then allocates that much for every read (about
0.2 ms each, over a hundred reads per probe), and procfs sysctl files refuse so large a read with
ENOMEM. These files are at most a page or two; 64 KiB costs no more than 4 KiB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nestctl.machine import FileRead, Host

SMALL_READ = 64 * 1024


def read_small(host: Host, hostpath: str) -> FileRead:
    return host.read(hostpath, max_bytes=SMALL_READ)


def small_text(host: Host, hostpath: str) -> str | None:
    return host.read(hostpath, max_bytes=SMALL_READ).text
