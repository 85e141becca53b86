"""QEMU's answers about -cpu values, kept per QEMU build so a run over thousands of VMs asks each
distinct value once, and later runs not at all.

One JSON file, nestctl's own state on this machine (not a file of the inspected host: read and
written through a `Host` of this machine's own root):
``{"format": 1, "builds": {<identity>: {<accel> "\\n" <-cpu>: answer}}}``.
The identity (path, size, mtime, inode of the binary; see `cpuprobe.binary_identity`) changes when
QEMU is upgraded, and answers of an older build of the same binary are dropped then. A corrupt or
unreadable file is ignored and rewritten, never fatal; writes are atomic (temp file + rename).

The file decides what nestctl tells an admin, so it is never trusted blindly. Run as root it lives
in root's own /var/cache/nestctl, whatever XDG_CACHE_HOME `sudo` preserved from a user. It is read
only when it and its directory belong to us (or root) and nobody else may write them, it is not a
symlink and not huge; and each record must be a QEMU answer of the right shape (flags with no
refusal, or a refusal with no flags), else it is asked again.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from nestctl.machine import Host, ReadStatus
from nestctl.qemu.answer import CpuAnswer, is_cpu_refusal

FORMAT = 1
#: Root's cache: a system directory no user's environment can point elsewhere.
ROOT_CACHE = Path("/var/cache/nestctl/qemu-cpu.json")
#: A cache larger than this is not ours (thousands of answers take a few hundred KiB).
MAX_CACHE_BYTES = 4 * 1024 * 1024
_MAX_TEXT = 4096  # longest string a record may hold


def _euid() -> int:
    return getattr(os, "geteuid", lambda: 0)()


def default_cache_path(euid: int | None = None) -> Path:
    """/var/cache/nestctl/qemu-cpu.json for root; else $XDG_CACHE_HOME/nestctl/qemu-cpu.json or
    ~/.cache/nestctl/qemu-cpu.json."""
    if (_euid() if euid is None else euid) == 0:
        return ROOT_CACHE
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nestctl" / "qemu-cpu.json"


def untrusted(st: os.stat_result, euid: int, what: str) -> str | None:
    """Why a file or directory with this stat may not be trusted by `euid`, or None."""
    if st.st_uid not in (euid, 0):
        return f"{what} belongs to uid {st.st_uid}, not to uid {euid} or root"
    if st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
        return f"{what} may be written by other users (mode {st.st_mode & 0o7777:04o})"
    return None


def _str_or_none(value: object) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= _MAX_TEXT)


def valid_record(record: dict[str, Any], accel: str, cpu_arg: str) -> bool:
    """Whether a cached record is a QEMU answer of the documented shape for this key."""
    flags = [record.get(k, "missing") for k in ("vmx", "svm", "hypervisor")]
    error = record.get("error")
    if error is None:
        shape_ok = all(isinstance(f, bool) for f in flags)  # an answer carries every flag
    else:
        shape_ok = isinstance(error, str) and 0 < len(error) <= _MAX_TEXT
        shape_ok = shape_ok and all(f is None for f in flags)  # a refusal carries none
        # Older nestctl cached any QEMU failure as a refusal ("Failed to bind socket"): only
        # QEMU's words about the CPU are kept.
        shape_ok = shape_ok and is_cpu_refusal(str(error).split("; ", 1)[0])
    source = record.get("source")
    lists_ok = all(
        isinstance(record.get(k, []), list)
        and all(isinstance(x, str) and len(x) <= _MAX_TEXT for x in record.get(k, []))
        for k in ("filtered", "dropped", "notes")
    )
    return (
        shape_ok
        and lists_ok
        and isinstance(source, str)
        and source.startswith("qemu ")  # the table's answers are never cached
        and record.get("accel") == accel
        and record.get("asked") in (None, cpu_arg)
        and record.get("unasked") is None  # "could not ask" is never kept
        and all(_str_or_none(record.get(k)) for k in ("vendor", "qemu_version", "cpu_arg"))
    )


def _key(accel: str, cpu_arg: str) -> str:
    return f"{accel}\n{cpu_arg}"


class CpuAnswerCache:
    """Load lazily, `get`/`put` in memory, `save` once at the end of a run."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, euid: int | None = None
    ) -> None:
        self.euid = _euid() if euid is None else euid
        self.path = Path(path) if path is not None else default_cache_path(self.euid)
        self._builds: dict[str, dict[str, dict[str, Any]]] | None = None
        self._dirty = False
        self._unsafe = False  # the directory is not ours alone: never write there
        self.problem: str | None = None  # why the file on disk was ignored, if it was
        self._host = Host()  # nestctl's own cache, on this machine whatever root is inspected

    def _dir_problem(self) -> str | None:
        parent = str(self.path.parent)
        presence = self._host.exists(parent)
        if presence.present is False:
            return None
        st = self._host.stat(parent) if presence.present else None
        if st is None:
            return f"cannot check {parent}: {presence.describe()}"
        return untrusted(st, self.euid, parent)

    def _read_trusted(self) -> str | None:
        """The file's text if it may be trusted; None (and `problem` set) otherwise."""
        dir_problem = self._dir_problem()
        if dir_problem is not None:
            self._unsafe = True
            self.problem = f"ignored {self.path}: {dir_problem}"
            return None
        path = str(self.path)
        read = self._host.read_trusted(
            path,
            max_bytes=MAX_CACHE_BYTES,
            why_not=lambda st: untrusted(st, self.euid, path),
        )
        if read.status is ReadStatus.OK:
            return read.text
        if read.status is ReadStatus.MISSING:
            return None
        if read.status is ReadStatus.NOT_A_FILE:
            self.problem = f"ignored {path} is not a regular file"
        elif read.status is ReadStatus.TRUNCATED:
            self.problem = f"ignored {path} is larger than {MAX_CACHE_BYTES} bytes"
        elif read.status is ReadStatus.UNTRUSTED:
            self.problem = f"ignored {read.error}"
        else:  # a symlink (never followed), no permission, an I/O error
            self.problem = f"cannot read {path}: {read.error}"
            return None
        self._dirty = True  # replace it with good content at the next save
        return None

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        if self._builds is not None:
            return self._builds
        self._builds = {}
        raw = self._read_trusted()
        if raw is None:
            return self._builds
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("unknown format")  # noqa: TRY301 - one path for every bad file
            builds = data["builds"]
            if not isinstance(builds, dict):
                raise TypeError("builds is not an object")  # noqa: TRY301
            for identity, entries in builds.items():
                if isinstance(identity, str) and isinstance(entries, dict):
                    good = {k: v for k, v in entries.items() if isinstance(v, dict)}
                    self._builds[identity] = good
        except (ValueError, KeyError, TypeError) as exc:
            self.problem = f"ignored corrupt cache {self.path}: {exc}"
            self._builds = {}
            self._dirty = True  # rewrite it with good content at the next save
        return self._builds

    def get(self, identity: str, accel: str, cpu_arg: str) -> CpuAnswer | None:

        record = self._load().get(identity, {}).get(_key(accel, cpu_arg))
        if record is None or not valid_record(record, accel, cpu_arg):
            return None  # a damaged or forged record is asked again and overwritten
        try:
            return CpuAnswer.from_json(record)
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, identity: str, accel: str, cpu_arg: str, answer: CpuAnswer) -> None:
        if answer.unasked is not None or not answer.source.startswith("qemu "):
            return  # only QEMU's own answers are kept; the table is asked anew each time
        builds = self._load()
        binary = identity.split("|", 1)[0]
        for old in [i for i in builds if i != identity and i.split("|", 1)[0] == binary]:
            del builds[old]  # an older build of the same binary: its answers are stale
        builds.setdefault(identity, {})[_key(accel, cpu_arg)] = answer.to_json()
        self._dirty = True

    def save(self) -> str | None:
        """Write the file atomically if anything changed; the reason it could not, or None.

        A cache that cannot be written (read-only home) costs speed only, never the answer.
        """
        if not self._dirty or self._builds is None:
            return None
        if self._unsafe:
            return self.problem
        text = json.dumps(
            {"format": FORMAT, "builds": self._builds}, indent=1, sort_keys=True, allow_nan=False
        )
        try:
            self._host.make_dirs(str(self.path.parent))
            problem = self._dir_problem()  # it may have been created by someone else
            if problem is not None:
                self.problem = f"not written: {problem}"
                return self.problem
            # Our own file, 0600; a link planted at the path is replaced, never followed.
            self._host.write_atomic(str(self.path), text + "\n", mode=0o600, replace_symlink=True)
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror or exc}"
            return self.problem
        self._dirty = False
        return None
