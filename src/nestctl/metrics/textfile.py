"""node_exporter's textfile collector: DIR/nestctl.prom, replaced atomically.

The text goes to a temporary file in DIR (a name node_exporter ignores: it reads only `*.prom`),
is given mode 0644, synced, then renamed over nestctl.prom, and the directory is synced. Whatever
fails, the temporary file is removed: nothing but nestctl.prom is ever left in DIR. A rename
replaces a symlink at nestctl.prom rather than writing through it.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat

FILENAME = "nestctl.prom"
MODE = 0o644
_TMP_PREFIX = ".nestctl.prom."
_TMP_SUFFIX = ".tmp"
#: Our own last-success line near the top of the previous file (run families come first).
_LAST_SUCCESS = re.compile(rb"^nestctl_last_success_timestamp_seconds ([0-9]+(?:\.[0-9]+)?)$", re.M)
_HEAD_BYTES = 64 * 1024


class TextfileError(Exception):
    """DIR cannot hold the file (missing, not a directory, not writable...)."""


def check_dir(directory: str) -> None:
    try:
        st = os.stat(directory)
    except OSError as exc:
        raise TextfileError(f"textfile directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise TextfileError(f"textfile directory {directory}: not a directory")


def previous_last_success(directory: str) -> float | None:
    """The last-success time our previous file recorded (None if absent or not ours)."""
    path = os.path.join(directory, FILENAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _HEAD_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    match = _LAST_SUCCESS.search(head)
    return float(match.group(1)) if match else None


def remove_stale_temporaries(directory: str) -> None:
    """Temporary files a killed run (SIGKILL, power loss) could not remove."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            name = entry.name
            ours = name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)
            if ours and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def write_textfile(directory: str, text: str) -> str:
    """Atomically replace DIR/nestctl.prom with `text`; returns its path."""
    import tempfile  # noqa: PLC0415 - lazy: keep start-up fast

    check_dir(directory)
    target = os.path.join(directory, FILENAME)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=directory)
    except OSError as exc:
        raise TextfileError(f"cannot write in {directory}: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, MODE)
            data = text.encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise TextfileError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    _sync_dir(directory)
    return target


def _sync_dir(directory: str) -> None:
    """Make the rename durable (a crash right after must not bring back the old file)."""
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
