"""Reading a small file the user named on the command line or in the environment (a secret, the
targets config, a bench result): outside `--root`, so not through `Host`, yet just as hostile.

Opened without blocking and checked on the open descriptor (no race with a swap): a FIFO would
block the read forever and a device never ends, so anything but a regular file is refused before
one byte is read, and a file over the limit is refused rather than cut.
"""

from __future__ import annotations

import os
import stat


class UserFileError(Exception):
    """The file cannot be used; the message names it and says why (one line)."""


def read_user_file(path: str | os.PathLike[str], max_bytes: int, *, what: str = "file") -> bytes:
    """The whole content of a regular file of at most `max_bytes`.

    FileNotFoundError passes through (callers decide whether a missing file is an error).
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UserFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserFileError(f"{name}: not a regular file")
        if info.st_size > max_bytes:
            raise UserFileError(f"{name}: too large for a {what} ({info.st_size} bytes)")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:  # a file that grows while read is still bounded
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UserFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise UserFileError(f"{name}: too large for a {what} (over {max_bytes} bytes)")
    return b"".join(chunks)
