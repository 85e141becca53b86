"""The door itself: every file read, file write and command goes through `Host`.

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
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol

from nestctl.machine.commands import CommandResult, RecordingRunner, Runner, SystemRunner
from nestctl.machine.fileio import (
    OPEN_FLAGS,
    UnsafeWriteError,
    copy_entry,
    decode,
    failed_read,
    file_kind,
    read_last,
    read_upto,
)
from nestctl.machine.reads import (
    MAX_READ_BYTES,
    FileRead,
    Listing,
    Presence,
    ReadStatus,
    status_of_oserror,
)

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


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
                return FileRead(hostpath, ReadStatus.NOT_A_FILE, error=file_kind(st.st_mode))
            fd = os.open(real, OPEN_FLAGS)
        except OSError as exc:
            return failed_read(hostpath, exc)
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):  # swapped between stat and open
                return FileRead(hostpath, ReadStatus.NOT_A_FILE, error=file_kind(mode))
            if tail:
                data, cut = read_last(fd, st.st_size, max_bytes)
                if cut:  # drop the partial first line
                    newline = data.find(b"\n")
                    data = data[newline + 1 :] if newline >= 0 else data
            else:
                data = read_upto(fd, max_bytes + 1)
                cut = len(data) > max_bytes
                data = data[:max_bytes]
        except OSError as exc:
            return failed_read(hostpath, exc)
        finally:
            os.close(fd)
        status = ReadStatus.TRUNCATED if cut else ReadStatus.OK
        error = f"larger than {max_bytes} bytes" if cut else None
        return FileRead(hostpath, status, decode(data), error)

    def read_trusted(
        self, hostpath: str, *, max_bytes: int, why_not: Callable[[os.stat_result], str | None]
    ) -> FileRead:
        """A state file of nestctl's own (a cache), read only if `why_not` finds nothing wrong
        with its status (owner, mode), checked on the open descriptor (no race with a swap).

        A symlink is never followed (UNREADABLE), anything but a regular file is NOT_A_FILE,
        a refusal by `why_not` is UNTRUSTED with its reason, a file over `max_bytes` TRUNCATED.
        """
        real = self.real(hostpath)
        try:
            fd = os.open(real, OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            return failed_read(hostpath, exc)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return FileRead(hostpath, ReadStatus.NOT_A_FILE, error=file_kind(st.st_mode))
            why = why_not(st)
            if why is not None:
                return FileRead(hostpath, ReadStatus.UNTRUSTED, error=why)
            data = read_upto(fd, max_bytes + 1)
        except OSError as exc:
            return failed_read(hostpath, exc)
        finally:
            os.close(fd)
        self.manifest.append(ManifestEntry("read", hostpath, "ok"))
        if len(data) > max_bytes:
            cut = decode(data[:max_bytes])
            return FileRead(hostpath, ReadStatus.TRUNCATED, cut, f"larger than {max_bytes} bytes")
        return FileRead(hostpath, ReadStatus.OK, decode(data))

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

    def spawn(self, argv: Sequence[str], **how: Any) -> subprocess.Popen[bytes]:
        """Start a process that keeps running while the caller talks to it (QEMU for the oracle,
        a streaming ssh); `how` as `nestctl.machine.processes.spawn`. Raises OSError when it
        cannot start, SpawnRefusedError (an OSError) when this host runs nothing."""
        from nestctl.machine.processes import SpawnRefusedError  # noqa: PLC0415

        start = getattr(self.runner, "spawn", None)
        if start is None:
            raise SpawnRefusedError(f"{' '.join(argv)}: this host's runner starts no process")
        try:
            proc: subprocess.Popen[bytes] = start(argv, **how)
        except OSError as exc:
            self.manifest.append(ManifestEntry("spawn", " ".join(argv), f"failed: {exc}"))
            raise
        self.manifest.append(ManifestEntry("spawn", " ".join(argv), "started"))
        return proc

    def make_scratch_dir(self, prefix: str) -> str:
        """A new private (0700) directory in the system's temporary directory, for sockets and
        work files of a spawned process; `remove_tree` takes it away again."""
        import tempfile  # noqa: PLC0415 - rare; keep start-up fast

        path = tempfile.mkdtemp(prefix=prefix)
        self.manifest.append(ManifestEntry("write", path, "scratch directory"))
        return path

    def scratch_file(self, directory: str, prefix: str = ".nestctl-") -> IO[bytes]:
        """A new file of ours (O_EXCL, random name, 0600) in `directory`, removed when the
        caller closes it: a spawned process's stderr, the bench's fsync target."""
        import tempfile  # noqa: PLC0415

        return tempfile.NamedTemporaryFile(prefix=prefix, dir=directory)

    def remove_tree(self, path: str) -> None:
        """Remove a scratch directory this process made, never following a link out of it."""
        import shutil  # noqa: PLC0415

        shutil.rmtree(path, ignore_errors=True)

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

    def lock(
        self, hostpath: str, *, wait: float | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock on `hostpath` for a `with` block (`nestctl.machine.locks.hold`):
        blocks when `wait` is None, else LockBusyError after `wait` seconds."""
        from nestctl.machine.locks import hold  # noqa: PLC0415 - only changes need it

        self.manifest.append(ManifestEntry("write", hostpath, "lock"))
        return hold(self.real(hostpath), wait=wait)

    def rename(self, hostpath: str, new_hostpath: str) -> None:
        """Move an entry of ours aside (atomic, in one directory; a link is moved, not followed)."""
        real = self.real(new_hostpath)
        os.replace(self.real(hostpath), real)
        self._fsync_dir(os.path.dirname(real))
        self.manifest.append(ManifestEntry("write", hostpath, f"renamed to {new_hostpath}"))

    def make_private_dir(self, hostdir: str) -> None:
        """`hostdir` exists, is a real directory (no link followed) of this user, mode 0700:
        made so, or an existing one forced to 0700 (an open one let anyone swap its files).
        UnsafeWriteError says why when it cannot be (a link, another user's directory)."""
        real = self.real(hostdir)
        os.makedirs(real, mode=0o700, exist_ok=True)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise UnsafeWriteError(
                f"{hostdir} is not a directory (a symbolic link?): {exc.strerror}"
            ) from None
        try:
            st = os.fstat(fd)
            me = getattr(os, "geteuid", lambda: 0)()
            if st.st_uid != me:
                raise UnsafeWriteError(f"{hostdir} belongs to uid {st.st_uid}, not to this user")
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
        self.manifest.append(ManifestEntry("write", hostdir, "private directory"))

    def make_dirs(self, hostdir: str, mode: int = 0o755) -> None:
        """Create a directory and its missing parents (OSError when it cannot be made)."""
        os.makedirs(self.real(hostdir), mode=mode, exist_ok=True)
        self.manifest.append(ManifestEntry("write", hostdir, "directory"))

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
            raise UnsafeWriteError(f"{hostpath} {file_kind(old.st_mode)}; not replacing it")
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
        copy_entry(src, dest, st)
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
        self._install(tmp, real, lambda t: copy_entry(src, t, st))
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
