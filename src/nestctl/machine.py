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
import stat
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from pathlib import Path

#: Largest file we read: sysfs and config files are small; a huge file is a mistake, not data.
MAX_READ_BYTES = 8 * 1024 * 1024


class ReadStatus(StrEnum):
    """How a probe of one path ended: a fact (OK, MISSING) or unknown with its reason.

    Shared by reads, existence checks and directory listings. Only OK and MISSING are answers;
    every other status means "could not check", which callers must never turn into "no".
    """

    OK = "ok"
    MISSING = "missing"
    UNREADABLE = "unreadable"  # an I/O error or anything else that stopped the read
    NOT_PERMITTED = "not-permitted"  # EACCES/EPERM: another user (root) could check
    TIMED_OUT = "timed-out"
    COULD_NOT_RUN = "could-not-run"  # the tool or agent that would check could not be used
    TRUNCATED = "truncated"  # larger than the read limit: `text` holds only part of it
    NOT_A_FILE = "not-a-file"  # not the kind asked for: a directory, FIFO or device to `read`

    @property
    def known(self) -> bool:
        """True for a checked answer (OK or MISSING)."""
        return self is ReadStatus.OK or self is ReadStatus.MISSING


def _no_truth_value(record: object) -> bool:
    # Probe records are never true or false on their own: "if host.exists(p)" would make
    # "could not check" read as "no". Callers say which of `present`/`ok`/`names` they mean.
    raise TypeError(f"{type(record).__name__} has no truth value; use its status")


class FileRead(NamedTuple):
    """What reading one host file gave: text, or why there is none (missing is not unreadable).

    `text` is set for OK and for TRUNCATED (then only the part read: the start for `read`,
    the end for `read_tail`).
    """

    path: str
    status: ReadStatus
    text: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ReadStatus.OK

    def __bool__(self) -> bool:
        return _no_truth_value(self)

    def describe(self) -> str:
        """`path: status (error)` for messages."""
        return _describe(self.path, self.status, self.error)


class Record:
    """A small immutable record: slots, equality, hash and repr by field.

    Not a NamedTuple: creating a NamedTuple class costs about 0.25 ms at import, and
    `nestctl host --json` must start fast. Subclasses name their fields in `__slots__` and set
    them with `_set` in `__init__`.
    """

    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Record)
            and type(other) is type(self)
            and (self._values() == other._values())
        )

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._values().items())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values().items())
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return _rebuild, (type(self), self._values())

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _rebuild(cls: type[Record], values: dict[str, object]) -> Record:
    """Unpickle a `Record` (results cross a fork in the tests)."""
    record = object.__new__(cls)
    record._set(**values)
    return record


class Presence(Record):
    """Whether a path exists: `present` is True/False when checked, None when it could not be."""

    __slots__ = ("error", "path", "status")
    path: str
    status: ReadStatus  # OK: present, MISSING: absent, anything else: unknown and why
    error: str | None

    def __init__(self, path: str, status: ReadStatus, error: str | None = None) -> None:
        self._set(path=path, status=status, error=error)

    @property
    def present(self) -> bool | None:
        if self.status is ReadStatus.OK:
            return True
        if self.status is ReadStatus.MISSING:
            return False
        return None

    @property
    def known(self) -> bool:
        return self.status.known

    def __bool__(self) -> bool:
        return _no_truth_value(self)

    def describe(self) -> str:
        return _describe(self.path, self.status, self.error)


class Listing(Record):
    """The entries of one directory (sorted names), or why there are none.

    `names` is empty unless `status` is OK; a MISSING directory is a checked "no entries",
    any other status is unknown.
    """

    __slots__ = ("error", "names", "path", "status")
    path: str
    status: ReadStatus
    names: tuple[str, ...]
    error: str | None

    def __init__(
        self,
        path: str,
        status: ReadStatus,
        names: tuple[str, ...] = (),
        error: str | None = None,
    ) -> None:
        self._set(path=path, status=status, names=names, error=error)

    @property
    def ok(self) -> bool:
        return self.status is ReadStatus.OK

    def paths(self) -> list[str]:
        """The entries as host-absolute paths."""
        base = self.path.rstrip("/")
        return [f"{base}/{n}" for n in self.names]

    def __bool__(self) -> bool:
        return _no_truth_value(self)

    def describe(self) -> str:
        return _describe(self.path, self.status, self.error)


def _describe(path: str, status: ReadStatus, error: str | None) -> str:
    text = f"{path}: {status.value}"
    return f"{text} ({error})" if error else text


