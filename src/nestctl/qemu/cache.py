"""QEMU's answers about -cpu values, kept per QEMU build so a run over thousands of VMs asks each
distinct value once, and later runs not at all.

One JSON file (nestctl's own state, not a file of the inspected host, so it is read directly and
not through `Host`): ``{"format": 1, "builds": {<identity>: {<accel> "\\n" <-cpu>: answer}}}``.
The identity (path, size, mtime, inode of the binary; see `cpuprobe.binary_identity`) changes when
QEMU is upgraded, and answers of an older build of the same binary are dropped then. A corrupt or
unreadable file is ignored and rewritten, never fatal; writes are atomic (temp file + rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestctl.qemu.cpuprobe import CpuAnswer

FORMAT = 1


def default_cache_path() -> Path:
    """$XDG_CACHE_HOME/nestctl/qemu-cpu.json, or ~/.cache/nestctl/qemu-cpu.json."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nestctl" / "qemu-cpu.json"


def _key(accel: str, cpu_arg: str) -> str:
    return f"{accel}\n{cpu_arg}"


class CpuAnswerCache:
    """Load lazily, `get`/`put` in memory, `save` once at the end of a run."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._builds: dict[str, dict[str, dict[str, Any]]] | None = None
        self._dirty = False
        self.problem: str | None = None  # why the file on disk was ignored, if it was

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        if self._builds is not None:
            return self._builds
        self._builds = {}
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._builds
        except (OSError, UnicodeDecodeError) as exc:
            self.problem = f"cannot read {self.path}: {exc}"
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
        from nestctl.qemu.cpuprobe import CpuAnswer  # noqa: PLC0415 - the two modules refer to each other

        record = self._load().get(identity, {}).get(_key(accel, cpu_arg))
        if record is None:
            return None
        try:
            return CpuAnswer.from_json(record)
        except (KeyError, TypeError, ValueError):
            return None  # a damaged record is asked again and overwritten

    def put(self, identity: str, accel: str, cpu_arg: str, answer: CpuAnswer) -> None:
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
        text = json.dumps({"format": FORMAT, "builds": self._builds}, indent=1, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".qemu-cpu.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror or exc}"
            return self.problem
        self._dirty = False
        return None
