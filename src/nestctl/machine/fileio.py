"""Low-level file access for the door: bounded reads that never block, and entry-exact copies.

Only `nestctl.machine.door` uses these; everything else reads and writes through `Host`.
"""

from __future__ import annotations

import contextlib
import os
import stat

from nestctl.machine.reads import FileRead, ReadStatus, status_of_oserror

_CHUNK = 65536
# Never block on a FIFO that slipped past the type check, never make a terminal ours, never
# translate newlines (Windows guests run `nestctl guest` through this class too).
OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def read_upto(fd: int, limit: int) -> bytes:
    """Read at most `limit` bytes in 64 KiB chunks.

    One big read(limit) makes Python allocate `limit` bytes every time, and procfs sysctl files
    refuse such a read with ENOMEM.
    """
    chunks = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_last(fd: int, size: int, limit: int) -> tuple[bytes, bool]:
    """The last `limit` bytes of an open file, and whether anything before them was skipped."""
    if size > limit:
        os.lseek(fd, size - limit, os.SEEK_SET)
        return read_upto(fd, limit), True
    # The size can be 0 or stale (procfs, a growing log): read forward, keeping only the end.
    kept = bytearray()
    skipped = False
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            if len(kept) > limit:
                return bytes(kept[len(kept) - limit :]), True
            return bytes(kept), skipped
        kept += chunk
        if len(kept) > 2 * limit:
            del kept[: len(kept) - limit]
            skipped = True


class UnsafeWriteError(OSError):
    """A write that would be unsafe: the path is not the regular file the plan expected."""


def copy_entry(src: str, dest: str, st: os.stat_result) -> None:
    """Copy one directory entry as it is: a symlink as a symlink, a regular file with its mode,
    owner and times (never following a link). Other kinds are refused, unopened."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
        with contextlib.suppress(PermissionError):  # only root may give a link away
            os.lchown(dest, st.st_uid, st.st_gid)
        return
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeWriteError(f"{src} {file_kind(st.st_mode)}: not copied")
    src_fd = os.open(src, OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0))
    try:
        dest_fd = os.open(
            dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        try:
            while chunk := os.read(src_fd, _CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dest_fd, view) :]
            with contextlib.suppress(PermissionError):  # only root may give a file away
                os.fchown(dest_fd, st.st_uid, st.st_gid)
            os.fchmod(dest_fd, stat.S_IMODE(st.st_mode))
            os.fsync(dest_fd)
        finally:
            os.close(dest_fd)
    finally:
        os.close(src_fd)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is not a regular file"


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def failed_read(hostpath: str, exc: OSError) -> FileRead:
    status = status_of_oserror(exc)
    error = None if status is ReadStatus.MISSING else exc.strerror or str(exc)
    return FileRead(hostpath, status, error=error)