def status_of_oserror(exc: OSError) -> ReadStatus:
    """The status an OSError from a file operation means."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return ReadStatus.MISSING
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ReadStatus.NOT_PERMITTED
    if exc.errno == errno.EISDIR:
        return ReadStatus.NOT_A_FILE
    return ReadStatus.UNREADABLE


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


def status_of_command(result: CommandResult) -> ReadStatus:
    """Why a command that was to answer a question about a path gave no answer."""
    if result.status is CommandStatus.TIMEOUT:
        return ReadStatus.TIMED_OUT
    return ReadStatus.COULD_NOT_RUN


class Runner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, timeout: float, stdin: str | None, ok_codes: Sequence[int]
    ) -> CommandResult: ...


_CHUNK = 65536
# Never block on a FIFO that slipped past the type check, never make a terminal ours, never
# translate newlines (Windows guests run `nestctl guest` through this class too).
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _read_upto(fd: int, limit: int) -> bytes:
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


def _read_last(fd: int, size: int, limit: int) -> tuple[bytes, bool]:
    """The last `limit` bytes of an open file, and whether anything before them was skipped."""
    if size > limit:
        os.lseek(fd, size - limit, os.SEEK_SET)
        return _read_upto(fd, limit), True
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


def _copy_entry(src: str, dest: str, st: os.stat_result) -> None:
    """Copy one directory entry as it is: a symlink as a symlink, a regular file with its mode,
    owner and times (never following a link). Other kinds are refused, unopened."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
        with contextlib.suppress(PermissionError):  # only root may give a link away
            os.lchown(dest, st.st_uid, st.st_gid)
        return
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeWriteError(f"{src} {_file_kind(st.st_mode)}: not copied")
    src_fd = os.open(src, _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0))
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


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is not a regular file"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _failed_read(hostpath: str, exc: OSError) -> FileRead:
    status = status_of_oserror(exc)
    error = None if status is ReadStatus.MISSING else exc.strerror or str(exc)
    return FileRead(hostpath, status, error=error)


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

    def exists(self, hostpath: str) -> Presence: ...

    def listdir(self, hostpath: str) -> Listing: ...

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
        """A regular file's text from its start; TRUNCATED (with the first `max_bytes`) if longer.

        FIFOs, devices and sockets are refused without being opened: opening one can block or
        act (a watchdog device starts counting when opened).
        """
        result = self._read(hostpath, max_bytes, tail=False)
        self.manifest.append(ManifestEntry("read", hostpath, result.status.value))
        return result

    def read_tail(self, hostpath: str, *, max_bytes: int = MAX_READ_BYTES) -> FileRead:
        """A regular file's last `max_bytes` (from a line start), for logs whose news is at the end.

        TRUNCATED when the start was skipped; the text is then the newest part of the file.
        """
        result = self._read(hostpath, max_bytes, tail=True)
        self.manifest.append(ManifestEntry("read", hostpath, result.status.value))
        return result

    def _read(self, hostpath: str, max_bytes: int, *, tail: bool) -> FileRead:
        # A plain string join, not pathlib: a cluster run reads thousands of small files.
        real = self.real(hostpath)
        try:
            st = os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                return FileRead(hostpath, ReadStatus.NOT_A_FILE, error=_file_kind(st.st_mode))
            fd = os.open(real, _OPEN_FLAGS)
        except OSError as exc:
            return _failed_read(hostpath, exc)
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):  # swapped between stat and open
                return FileRead(hostpath, ReadStatus.NOT_A_FILE, error=_file_kind(mode))
            if tail:
                data, cut = _read_last(fd, st.st_size, max_bytes)
                if cut:  # drop the partial first line
                    newline = data.find(b"\n")
                    data = data[newline + 1 :] if newline >= 0 else data
            else:
                data = _read_upto(fd, max_bytes + 1)
                cut = len(data) > max_bytes
                data = data[:max_bytes]
        except OSError as exc:
            return _failed_read(hostpath, exc)
        finally:
            os.close(fd)
        status = ReadStatus.TRUNCATED if cut else ReadStatus.OK
        error = f"larger than {max_bytes} bytes" if cut else None
        return FileRead(hostpath, status, _decode(data), error)

    def read_text(self, hostpath: str) -> str | None:
        """The whole file's text, or None when there is none (use `read` to tell why)."""
        result = self.read(hostpath)
        return result.text if result.ok else None

    def exists(self, hostpath: str) -> Presence:
        """Whether the path exists (a dangling symlink does); unknown when we may not look."""
        try:
            os.lstat(self.real(hostpath))
        except OSError as exc:
            status = status_of_oserror(exc)
            error = None if status is ReadStatus.MISSING else exc.strerror or str(exc)
            return Presence(hostpath, status, error)
        return Presence(hostpath, ReadStatus.OK)

    def is_dir(self, hostpath: str) -> bool:
        return os.path.isdir(self.real(hostpath))

    def listdir(self, hostpath: str) -> Listing:
        """Sorted entry names of a directory, or why there are none."""
        real = self.real(hostpath)
        try:
            names = tuple(sorted(os.listdir(real)))
        except OSError as exc:
            status = status_of_oserror(exc)
            error = None if status is ReadStatus.MISSING else exc.strerror or str(exc)
            if exc.errno == errno.ENOTDIR and os.path.lexists(real):
                status, error = ReadStatus.NOT_A_FILE, "is not a directory"
            self.manifest.append(ManifestEntry("list", hostpath, status.value))
            return Listing(hostpath, status, error=error)
        self.manifest.append(ManifestEntry("list", hostpath, f"{len(names)} entries"))
        return Listing(hostpath, ReadStatus.OK, names)

    def glob(self, hostdir: str, pattern: str = "*") -> Listing:
        """The entries of `hostdir` matching `pattern` (use `.paths()` for host paths)."""
        listing = self.listdir(hostdir)
        return Listing(
            listing.path,
            listing.status,
            tuple(n for n in listing.names if fnmatch.fnmatchcase(n, pattern)),
            listing.error,
        )

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

    def lstat(self, hostpath: str) -> os.stat_result | None:
        """The path's own status (a symlink is not followed), or None when it cannot be had."""
        try:
            return os.lstat(self.real(hostpath))
        except OSError:
            return None

    def write_atomic(
        self,
        hostpath: str,
        text: str,
        *,
        mode: int = 0o644,
        replace_symlink: bool = False,
    ) -> None:
        """Write a file we own: a temp file in the same directory, fixed mode, fsync, rename.

        The mode is fixed (never copied from what is there: through a symlink that would be the
        target's, e.g. /dev/null's 0666), and as root the file is root's. A symlink in the way is
        replaced (the link itself, never its target) only when `replace_symlink` says the plan
        named it; anything else that is not a regular file is refused.
        """
        import tempfile  # noqa: PLC0415 - writes are rare; keep start-up fast

        real = self.real(hostpath)
        parent = os.path.dirname(real)
        old = self.lstat(hostpath)
        if old is not None and stat.S_ISLNK(old.st_mode) and not replace_symlink:
            raise UnsafeWriteError(
                f"{hostpath} is a symlink the plan did not name; not replacing it"
            )
        if old is not None and not (stat.S_ISREG(old.st_mode) or stat.S_ISLNK(old.st_mode)):
            raise UnsafeWriteError(f"{hostpath} {_file_kind(old.st_mode)}; not replacing it")
        os.makedirs(parent, mode=0o755, exist_ok=True)
        name = os.path.basename(real)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=parent)

        def fill(_tmp: str) -> None:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                self._own(fh.fileno(), mode)
                os.fsync(fh.fileno())

        self._install(tmp, real, fill)
        self.manifest.append(ManifestEntry("write", hostpath, "ok"))

    def _install(self, tmp: str, real: str, fill: Callable[[str], None]) -> None:
        """Fill `tmp`, then rename it over `real`: readers see the old entry or the new one."""
        try:
            fill(tmp)
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._fsync_dir(os.path.dirname(real))

    def _own(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)
        if self.euid == 0 and getattr(os, "geteuid", lambda: -1)() == 0:
            os.fchown(fd, 0, 0)

    def make_backup_dir(self, backup_root: str, stamp: str) -> str:
        """A new directory for this run's backups (host path): unique even within one second."""
        import tempfile  # noqa: PLC0415

        root = self.real(backup_root)
        os.makedirs(root, mode=0o700, exist_ok=True)
        real = tempfile.mkdtemp(prefix=f"{stamp}-", dir=root)  # mode 0700
        self.manifest.append(ManifestEntry("write", self.hostpath(real), "backup directory"))
        return self.hostpath(real)

    def backup(self, hostpath: str, backup_dir: str) -> str | None:
        """Keep `hostpath` as it is at `<backup_dir><hostpath>`; returns the backup's host path.

        Never follows a symlink: a link is kept as the link itself. A regular file is copied
        with its mode, owner and times. Backups go outside the directory they came from: a copy
        left in /etc/modprobe.d ending in .conf would be read by modprobe itself.
        """
        src = self.real(hostpath)
        st = self.lstat(hostpath)
        if st is None:
            return None
        dest_host = f"{backup_dir.rstrip('/')}{hostpath}"
        dest = self.real(dest_host)
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        _copy_entry(src, dest, st)
        self.manifest.append(ManifestEntry("write", dest_host, "backup"))
        return dest_host

    def restore(self, backup_hostpath: str, hostpath: str) -> None:
        """Put a backup back exactly (a link as the link, a file with its mode and owner),
        atomically: a temp entry beside the target, then rename."""
        src = self.real(backup_hostpath)
        st = os.lstat(src)
        real = self.real(hostpath)
        parent = os.path.dirname(real)
        tmp = os.path.join(parent, f".{os.path.basename(real)}.nestctl-restore")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        self._install(tmp, real, lambda t: _copy_entry(src, t, st))
        self.manifest.append(ManifestEntry("write", hostpath, f"restored from {backup_hostpath}"))

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
