"""The one door to the machine: every file read, file write and command goes through `Host`.

A `Host` is rooted at a directory (``--root``, default ``/``). Paths given to it are always
host-absolute (``/proc/cpuinfo``); it maps them under its root. Commands run only when the root is
``/``; under any other root they are recorded instead, so tests and collected snapshots exercise the
very same code paths as a live host without touching it.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

if TYPE_CHECKING:
    from pathlib import Path

#: Largest file we read: sysfs and config files are small; a huge file is a mistake, not data.
MAX_READ_BYTES = 8 * 1024 * 1024


class ReadStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    UNREADABLE = "unreadable"
    NOT_A_FILE = "not-a-file"


class FileRead(NamedTuple):
    """What reading one host file gave: text, or why there is none (missing is not unreadable)."""

    path: str
    status: ReadStatus
    text: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ReadStatus.OK


class CommandStatus(StrEnum):
    OK = "ok"  # ran, exit code accepted
    FAILED = "failed"  # ran, exit code not accepted
    NOT_FOUND = "not-found"  # the program is not installed (126/127 territory)
    TIMEOUT = "timeout"
    RECORDED = "recorded"  # not run: the host is not live, the command went into the plan


class CommandResult(NamedTuple):
    argv: tuple[str, ...]
    status: CommandStatus
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is CommandStatus.OK

    def describe(self) -> str:
        """One line naming the command and how it ended, with stderr indented (for messages)."""
        cmd = " ".join(self.argv)
        if self.status is CommandStatus.NOT_FOUND:
            return f"{cmd}: command not found"
        if self.status is CommandStatus.TIMEOUT:
            return f"{cmd}: timed out after {self.duration:.1f} s"
        if self.status is CommandStatus.RECORDED:
            return f"{cmd}: recorded, not run"
        text = f"{cmd}: exit code {self.rc}"
        err = self.stderr.strip()
        if err:
            text += "\n" + "\n".join("    " + line for line in err.splitlines())
        return text


class Runner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult: ...


def _read_upto(fh: BinaryIO, limit: int) -> bytes:
    """Read at most `limit` bytes in 64 KiB chunks.

    One big read(limit) makes Python allocate `limit` bytes every time, and procfs sysctl files
    refuse such a read with ENOMEM.
    """
    chunks = []
    left = limit
    while left > 0:
        chunk = fh.read(min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class SystemRunner:
    """Runs commands for real. argv only, never a shell string."""

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult:
        import subprocess  # noqa: PLC0415 - only commands that really run pay for it

        args = tuple(argv)
        start = time.monotonic()
        try:
            proc = subprocess.run(
                args,
                input=stdin.encode() if stdin is not None else None,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            return CommandResult(args, CommandStatus.NOT_FOUND, duration=time.monotonic() - start)
        except subprocess.TimeoutExpired:
            return CommandResult(args, CommandStatus.TIMEOUT, duration=time.monotonic() - start)
        except OSError as exc:  # permission denied on the binary and the like
            return CommandResult(
                args, CommandStatus.NOT_FOUND, stderr=str(exc), duration=time.monotonic() - start
            )
        status = CommandStatus.OK if proc.returncode in ok_codes else CommandStatus.FAILED
        if proc.returncode in (126, 127) and status is CommandStatus.FAILED:
            status = CommandStatus.NOT_FOUND
        return CommandResult(
            args,
            status,
            proc.returncode,
            _decode(proc.stdout),
            _decode(proc.stderr),
            time.monotonic() - start,
        )


Responder = Callable[[tuple[str, ...]], CommandResult | None]


class RecordingRunner:
    """Records commands instead of running them.

    A `respond` callback may answer a command (and act on a fake tree, as a real `modprobe` would
    change sysfs); commands it does not answer come back as RECORDED.
    """

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond = respond
        self.calls: list[tuple[str, ...]] = []

    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        if self.respond is not None:
            answer = self.respond(args)
            if answer is not None:
                return answer
        return CommandResult(args, CommandStatus.RECORDED)


class ManifestEntry(NamedTuple):
    """One thing the tool read or ran, for `--debug` and snapshots."""

    kind: str  # "read", "glob", "run", "write"
    target: str
    outcome: str


class Machine(Protocol):
    """What probes need from a machine: `Host` locally, or a guest reached through its agent."""

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead: ...

    def exists(self, hostpath: str) -> bool: ...

    def listdir(self, hostpath: str) -> list[str] | None: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult: ...


class Host:
    """A machine seen through a root directory. See the module docstring."""

    def __init__(
        self,
        root: str | os.PathLike[str] = "/",
        *,
        runner: Runner | None = None,
        euid: int | None = None,
    ) -> None:
        # Strings and os.path, not pathlib: importing pathlib costs more than a whole host probe.
        self.root = os.fspath(root)
        # The file system's root is live: "/" here, the system drive's root on Windows, where
        # `nestctl guest` runs inside Windows guests.
        self.live = os.path.realpath(self.root) == os.path.realpath(os.sep)
        self.runner: Runner = runner or (SystemRunner() if self.live else RecordingRunner())
        # Windows (a guest running `nestctl guest`) has no geteuid; admin rights are checked there.
        self.euid = getattr(os, "geteuid", lambda: 0)() if euid is None else euid
        self.manifest: list[ManifestEntry] = []

    def __repr__(self) -> str:
        return f"Host(root={self.root!r}, live={self.live})"

    # -- paths -----------------------------------------------------------------------------

    def real(self, hostpath: str) -> str:
        """The real path (a string) of a host-absolute path under this root."""
        return os.path.join(self.root, hostpath.lstrip("/"))

    def path(self, hostpath: str) -> Path:
        """The real path of a host-absolute path under this root, as a `Path`."""
        from pathlib import Path  # noqa: PLC0415 - see __init__

        return Path(self.real(hostpath))

    def hostpath(self, real: str | os.PathLike[str]) -> str:
        """Inverse of `path`: the host-absolute path of a real path under the root."""
        rel = os.path.relpath(real, self.root)
        return "/" if rel == "." else "/" + rel

    def root_problem(self) -> str | None:
        """Why this root cannot be inspected at all, or None."""
        if not os.path.exists(self.root):
            return f"root directory {self.root} does not exist"
        if not os.path.isdir(self.root):
            return f"root {self.root} is not a directory"
        return None

    # -- reads -----------------------------------------------------------------------------

    def read(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        # A plain string join, not pathlib: a cluster run reads thousands of small files.
        real = self.real(hostpath)
        try:
            with open(real, "rb", buffering=0) as fh:
                data = _read_upto(fh, max_bytes)
        except FileNotFoundError:
            result = FileRead(hostpath, ReadStatus.MISSING)
        except IsADirectoryError:
            result = FileRead(hostpath, ReadStatus.NOT_A_FILE, error="is a directory")
        except NotADirectoryError:
            result = FileRead(hostpath, ReadStatus.MISSING)
        except OSError as exc:
            status = ReadStatus.MISSING if exc.errno == errno.ENOENT else ReadStatus.UNREADABLE
            result = FileRead(hostpath, status, error=exc.strerror or str(exc))
        else:
            result = FileRead(hostpath, ReadStatus.OK, _decode(data))
        self.manifest.append(ManifestEntry("read", hostpath, result.status.value))
        return result

    def read_text(self, hostpath: str) -> str | None:
        """The file's text, or None when it is missing or unreadable (use `read` to tell apart)."""
        return self.read(hostpath).text

    def exists(self, hostpath: str) -> bool:
        return os.path.lexists(self.real(hostpath))

    def is_dir(self, hostpath: str) -> bool:
        return os.path.isdir(self.real(hostpath))

    def listdir(self, hostpath: str) -> list[str] | None:
        """Sorted entry names of a directory, or None when it is missing or unreadable."""
        try:
            names = sorted(os.listdir(self.real(hostpath)))
        except OSError:
            self.manifest.append(ManifestEntry("list", hostpath, "missing"))
            return None
        self.manifest.append(ManifestEntry("list", hostpath, f"{len(names)} entries"))
        return names

    def glob(self, hostdir: str, pattern: str = "*") -> list[str]:
        """Host-absolute paths of entries in `hostdir` matching `pattern`, sorted by name."""
        names = self.listdir(hostdir) or []
        base = hostdir.rstrip("/")
        return [f"{base}/{n}" for n in names if fnmatch.fnmatchcase(n, pattern)]

    def readlink(self, hostpath: str) -> str | None:
        try:
            return os.readlink(self.real(hostpath))
        except OSError:
            return None

    def stat(self, hostpath: str) -> os.stat_result | None:
        try:
            return os.stat(self.real(hostpath))
        except OSError:
            return None

    def find_program(self, name: str) -> str | None:
        """Host path of an executable, searched in the usual system directories under the root."""
        if self.live:
            import shutil  # noqa: PLC0415 - shutil is slow to import and rarely needed

            return shutil.which(name)
        for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            candidate = f"{d}/{name}"
            real = self.real(candidate)
            if os.path.isfile(real) and os.access(real, os.X_OK):
                return candidate
        return None

    # -- commands --------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        result = self.runner(argv, timeout=timeout, stdin=stdin, ok_codes=ok_codes)
        self.manifest.append(ManifestEntry("run", " ".join(argv), result.status.value))
        return result

    # -- writes ----------------------------------------------------------------------------

    @property
    def is_admin(self) -> bool:
        return self.euid == 0

    def writable_dir(self, hostdir: str) -> str | None:
        """Why files cannot be created in `hostdir` (read-only, no permission), or None."""
        probe_dir = self.real(hostdir)
        while not os.path.exists(probe_dir) and probe_dir != os.path.dirname(probe_dir):
            probe_dir = os.path.dirname(probe_dir)
        try:
            st = os.statvfs(probe_dir)
        except OSError as exc:
            return f"{hostdir}: {exc.strerror}"
        if st.f_flag & os.ST_RDONLY:
            return f"{hostdir} is on a read-only file system"
        if not os.access(probe_dir, os.W_OK):
            return f"{hostdir}: permission denied"
        return None

    def write_atomic(self, hostpath: str, text: str, *, mode: int | None = None) -> None:
        """Write a file we own: temp file in the same directory, same mode, fsync, rename."""
        import tempfile  # noqa: PLC0415 - writes are rare; keep start-up fast

        real = self.real(hostpath)
        parent = os.path.dirname(real)
        os.makedirs(parent, exist_ok=True)
        if mode is None:
            try:
                mode = os.stat(real).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
        name = os.path.basename(real)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._fsync_dir(parent)
        self.manifest.append(ManifestEntry("write", hostpath, "ok"))

    def backup(self, hostpath: str, backup_dir: str, stamp: str) -> str | None:
        """Copy `hostpath` to `<backup_dir>/<stamp><hostpath>`; returns the backup's host path.

        Backups go outside the directory they came from: a copy left in /etc/modprobe.d ending in
        .conf would be read by modprobe itself.
        """
        import shutil  # noqa: PLC0415 - writes are rare; keep start-up fast

        src = self.real(hostpath)
        if not os.path.exists(src):
            return None
        dest_host = f"{backup_dir.rstrip('/')}/{stamp}{hostpath}"
        dest = self.real(dest_host)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(src, dest)
        self.manifest.append(ManifestEntry("write", dest_host, "backup"))
        return dest_host

    def remove(self, hostpath: str) -> None:
        real = self.real(hostpath)
        os.unlink(real)
        self._fsync_dir(os.path.dirname(real))
        self.manifest.append(ManifestEntry("write", hostpath, "removed"))

    @staticmethod
    def _fsync_dir(real_dir: str) -> None:
        try:
            fd = os.open(real_dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
