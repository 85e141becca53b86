"""node_exporter's textfile collector: DIR/nestctl.prom, replaced atomically.

Written through the door (`Host.write_atomic` on this machine's own root: DIR is where this
machine's node_exporter looks, whatever root is inspected): the text goes to a temporary file in
DIR (a name node_exporter ignores: it reads only `*.prom`), is given mode 0644, synced, then
renamed over nestctl.prom, and the directory is synced. Whatever fails, the temporary file is
removed: nothing but nestctl.prom is ever left in DIR. A rename replaces a symlink at nestctl.prom
rather than writing through it.
"""

from __future__ import annotations

import os
import re
import stat

from nestctl.machine import Host

FILENAME = "nestctl.prom"
MODE = 0o644
_TMP_PREFIX = ".nestctl.prom."
_TMP_SUFFIX = ".tmp"
#: Our own last-success line near the top of the previous file (run families come first).
_LAST_SUCCESS = re.compile(r"^nestctl_last_success_timestamp_seconds ([0-9]+(?:\.[0-9]+)?)$", re.M)
_HEAD_BYTES = 64 * 1024


class TextfileError(Exception):
    """DIR cannot hold the file (missing, not a directory, not writable...)."""


def _here() -> Host:
    return Host("/")


def check_dir(directory: str) -> None:
    directory = os.path.abspath(directory)
    host = _here()
    presence = host.exists(directory)
    if presence.present is not True:
        why = "No such file or directory" if presence.present is False else presence.describe()
        raise TextfileError(f"textfile directory {directory}: {why}")
    if not host.is_dir(directory):
        raise TextfileError(f"textfile directory {directory}: not a directory")


def previous_last_success(directory: str) -> float | None:
    """The last-success time our previous file recorded (None if absent or not ours)."""
    path = os.path.join(os.path.abspath(directory), FILENAME)
    host = _here()
    st = host.lstat(path)
    if st is None or not stat.S_ISREG(st.st_mode):  # a link is not followed, a FIFO not opened
        return None
    head = host.read(path, max_bytes=_HEAD_BYTES).text or ""
    match = _LAST_SUCCESS.search(head)
    return float(match.group(1)) if match else None


def remove_stale_temporaries(directory: str) -> None:
    """Temporary files a killed run (SIGKILL, power loss) could not remove."""
    host = _here()
    listing = host.listdir(os.path.abspath(directory))
    for path in listing.paths() if listing.ok else []:
        name = os.path.basename(path)
        ours = name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)
        st = host.lstat(path)
        if ours and st is not None and stat.S_ISREG(st.st_mode):
            try:
                host.remove(path)
            except OSError:
                continue


def write_textfile(directory: str, text: str) -> str:
    """Atomically replace DIR/nestctl.prom with `text`; returns its path."""
    check_dir(directory)
    target = os.path.join(os.path.abspath(directory), FILENAME)
    try:
        _here().write_atomic(target, text, mode=MODE, replace_symlink=True)
    except OSError as exc:
        raise TextfileError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
